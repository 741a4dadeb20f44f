"""``consent show|grant|withdraw SUBJECT``: every change is ledgered and effective at once."""

from __future__ import annotations

import click

from phoneagent.cli.context import AgentContext, pass_agent, tell_running_agent
from phoneagent.cli.output import emit, json_option
from phoneagent.cli.privacy import privacy_errors, show_policy_notice
from phoneagent.privacy import POLICY_VERSION, set_consent
from phoneagent.privacy.consent import default_granted, known_subjects
from phoneagent.privacy.export import iso
from phoneagent.relays.permissions import SETTING_PREFIX
from phoneagent.store.ledger import ConsentEntry

_APP = click.option("--app", default="", help="Narrow to one app id (notifications).")


@click.group("consent")
def consent_group() -> None:
    """What you allow: metric collection, cloud sync, cross-border, log upload, relays."""


def in_force(
    latest: dict[tuple[str, str], ConsentEntry],
) -> dict[tuple[str, str], ConsentEntry]:
    """The entries in force: a relay setting is ledgered as one scope per value
    (``@privacy=name``, ``@privacy=hidden``), and only the newest value of each is."""
    setting: dict[tuple[str, str], ConsentEntry] = {}
    for entry in sorted(latest.values(), key=lambda e: e.id):
        if entry.scope.startswith(SETTING_PREFIX):
            setting[(entry.subject, entry.scope.partition("=")[0])] = entry
    kept = {entry.id for entry in setting.values()}
    return {
        key: entry
        for key, entry in latest.items()
        if not entry.scope.startswith(SETTING_PREFIX) or entry.id in kept
    }


@consent_group.command("show")
@json_option
@pass_agent
def show_command(agent: AgentContext, as_json: bool) -> None:
    """Current state of every consent, with when and under which policy version it was given."""
    with agent.open_store() as store:
        current = in_force(store.ledger.latest_consents())
        show_policy_notice(store)
    subjects = [(s, "") for s in known_subjects()]
    subjects += sorted(k for k in current if k[1])
    rows = []
    for subject, scope in subjects:
        entry = current.get((subject, scope))
        rows.append(
            {
                "subject": subject,
                "scope": scope,
                "granted": default_granted(subject) if entry is None else entry.granted,
                "since": None if entry is None else iso(entry.at),
                "policy_version": None if entry is None else entry.policy_version,
            }
        )
    columns = ("subject", "scope", "granted", "since", "policy_version")
    emit(rows, columns, f"Consents (current policy {POLICY_VERSION})", as_json)


def _change(agent: AgentContext, subject: str, app: str, granted: bool) -> None:
    with agent.open_store() as store, privacy_errors():
        entry = set_consent(store, subject, granted, app)
        show_policy_notice(store)
    verb = "Granted" if granted else "Withdrew"
    scope = f" for {entry.scope}" if entry.scope else ""
    click.echo(
        f"{verb} {entry.subject}{scope} at {iso(entry.at)} (policy {entry.policy_version}); "
        f"{tell_running_agent(agent)}."
    )


@consent_group.command("grant")
@click.argument("subject")
@_APP
@pass_agent
def grant_command(agent: AgentContext, subject: str, app: str) -> None:
    """Give a consent (see `consent show` for the subjects)."""
    _change(agent, subject, app, True)


@consent_group.command("withdraw")
@click.argument("subject")
@_APP
@pass_agent
def withdraw_command(agent: AgentContext, subject: str, app: str) -> None:
    """Withdraw a consent; what was done before stays, nothing more happens from now on."""
    _change(agent, subject, app, False)


COMMANDS = (consent_group,)
