"""``permissions show|grant|revoke|set``: the relay features, per app, quiet hours, privacy.

Every change lands in the consent ledger (time, feature, scope, policy version) and a
running agent is told at once, so a revocation takes the feature's content off the
connected watch before this command returns.
"""

from __future__ import annotations

import json

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent, tell_running_agent
from phoneagent.cli.output import emit, json_option
from phoneagent.cli.privacy import privacy_errors, show_policy_notice
from phoneagent.errors import EXIT_USAGE
from phoneagent.privacy.export import iso
from phoneagent.relays.permissions import (
    AppMode,
    CallPrivacy,
    Feature,
    QuietHours,
    RelayPermissionError,
    load_policy,
    set_app_mode,
    set_call_privacy,
    set_permission,
    set_quiet_hours,
)
from phoneagent.store.ledger import ConsentEntry

_FEATURE = click.argument("feature", type=click.Choice([f.value for f in Feature]))
_APP = click.option("--app", help="One app's notifications (an app id, e.g. org.example.Chat).")


@click.group("permissions")
def permissions_group() -> None:
    """Relays to the watch: notifications, calls, music. Each is off until granted."""


@permissions_group.command("show")
@json_option
@pass_agent
def show_command(agent: AgentContext, as_json: bool) -> None:
    """Each feature, the app rules, quiet hours and call privacy, with when they were set."""
    with agent.open_store() as store:
        policy = load_policy(store)
        current = store.ledger.latest_consents()
        show_policy_notice(store)
    rows = []
    for feature in Feature:
        entry = current.get((feature.value, ""))
        rows.append(_row(feature.value, "", feature in policy.granted, entry))
    for app, allowed in sorted(policy.app_rules.items()):
        rows.append(
            _row(Feature.NOTIFICATIONS, app, allowed, current.get((Feature.NOTIFICATIONS, app)))
        )
    settings = {
        "apps without a rule": "allowed" if policy.app_mode is AppMode.DENY_LIST else "blocked",
        "quiet hours": str(policy.quiet_hours or "off"),
        "call privacy": policy.call_privacy.value,
    }
    if as_json:
        click.echo(json.dumps({"permissions": rows, "settings": settings}, indent=2))
        return
    emit(rows, ("feature", "app", "granted", "since", "policy_version"), "Relay permissions", False)
    for name, value in settings.items():
        click.echo(f"{name}: {value}")


def _row(feature: str, app: str, granted: bool, entry: ConsentEntry | None) -> dict[str, object]:
    return {
        "feature": feature,
        "app": app,
        "granted": granted,
        "since": None if entry is None else iso(entry.at),
        "policy_version": None if entry is None else entry.policy_version,
    }


def _done(agent: AgentContext, changes: list[tuple[ConsentEntry, str]]) -> None:
    for entry, what in changes:
        click.echo(f"{what} at {iso(entry.at)} (policy {entry.policy_version}).")
    click.echo(f"Recorded in the consent ledger; {tell_running_agent(agent)}.")


def _change(agent: AgentContext, feature: str, app: str | None, granted: bool) -> None:
    with agent.open_store() as store, privacy_errors():
        try:
            entry = set_permission(store, Feature(feature), granted, app)
        except RelayPermissionError as error:
            raise CliError(str(error), EXIT_USAGE) from error
        show_policy_notice(store)
    verb = "Granted" if granted else "Revoked"
    _done(agent, [(entry, f"{verb} {feature}" + (f" for {app}" if app else ""))])


@permissions_group.command("grant")
@_FEATURE
@_APP
@pass_agent
def grant_command(agent: AgentContext, feature: str, app: str | None) -> None:
    """Allow a feature (or, with --app, one app's notifications)."""
    _change(agent, feature, app, True)


@permissions_group.command("revoke")
@_FEATURE
@_APP
@pass_agent
def revoke_command(agent: AgentContext, feature: str, app: str | None) -> None:
    """Stop a feature (or one app) now: its content leaves the connected watch at once."""
    _change(agent, feature, app, False)


@permissions_group.command("set")
@click.option(
    "--apps",
    type=click.Choice([m.value for m in AppMode]),
    help="allow-list: only apps granted with --app; deny-list: all but revoked ones.",
)
@click.option("--quiet-hours", help="HH:MM-HH:MM (may span midnight) or off.")
@click.option(
    "--call-privacy",
    type=click.Choice([p.value for p in CallPrivacy]),
    help="name: the caller's name (never a number); hidden: no caller at all.",
)
@pass_agent
def set_command(
    agent: AgentContext, apps: str | None, quiet_hours: str | None, call_privacy: str | None
) -> None:
    """Notification app mode, quiet hours and call privacy; each change is ledgered."""
    if apps is None and quiet_hours is None and call_privacy is None:
        raise CliError("nothing to set: give --apps, --quiet-hours or --call-privacy", EXIT_USAGE)
    try:
        hours = None if quiet_hours in (None, "off") else QuietHours.parse(str(quiet_hours))
    except RelayPermissionError as error:
        raise CliError(str(error), EXIT_USAGE) from error
    entries: list[tuple[ConsentEntry, str]] = []
    with agent.open_store() as store, privacy_errors():
        if apps is not None:
            entries.append((set_app_mode(store, AppMode(apps)), f"Apps: {apps}"))
        if quiet_hours is not None:
            entries.append((set_quiet_hours(store, hours), f"Quiet hours: {hours or 'off'}"))
        if call_privacy is not None:
            privacy = CallPrivacy(call_privacy)
            entries.append((set_call_privacy(store, privacy), f"Call privacy: {privacy}"))
    _done(agent, entries)


COMMANDS = (permissions_group,)
