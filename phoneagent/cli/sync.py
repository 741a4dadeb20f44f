"""``sync ADDRESS`` (one-shot backfill with a progress bar) and ``run`` (the daemon)."""

from __future__ import annotations

import asyncio
import functools
import signal
import sys

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.cli.output import ProgressObserver, progress_bar
from phoneagent.cli.params import ADDRESS
from phoneagent.errors import EXIT_PAIRING_LOST
from phoneagent.instance import HeldError, sync_through_running_agent
from phoneagent.relays.service import RelayService
from phoneagent.services.agent import open_when_room, running_agent
from phoneagent.services.pairing import PairingRelay
from phoneagent.services.sync import SyncOutcome, sync_once
from phoneagent.sync import SyncObserver, SyncState
from protocol.address import Address


@click.command("sync")
@click.argument("address", type=ADDRESS)
@pass_agent
def sync_command(agent: AgentContext, address: Address) -> None:
    """Backfill one paired watch now, then disconnect; with cloud sync on, upload it."""

    async def work() -> tuple[int, SyncOutcome, bool]:
        async with agent.session("sync", address, paired=address) as (store, transport, config):
            with progress_bar() as progress:
                observer = ProgressObserver(progress, address)
                outcome = await sync_once(
                    agent.data_dir, store, transport, address, config=config.sync, observer=observer
                )
            device = await store.get_device(address)
        return observer.stored, outcome, device is not None and device.live_derived

    try:
        stored, outcome, live_derived = asyncio.run(work())
    except HeldError as busy:  # a running ``phoneagent run`` syncs it instead, if it can
        there = asyncio.run(sync_through_running_agent(address, busy))
        click.echo(f"Synced by the running agent: {there.by}.", err=True)
        click.echo(
            f"Stored {there.stored} new sample(s) from {address};"
            f" synced up to seq {there.next_seq - 1}."
        )
        return
    if live_derived:
        click.echo(
            f"Set the clock of {address}. It keeps no history, so there is nothing to fetch:"
            " its live values are stored per minute while `phoneagent run` runs"
            " (docs/infinitime.md)."
        )
    else:
        click.echo(
            f"Stored {stored} new sample(s) from {address};"
            f" synced up to seq {outcome.position - 1}."
        )
    if outcome.uploaded is not None:
        click.echo(f"Uploaded {outcome.uploaded.samples} sample(s) to the {outcome.region} cloud.")
    if outcome.upload_failure is not None:
        raise outcome.upload_failure


class LogObserver(SyncObserver):
    """State changes on stderr: addresses and states only, never a health value."""

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        click.echo(f"{device}: {state.value}" + (f" ({detail})" if detail else ""), err=True)


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
        with agent.holding("run"):
            opened = await open_when_room(
                functools.partial(agent.open_store, agent.resolved_key()),
                agent.data_dir,
                agent.config().sync,
                stop,
                functools.partial(click.echo, err=True),
            )
            if opened is None:
                return {}  # stopped while the disk was still full
            pairing = PairingRelay()  # ``pair`` while this runs asks through it
            async with (
                agent.session(opened=opened, agent=pairing) as (store, transport, config),
                running_agent(
                    agent.data_dir,
                    store,
                    transport,
                    config=config.sync,
                    observer=LogObserver(),
                    reopen=agent.radio_opener(store, config, pairing),
                    dbus=dbus,
                    say=lambda notice: click.echo(notice, err=True),
                    pairing=pairing,
                ) as running,
            ):
                click.echo(f"phoneagent running on {agent.data_dir}; Ctrl-C to stop.", err=True)
                click.echo(f"relays: {relay_summary(running.relays)}", err=True)
                return await running.daemon.run(stop)

    states = asyncio.run(work())
    lost = sorted(a for a, s in states.items() if s is SyncState.PAIRING_LOST)
    click.echo("phoneagent stopped.", err=True)
    if lost:
        click.echo(f"Pairing lost with {', '.join(lost)}: run phoneagent pair again.", err=True)
        sys.exit(EXIT_PAIRING_LOST)


COMMANDS = (sync_command, run_command)
