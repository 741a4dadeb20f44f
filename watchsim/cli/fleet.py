"""``watchsim fleet``: N watches and the loopback air in one process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from watchsim.app import PERSONALITIES
from watchsim.cli import main
from watchsim.cli.run import PAIRING_HELP, checked_backfill, default_state_dir
from watchsim.errors import WatchsimError
from watchsim.fleet import DEFAULT_SCENARIOS, Fleet, FleetConfig, FleetControl
from watchsim.history import DEFAULT_CAPACITY
from watchsim.model import ScenarioError, builtin_names, load_builtin
from watchsim.peripheral.port import PairingMode


async def _run(fleet: Fleet) -> None:
    fleet.config.directory.mkdir(parents=True, exist_ok=True)
    control = FleetControl(fleet)
    await control.start()  # first: it also finds another fleet using this directory
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start()
        air = fleet.address
        # Scripts wait for this line.
        click.echo(
            f"fleet ready: {len(fleet.watches)} watches on air {air} (tcp-client:{air}), "
            f"manifest {fleet.manifest_path}, "
            f"control: watchsim ctl --state-dir {fleet.config.directory} status"
        )
        await stop.wait()
    finally:
        await control.close()
        await fleet.stop()
    u = fleet.usage()
    click.echo(
        f"fleet stopped: {u.count} watches, {u.wall_s:.0f} s; peak RSS {u.peak_rss_mb:.1f} MB "
        f"({u.base_rss_mb:.1f} MB before the watches, {u.rss_per_member_mb:.2f} MB per watch); "
        f"CPU {u.cpu_s:.1f} s ({u.cpu_s / u.count:.3f} s per watch)"
    )


@main.command()
@click.option("--count", type=click.IntRange(min=1), required=True, help="Number of watches.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State of every watch, the manifest and the control socket "
    "[default: $XDG_STATE_HOME/watchsim/fleet].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Air listen address.")
@click.option("--port", default=0, show_default=True, help="Air TCP port; 0 picks a free one.")
@click.option("--seed", default=1, show_default=True, help="Seed of the first watch (+1 each).")
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help=f"Scenarios given out in turn (repeatable; built in: {', '.join(builtin_names())}) "
    f"[default: {', '.join(DEFAULT_SCENARIOS)}].",
)
@click.option("--speed", default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--backfill", default=None, help="Pre-fill fresh histories: 7d, 24h, 90m.")
@click.option(
    "--interval",
    type=click.IntRange(min=1, max=86_400),
    default=None,
    help="Measure every metric this often (s) [default: the watch's own intervals].",
)
@click.option(
    "--pairing",
    type=click.Choice([m.value for m in PairingMode]),
    default=PairingMode.PASSKEY.value,
    show_default=True,
    help=PAIRING_HELP,
)
@click.option(
    "--personality",
    type=click.Choice(list(PERSONALITIES)),
    default="watchsim",
    show_default=True,
    help="The firmware every watch presents (as for `watchsim run`).",
)
@click.option("--prefix", default="FLEET", show_default=True, help="Names are PREFIX-0001 ...")
@click.option(
    "--history-capacity",
    type=click.IntRange(min=1),
    default=DEFAULT_CAPACITY,
    show_default=True,
    help="Records each watch keeps before the oldest are dropped.",
)
@click.option("--audit", is_flag=True, help="Also record every generated sample (soak runs).")
@click.option(
    "--fsync",
    is_flag=True,
    help="fsync every history write, as a single watch does (a killed fleet loses nothing "
    "without it; only a host crash could).",
)
@click.option(
    "--stagger/--no-stagger",
    default=True,
    show_default=True,
    help="Give each watch its own moment in the second to measure at (the manifest's "
    "phase); without it every watch measures on the second boundary.",
)
def fleet(
    count: int,
    directory: Path | None,
    host: str,
    port: int,
    seed: int,
    scenarios: tuple[str, ...],
    speed: float,
    backfill: str | None,
    interval: int | None,
    pairing: str,
    personality: str,
    prefix: str,
    history_capacity: int,
    audit: bool,
    fsync: bool,
    stagger: bool,
) -> None:
    """Run COUNT watches (own identity, seed and scenario each) and the air they share."""
    backfill_s = checked_backfill(speed, backfill)
    for name in scenarios:
        try:
            load_builtin(name)
        except ScenarioError as error:
            known = ", ".join(builtin_names())
            raise click.BadParameter(
                f"{error} (built in: {known})", param_hint="--scenario"
            ) from None
    config = FleetConfig(
        directory=directory or default_state_dir("fleet"),
        count=count,
        seed=seed,
        scenarios=scenarios or DEFAULT_SCENARIOS,
        speed=speed,
        backfill_s=backfill_s,
        interval_s=interval,
        pairing=PairingMode(pairing),
        personality=personality,
        prefix=prefix,
        history_capacity=history_capacity,
        audit=audit,
        durable=fsync,
        stagger=stagger,
        host=host,
        port=port,
    )
    try:
        asyncio.run(_run(Fleet(config)))
    except OSError as error:
        raise WatchsimError(str(error)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
