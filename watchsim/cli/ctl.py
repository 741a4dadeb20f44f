"""``watchsim ctl``: drive a running watch, or a fleet, through its control channel.

Each command line becomes one operation of ``watchsim.controlops``; the watch checks its
values against that schema. ``status`` and the results print as JSON, ``passkey`` as the
six digits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

import click

from watchsim.cli import main
from watchsim.cli.run import default_state_dir
from watchsim.control import ControlError, ControlUsageError, request
from watchsim.controlops import (
    AirRestart,
    AnyOp,
    BatteryLow,
    CallButton,
    FactoryReset,
    FleetOp,
    FleetUsage,
    Freeze,
    Music,
    MusicButton,
    OffWrist,
    OnWrist,
    OutOfRange,
    Passkey,
    Press,
    Reboot,
    Status,
    ToWatch,
    Volume,
)
from watchsim.errors import WatchsimError, WatchsimUsageError


@dataclass(frozen=True)
class _Target:
    """Where the operations go: a watch's (or fleet's) state dir, or one fleet watch."""

    state_dir: Path
    timeout_s: float
    watch: str | None = None

    def send(self, op: AnyOp) -> Any:
        if self.watch is not None and not isinstance(op, FleetOp):
            op = ToWatch(self.watch, op)  # through the fleet to its watch
        try:
            return asyncio.run(request(self.state_dir, op, self.timeout_s))
        except ControlUsageError as error:
            raise WatchsimUsageError(str(error)) from None
        except ControlError as error:
            raise WatchsimError(str(error)) from None

    def show(self, op: AnyOp) -> None:
        click.echo(json.dumps(self.send(op), indent=2, ensure_ascii=False))


@main.group()
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State dir of the watch [default: that of --name].",
)
@click.option("--name", default="WatchSim", show_default=True, help="Name the watch runs as.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for an answer.")
@click.pass_context
def ctl(context: click.Context, state_dir: Path | None, name: str, timeout: float) -> None:
    """Send a command to a running watch and print the result (JSON for status)."""
    context.obj = _Target(state_dir or default_state_dir(name), timeout)


@click.command("status")
@click.pass_obj
def status_command(target: _Target) -> None:
    """Everything the watch shows (of a fleet: every watch's radio and newest seq)."""
    target.show(Status())


@click.command("passkey")
@click.argument("wait_s", type=int, required=False)
@click.pass_obj
def passkey_command(target: _Target, wait_s: int | None) -> None:
    """The passkey on screen, waiting up to WAIT_S seconds (default 10) for one."""
    click.echo(target.send(Passkey() if wait_s is None else Passkey(wait_s))["passkey"])


@click.command("press")
@click.argument("button", type=click.Choice(get_args(CallButton)))
@click.pass_obj
def press_command(target: _Target, button: CallButton) -> None:
    """A call button: acts on the current call by its id."""
    target.show(Press(button))


@click.group("music")
def music_group() -> None:
    """A music button, or the phone's volume."""


def _music_button(button: MusicButton) -> click.Command:
    @click.pass_obj
    def press(target: _Target) -> None:
        target.show(Music(button))

    return click.Command(button, callback=press, help=f"The {button} button.")


for _button in get_args(MusicButton):
    music_group.add_command(_music_button(_button))


@music_group.command("volume")
@click.argument("level", type=int)
@click.pass_obj
def volume_command(target: _Target, level: int) -> None:
    """Set the phone's volume to LEVEL (0..100)."""
    target.show(Volume(level))


@click.group("event")
def event_group() -> None:
    """Something happens to the watch: off-wrist, battery-low, out-of-range, reboot..."""


def _event(
    name: str, make: Callable[..., AnyOp], help_text: str, *arguments: click.Argument
) -> None:
    """``event NAME [ARGUMENT]``: ``make`` the event from the arguments given."""

    @click.pass_obj
    def happen(target: _Target, /, **values: int | None) -> None:
        given = {key: value for key, value in values.items() if value is not None}
        target.show(make(**given))

    event_group.add_command(
        click.Command(name, callback=happen, params=list(arguments), help=help_text)
    )


_event(
    "off-wrist",
    OffWrist,
    "The sensor loses skin contact (for MINUTES, default until on-wrist).",
    click.Argument(["minutes"], type=int, required=False),
)
_event("on-wrist", OnWrist, "The sensor has skin contact again.")
_event(
    "battery-low",
    BatteryLow,
    "The battery drops to PERCENT (default 10).",
    click.Argument(["percent"], type=int, required=False),
)
_event(
    "out-of-range",
    OutOfRange,
    "No radio for MINUTES simulated minutes.",
    click.Argument(["minutes"], type=int),
)
_event("reboot", Reboot, "Restart (history, settings and bonds survive).")
_event("factory-reset", FactoryReset, "Wipe history, settings and bonds, then restart.")

WATCH_COMMANDS = (status_command, passkey_command, press_command, music_group, event_group)


@ctl.command("usage")
@click.pass_obj
def usage_command(target: _Target) -> None:
    """Of a fleet: peak RSS and CPU seconds of its process."""
    target.show(FleetUsage())


@ctl.command("freeze")
@click.pass_obj
def freeze_command(target: _Target) -> None:
    """Of a fleet: stop measuring on every watch (radios stay up)."""
    target.show(Freeze())


@ctl.command("air-restart")
@click.argument("down_s", type=float, required=False)
@click.pass_obj
def air_restart_command(target: _Target, down_s: float | None) -> None:
    """Of a fleet: drop every agent's air connection for DOWN_S seconds (default 1)."""
    target.show(AirRestart() if down_s is None else AirRestart(down_s))


@ctl.group("watch")
@click.argument("name")
@click.pass_context
def watch_group(context: click.Context, name: str) -> None:
    """Of a fleet: any command above for its watch NAME."""
    context.obj = replace(context.obj, watch=name)


for _command in WATCH_COMMANDS:
    ctl.add_command(_command)
    watch_group.add_command(_command)
