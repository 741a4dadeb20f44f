"""``watchsim ctl``: drive a running watch through its control channel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from watchsim.cli import main
from watchsim.cli.run import default_state_dir
from watchsim.control import USAGE, ControlError, ControlUsageError, request
from watchsim.errors import WatchsimError, WatchsimUsageError


@main.command(
    context_settings={"ignore_unknown_options": True},
    epilog=USAGE.replace("\n", "\n\n\b\n", 1),
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State dir of the watch [default: that of --name].",
)
@click.option("--name", default="WatchSim", show_default=True, help="Name the watch runs as.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for an answer.")
@click.argument("command", nargs=-1, required=True)
def ctl(state_dir: Path | None, name: str, timeout: float, command: tuple[str, ...]) -> None:
    """Send COMMAND to a running watch and print the result (JSON for status)."""
    try:
        result = asyncio.run(request(state_dir or default_state_dir(name), list(command), timeout))
    except ControlUsageError as error:
        raise WatchsimUsageError(str(error)) from None
    except ControlError as error:
        raise WatchsimError(str(error)) from None
    if command[0] == "passkey":
        click.echo(result["passkey"])
    else:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
