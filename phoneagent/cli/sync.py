"""``sync ADDRESS`` (one-shot backfill with a progress bar) and ``run`` (the daemon)."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent, preferences_of
from phoneagent.cli.output import ProgressObserver, progress_bar
from phoneagent.cli.params import ADDRESS
from phoneagent.daemon import Daemon, open_when_room
from phoneagent.errors import EXIT_ERROR, EXIT_PAIRING_LOST, EXIT_USAGE
from phoneagent.relays.control import ControlError
from phoneagent.relays.service import RelayService
from phoneagent.store import AsyncStore, Store
from phoneagent.sync import DeviceSync, SyncObserver, SyncState
from phoneagent.upload import EndpointError, Uploader, endpoints_path, load_endpoints
from protocol.address import Address


@click.command("sync")
@click.argument("address", type=ADDRESS)
@pass_agent
def sync_command(agent: AgentContext, address: Address) -> None:
    """Backfill one paired watch now, then disconnect."""

    async def work() -> tuple[int, int]:
        async with agent.session(paired=address) as (store, transport, config):
            preferences = preferences_of(store.store)
            with progress_bar() as progress:
                observer = ProgressObserver(progress, address)
                sync = DeviceSync(
                    address,
                    transport,
                    store,
                    preferences,
                    observer=observer,
                    connect_timeout=config.sync.connect_timeout,
                )
                cursor = await sync.sync_once(scan_timeout=config.sync.scan_timeout)
        return observer.stored, cursor

    stored, cursor = asyncio.run(work())
    click.echo(f"Stored {stored} new sample(s) from {address}; synced up to seq {cursor - 1}.")


def configured_uploader(agent: AgentContext, store: Store) -> Uploader | None:
    """The home region's uploader when cloud endpoints are configured for an account.

    Whether it may publish is still asked before every batch (PR-CLOUD, PR-GUEST).
    """
    path = endpoints_path(agent.data_dir)
    account = store.ledger.get_account()
    if not path.exists() or account is None or account.guest or account.region is None:
        return None
    try:
        endpoint = load_endpoints(path).for_region(account.region)
        endpoint.check_transport()  # PR-TLS: refused now, not when the first batch is due
    except EndpointError as error:
        raise CliError(str(error), EXIT_USAGE) from error
    return Uploader(store, endpoint)


class LogObserver(SyncObserver):
    """State changes on stderr: addresses and states only, never a health value."""

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        click.echo(f"{device}: {state.value}" + (f" ({detail})" if detail else ""), err=True)


async def _reload(agent: AgentContext, store: AsyncStore, daemon: Daemon) -> None:
    """A command changed the ledger, the account or the pairings while the daemon runs."""
    await daemon.reload()
    if daemon.uploading:
        return
    try:  # an account, a cloud.toml or cloud sync may be new since the start
        uploader = await asyncio.to_thread(configured_uploader, agent, store.store)
    except CliError as error:
        click.echo(f"Cloud upload not started: {error.message}", err=True)
        return
    if uploader is not None:
        daemon.start_uploader(uploader)


def relay_summary(relays: RelayService) -> str:
    """Where each relayed feature comes from, and why any comes from injection only."""
    by_reason: dict[str, list[str]] = {}
    for feature, reason in sorted(relays.skipped.items()):
        by_reason.setdefault(reason, []).append(feature)
    if len(by_reason) == 1 and not relays.sources:
        why = next(iter(by_reason))  # the same for all: --no-dbus, no session bus
    else:
        why = "; ".join(f"{', '.join(f)}: {reason}" for reason, f in by_reason.items())
    sources = [f"{feature} from {source}" for feature, source in sorted(relays.sources.items())]
    if why:
        sources.append(f"phoneagent inject only ({why})")
    return ", ".join(sources) or "phoneagent inject only"


@click.command("run")
@click.option(
    "--dbus/--no-dbus",
    default=True,
    show_default=True,
    help="Relay desktop notifications and MPRIS music from the session bus, and calls from "
    "ModemManager; with --no-dbus only `phoneagent inject` feeds the relays.",
)
@pass_agent
def run_command(agent: AgentContext, dbus: bool) -> None:
    """Keep every paired watch synced and relayed to until SIGINT or SIGTERM."""

    async def work() -> dict[str, SyncState]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        opened = await open_when_room(
            functools.partial(agent.open_store, agent.resolved_key()),
            agent.data_dir,
            agent.config().sync,
            stop,
            functools.partial(click.echo, err=True),
        )
        if opened is None:
            return {}  # stopped while the disk was still full
        async with agent.session(opened=opened) as (store, transport, config):
            relays = RelayService(store.store, agent.data_dir, dbus=dbus)
            try:
                await relays.start()
            except ControlError as error:  # another agent serves this data dir
                raise CliError(str(error), EXIT_ERROR) from error
            try:
                daemon = Daemon(
                    transport,
                    store,
                    preferences_of(store.store),
                    config=config.sync,
                    observer=LogObserver(),
                    uploader=configured_uploader(agent, store.store),
                    relays=relays.hub,
                    reopen=agent.radio_opener(store, config),
                )
                relays.reload_listeners.append(functools.partial(_reload, agent, store, daemon))
                relays.status_parts["watches"] = daemon.report
                click.echo(f"phoneagent running on {agent.data_dir}; Ctrl-C to stop.", err=True)
                click.echo(f"relays: {relay_summary(relays)}", err=True)
                return await daemon.run(stop)
            finally:
                await relays.aclose()

    states = asyncio.run(work())
    lost = sorted(a for a, s in states.items() if s is SyncState.PAIRING_LOST)
    click.echo("phoneagent stopped.", err=True)
    if lost:
        click.echo(f"Pairing lost with {', '.join(lost)}: run phoneagent pair again.", err=True)
        sys.exit(EXIT_PAIRING_LOST)


COMMANDS = (sync_command, run_command)
