"""``demo``: a loopback watch and the agent in one process, end to end, no hardware.

Only the options are here: the demo drives both sides, so its work is a harness
(``harness.demo``), imported when the command runs, never by the agent.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, pass_agent
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
    if agent.data_dir_option is not None:
        directory = agent.data_dir
        ensure_private_dir(directory)
    else:
        directory = Path(tempfile.mkdtemp(prefix="phoneagent-demo-"))
    click.echo(f"Agent data directory: {directory}")
    from harness.demo import run_demo

    asyncio.run(run_demo(agent, directory, hours, seconds, speed, start))


COMMANDS = (demo_command,)
