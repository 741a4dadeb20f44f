"""``privacy report|audit`` and ``logs upload``, plus what the privacy commands share."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent
from phoneagent.cli.output import emit, json_option
from phoneagent.errors import EXIT_ERROR, EXIT_USAGE, AgentError
from phoneagent.logs import bundle_logs
from phoneagent.privacy import policy_notice
from phoneagent.privacy.audit import FAIL, audit
from phoneagent.privacy.consent import LOG_UPLOAD, is_granted
from phoneagent.privacy.export import iso
from phoneagent.store import Store

MONTH_S = 30 * 86400


@contextmanager
def privacy_errors() -> Iterator[None]:
    """A bad value given to a privacy function (a date, a path that exists) is exit 2;
    refusals of the privacy rules carry their own code (``PrivacyError``)."""
    try:
        yield
    except AgentError:
        raise
    except (ValueError, FileExistsError) as error:
        raise CliError(str(error), EXIT_USAGE) from error


def show_policy_notice(store: Store) -> None:
    """PR-VERSION: every privacy command tells the person when the policy changed."""
    notice = policy_notice(store)
    if notice is not None:
        click.echo(f"Notice: {notice}", err=True)


@click.group("privacy")
def privacy_group() -> None:
    """What left this phone, and whether this data directory keeps the privacy policy."""


@privacy_group.command("report")
@click.option(
    "--months",
    type=click.IntRange(1, 120),
    default=12,
    show_default=True,
    help="How far back to list.",
)
@json_option
@pass_agent
def report_command(agent: AgentContext, months: int, as_json: bool) -> None:
    """Every recipient of personal data in the last months, from the disclosure ledger."""
    with agent.open_store() as store:
        found = store.ledger.disclosures(since=int(time.time()) - months * MONTH_S)
        show_policy_notice(store)
    rows = [
        {
            "time": iso(d.at),
            "recipient": d.recipient,
            "purpose": d.purpose,
            "categories": ",".join(d.categories),
            "records": d.record_count,
            "asked_by_user": d.user_request,
        }
        for d in found
    ]
    columns = ("time", "recipient", "purpose", "categories", "records", "asked_by_user")
    title = f"{len(rows)} disclosure(s) in the last {months} months"
    emit(rows, columns, title, as_json)


@privacy_group.command("audit")
@json_option
@pass_agent
def audit_command(agent: AgentContext, as_json: bool) -> None:
    """Check this data directory against every requirement of docs/privacy.md; exit 1 on a
    failure."""
    with agent.open_store() as store:
        checks = audit(store, agent.data_dir)
    rows = [{"id": c.id, "status": c.status, "evidence": c.evidence} for c in checks]
    emit(rows, ("id", "status", "evidence"), "Privacy audit", as_json)
    failed = [c.id for c in checks if c.status == FAIL]
    if failed:
        raise CliError(f"Failed: {', '.join(failed)}", EXIT_ERROR)


@click.group("logs")
def logs_group() -> None:
    """The agent's own logs (kept 7 days, redacted)."""


@logs_group.command("upload")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the log bundle (.zip).",
)
@pass_agent
def logs_upload_command(agent: AgentContext, out: Path) -> None:
    """Bundle the logs for sending; only on this explicit command, with log_upload consent."""
    with agent.open_store() as store, privacy_errors():
        account = store.ledger.get_account()
        if account is None or account.guest:
            raise CliError("Log upload needs an account; guest mode sends nothing.", EXIT_ERROR)
        if not is_granted(store, LOG_UPLOAD):
            raise CliError(
                "Log upload is not consented to; run: phoneagent consent grant log_upload",
                EXIT_ERROR,
            )
        path, lines = bundle_logs(agent.data_dir, out)
    click.echo(
        f"Wrote {lines} redacted log line(s) to {path}. No uploader is configured, so nothing "
        "was sent: attach this file to your support request."
    )


COMMANDS = (privacy_group, logs_group)
