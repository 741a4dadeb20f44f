"""``demo``: a loopback watch and the agent in one process, end to end, no hardware.

Only the options are here: the demo drives both sides, so its work is a harness
(``harness.demo``), imported when the command runs, never by the agent.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.errors import EXIT_ERROR
from phoneagent.paths import ensure_private_dir
from phoneagent.transport.errors import radio_errors
from protocol.history import TIMESTAMP_RANGE_TEXT, stamps_fit


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
    end = time.time() if start is None else start.timestamp()
    if not stamps_fit(end - hours * 3600, end):
        raise click.BadParameter(
            f"the watch's history, --hours before the start up to it, must lie within"
            f" {TIMESTAMP_RANGE_TEXT}, what a record's timestamp carries",
            param_hint="--start" if start is not None else "--hours",
        )
    made = agent.data_dir_option is None
    if not made:
        directory = agent.data_dir
        ensure_private_dir(directory)
    else:
        directory = Path(tempfile.mkdtemp(prefix="phoneagent-demo-"))
    # SIGTERM (a service manager, `kill`) stops it as Ctrl-C does, cleaning up the same way:
    # as SIGINT, which asyncio.run turns into cancelling the demo before KeyboardInterrupt.
    terminate = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        click.echo(f"Agent data directory: {directory}")
        from harness.demo import run_demo

        with radio_errors():  # a watch answering out of profile: a message, not a traceback
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
    except BaseException:
        if made:  # a failed demo leaves no key file in the temporary folder either
            shutil.rmtree(directory, ignore_errors=True)
            click.echo(f"Demo failed: removed its data directory {directory}.", err=True)
        raise
    finally:
        signal.signal(signal.SIGTERM, terminate)


COMMANDS = (demo_command,)
