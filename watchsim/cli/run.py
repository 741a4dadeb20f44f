"""``watchsim run``: a watch on the loopback air, a Bumble HCI transport or BlueZ."""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import click
import platformdirs

from protocol import infinitime
from protocol.history import TIMESTAMP_RANGE_TEXT, stamps_fit
from watchsim.app import (
    PERSONALITIES,
    BlueZRadio,
    Radio,
    TransportRadio,
    WatchApp,
    WatchConfig,
    WatchError,
)
from watchsim.app.infinitime import SECURITY_NOTE, InfiniTimeApp
from watchsim.cli import main
from watchsim.console import log_plainly, owns_terminal, show_live
from watchsim.control import ControlServer
from watchsim.history import DEFAULT_CAPACITY
from watchsim.model import builtin_names, load_builtin, parse_duration
from watchsim.peripheral.port import PairingMode

DEFAULT_AIR_PORT = 7420
DEFAULT_AIR = f"127.0.0.1:{DEFAULT_AIR_PORT}"
PAIRING_HELP = (
    "How pairing is confirmed: passkey (the watch shows 6 digits the phone types), "
    "numeric (both show a number; the watch confirms it), justworks (a test mode: nothing "
    "to check, no protection against a man in the middle, so every protected "
    "characteristic stays refused, and phoneagent refuses the watch)."
)


def default_state_dir(name: str) -> Path:
    """``$XDG_STATE_HOME/watchsim/<name>``: one identity (address, bonds, history) per name."""
    return platformdirs.user_state_path("watchsim") / name


def _radio(
    transport: str, air: str, adapter: str, state_dir: Path, name: str, mode: PairingMode
) -> Radio:
    if transport == "bluez":
        return BlueZRadio(adapter, name, mode)
    if transport == "loopback":
        return TransportRadio(f"tcp-client:{air}", state_dir, name, mode)
    return TransportRadio(transport, state_dir, name, mode)


def _radio_error(transport: str, air: str, adapter: str, error: BaseException) -> str:
    """What went wrong opening the radio, in the user's terms."""
    if transport == "loopback":
        if isinstance(error, OSError):
            return (
                f"cannot reach the loopback air at {air} ({error.strerror or error}); "
                f"start it with `watchsim air --port {air.rpartition(':')[2]}`"
            )
        return f"the loopback air at {air} failed: {error}"
    where = f"adapter {adapter}" if transport == "bluez" else f"transport {transport}"
    if (isinstance(error, OSError) and error.errno == errno.EBUSY) or "busy" in str(error).lower():
        return f"{where} is busy (used by another program, or by bluetoothd): {error}"
    if isinstance(error, OSError) and error.errno in (errno.ENODEV, errno.ENOENT):
        return f"no Bluetooth adapter: {where} does not exist ({error})"
    if isinstance(error, PermissionError):
        return f"not allowed to open {where} ({error}); try with CAP_NET_ADMIN or sudo"
    return f"cannot open {where}: {type(error).__name__}: {error}"


def checked_backfill(speed: float, backfill: str | None) -> int:
    """The ``--speed`` and ``--backfill`` every watch command takes; the backfill in s."""
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    try:
        return parse_duration(backfill) if backfill else 0
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--backfill") from None


def checked_start(start: datetime | None, backfill_s: int) -> float | None:
    """``--start`` as Unix seconds, when the history it ends (``--backfill`` long) and the
    clock from it fit a record's timestamp."""
    at = time.time() if start is None else start.timestamp()
    if not stamps_fit(at - backfill_s, at):
        raise click.BadParameter(
            f"the watch's history, from the start minus the backfill to the start, must lie"
            f" within {TIMESTAMP_RANGE_TEXT}, what a record's timestamp carries",
            param_hint="--start" if start is not None else "--backfill",
        )
    return None if start is None else at


async def _run(app: WatchApp, transport: str, air: str, adapter: str) -> None:
    app.open_state_dir()
    control = ControlServer(app)
    await control.start()  # first: it also finds another watch using this state dir
    stop = asyncio.Event()
    try:
        try:
            await app.start()
        except WatchError:
            raise
        except Exception as error:
            raise WatchError(_radio_error(transport, air, adapter, error)) from None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        state_dir = app.config.state_dir
        # Scripts wait for this line; the rest of the output depends on the terminal.
        click.echo(
            f"watch {app.config.name} ready: address {app.radio.address or 'unknown'}, "
            f"control: watchsim ctl --state-dir {state_dir} status"
        )
        if isinstance(app, InfiniTimeApp):
            click.echo(SECURITY_NOTE)
        if owns_terminal(sys.stdout):
            await show_live(app, stop, sys.stdout)
        else:
            log_plainly(app, sys.stdout)
            await stop.wait()
    finally:
        await control.close()
        await app.stop()
    click.echo("watch stopped")


@main.command()
@click.option(
    "--transport",
    default="loopback",
    show_default=True,
    help="loopback (join the air), bluez (a Linux adapter through BlueZ), "
    "or any Bumble transport string (usb:0, hci-socket:0, tcp-client:HOST:PORT).",
)
@click.option("--air", default=DEFAULT_AIR, show_default=True, help="Air address for loopback.")
@click.option("--adapter", default="hci0", show_default=True, help="BlueZ adapter for bluez.")
@click.option(
    "--personality",
    type=click.Choice(list(PERSONALITIES)),
    default="watchsim",
    show_default=True,
    help="The firmware the watch presents: watchsim (our secure profile, with history) or "
    "infinitime (InfiniTime 1.15's services for PineTime companions: live values only, "
    "nothing encrypted; docs/infinitime.md).",
)
@click.option("--name", default=None, help="Advertised name [default: WatchSim, or InfiniTime].")
@click.option("--seed", default=1, show_default=True, help="Seed of the physiology model.")
@click.option(
    "--scenario",
    default="default-day",
    show_default=True,
    help="A built-in scenario (" + ", ".join(builtin_names()) + ") or the path of a "
    "scenario TOML file.",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second. At 1 the phone's time sync sets the clock "
    "(set back, the watch measures nothing until the clock passes its newest sample); at "
    "any other speed the clock is the watch's own simulated timeline: it refuses the "
    "phone's time (not its time zone) and stamps samples in simulated time. Timestamps "
    "never go back: a restart continues after the newest sample.",
)
@click.option("--backfill", default=None, help="Pre-fill a fresh history: 7d, 24h, 90m.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    default=None,
    help="Start the watch clock at this local time (e.g. 2026-06-01T07:30) to reproduce "
    "a moment of the scenario's day; the backfill ends there. Never before the history's "
    "newest sample; at --speed 1 the phone's time sync moves it [default: now].",
)
@click.option(
    "--pairing",
    type=click.Choice([m.value for m in PairingMode]),
    default=PairingMode.PASSKEY.value,
    show_default=True,
    help=PAIRING_HELP,
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Address, bonds, settings and history [default: $XDG_STATE_HOME/watchsim/NAME].",
)
@click.option(
    "--history-capacity",
    type=click.IntRange(min=1),
    default=DEFAULT_CAPACITY,
    show_default=True,
    help="Records kept on the watch before the oldest are dropped.",
)
def run(
    transport: str,
    air: str,
    adapter: str,
    personality: str,
    name: str | None,
    seed: int,
    scenario: str,
    speed: float,
    backfill: str | None,
    start: datetime | None,
    pairing: str,
    state_dir: Path | None,
    history_capacity: int,
) -> None:
    """Run a watch: advertise, serve the profile, measure, keep history."""
    backfill_s = checked_backfill(speed, backfill)
    timeline = load_builtin(scenario)  # ScenarioError: a usage error (exit 2)
    name = name or (infinitime.NAME if personality == "infinitime" else "WatchSim")
    state_dir = state_dir or default_state_dir(name)
    mode = PairingMode(pairing)
    config = WatchConfig(
        state_dir=state_dir,
        name=name,
        seed=seed,
        scenario=timeline,
        speed=speed,
        start_time=checked_start(start, backfill_s),
        backfill_s=backfill_s,
        pairing=mode,
        history_capacity=history_capacity,
    )
    app = PERSONALITIES[personality](config, _radio(transport, air, adapter, state_dir, name, mode))
    try:
        asyncio.run(_run(app, transport, air, adapter))
    except KeyboardInterrupt:  # before the signal handlers were installed
        raise click.Abort() from None
