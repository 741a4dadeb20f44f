"""``export``: all your personal data as JSON or CSV, offline and free (PR-ACCESS, PR-SHARE)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.cli.privacy import privacy_errors
from phoneagent.privacy.export import ExportResult, export, record_share, write_json
from phoneagent.store import Store


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
    help="One JSON document, or CSV files (one per table) in a folder or .zip.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="New file (JSON), folder or .zip (CSV, one file per table). JSON without it: stdout.",
)
@click.option(
    "--to",
    "recipient",
    help="The third party you give it to; recorded in the disclosure ledger.",
)
@pass_agent
def export_command(agent: AgentContext, fmt: str, out: Path | None, recipient: str | None) -> None:
    """Export account, devices, samples, gaps and both ledgers (schema: docs/privacy.md)."""
    if out is None and fmt == "csv":
        raise click.UsageError("CSV needs --out (a new folder, or a file ending in .zip).")
    with agent.open_store() as store, privacy_errors():
        result = _to_stdout(store) if out is None else export(store, fmt, out)
        if recipient:
            record_share(store, recipient, result)
    where = "" if result.path is None else f" to {result.path}"
    shared = f"; disclosure to {recipient} recorded" if recipient else ""
    click.echo(f"Exported {result.records} record(s){where}{shared}.", err=True)


def _to_stdout(store: Store) -> ExportResult:
    """The JSON on stdout, flushed here: an export that did not get out (a full disk under
    ``> FILE``, which the command group says of standard output) records no disclosure."""
    counts = write_json(store, sys.stdout)
    sys.stdout.flush()
    return ExportResult(counts, None)


COMMANDS = (export_command,)
