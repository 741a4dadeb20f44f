"""``demo``: a loopback watch and the agent in one process, end to end, no hardware.

Only the options are here: the demo drives both sides, so its work is a harness
(``harness.demo``), imported when the command runs, never by the agent.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.errors import EXIT_ERROR
from phoneagent.paths import ensure_private_dir


@click.command("demo")
@click.option(
    "--hours",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="History the watch holds before the agent first connects.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="How long to show live values.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Watch clock speed-up during the live phase.",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Local time at which the watch's history ends [default: now].",
)
@pass_agent
def demo_command(
    agent: AgentContext, hours: float, seconds: float, speed: float, start: datetime | None
) -> None:
    """Loopback watch + agent end to end (pair, backfill, live) with no hardware."""
    made = agent.data_dir_option is None
    if not made:
        directory = agent.data_dir
        ensure_private_dir(directory)
    else:
        directory = Path(tempfile.mkdtemp(prefix="phoneagent-demo-"))
    try:
        click.echo(f"Agent data directory: {directory}")
        from harness.demo import run_demo

        asyncio.run(run_demo(agent, directory, hours, seconds, speed, start))
    except KeyboardInterrupt:
        # A demo stopped half-way is no store to look at, and its folder holds the key
        # file beside the database: the folder it made goes (one the user named stays).
        if made:
            shutil.rmtree(directory, ignore_errors=True)
            said = f"removed its data directory {directory}, key file included"
        else:
            said = f"what it stored so far is in {directory}"
        click.echo(f"\nDemo interrupted: {said}.", err=True)
        raise click.exceptions.Exit(EXIT_ERROR) from None


COMMANDS = (demo_command,)
