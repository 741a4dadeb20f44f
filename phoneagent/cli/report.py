"""``report``: charts of the stored data as one HTML file that opens offline."""

from __future__ import annotations

from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.cli.params import ADDRESS, measurement_window
from protocol.address import Address


@click.command("report")
@click.option("--device", type=ADDRESS, help="Only this watch (address); default: every one.")
@measurement_window
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default="phoneagent-report.html",
    show_default=True,
    help="The HTML file to write (replaced if it exists).",
)
@pass_agent
def report_command(
    agent: AgentContext,
    device: Address | None,
    since: int | None,
    until: int | None,
    out: Path,
) -> None:
    """Chart heart rate, SpO2, skin temperature and steps with their gaps, sync and upload
    state and daily summaries, in one self-contained HTML file (docs/report.md)."""
    # Imported here: plotly is the largest import of the agent, and no other command needs it.
    from phoneagent.report import write_report

    with agent.open_store() as store:
        written = write_report(store, out, device, since, until)
    click.echo(
        f"Wrote {written.path}: {written.samples} sample(s) of {written.devices} watch(es).\n"
        "It holds personal health data: it is readable by you only (0600); keep it private "
        "and delete it when you no longer need it.",
        err=True,
    )


COMMANDS = (report_command,)
