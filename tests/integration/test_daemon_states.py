"""A running agent (``Daemon``) in the states other commands and the watch leave it in:
a watch deleted under it by another command, a watch whose pairing was lost. Each ends
that watch's engine only, and ``pair`` through the running agent syncs it again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bumble.link import LocalLink

from phoneagent.daemon import Daemon
from phoneagent.privacy import delete_data
from phoneagent.store import Store
from phoneagent.sync import SyncPreferences, SyncState, fixed_preferences
from phoneagent.sync.discovery import pair_device
from protocol.address import Address
from tests.integration.test_relays import States
from tests.integration.test_sync_engine import KEY, WAIT, Agent
from watchsim.testing import LoopbackWatch, start_loopback_watch

# A device the other command's store adds: the watch's new row gets a new id, not its old.
OTHER = "F0:5A:6E:00:00:99"


@dataclass
class Running:
    watch: LoopbackWatch
    agent: Agent
    daemon: Daemon
    states: States
    task: asyncio.Task[object]

    async def until(self, done: Callable[[], bool]) -> None:
        """Until ``done()``; fails at once if the daemon ends meanwhile, with its error."""
        async with asyncio.timeout(WAIT):
            while not done():
                if self.task.done():
                    raise AssertionError(f"the daemon ended: {self.task.exception()!r}")
                await asyncio.sleep(0.05)

    async def pair_again(self, after: int) -> None:
        """``pair`` through the running agent: the watch is synced (backfilled) again."""
        await self.daemon.pair(Address(self.watch.address), scan_timeout=WAIT, bond=False)
        try:
            await self.states.reach(SyncState.LIVE, after=after)
        except TimeoutError:
            raise AssertionError(f"{self.states.seen[after:]} {self.task}") from None
        assert await self.agent.astore.next_seq(self.watch.address) > 1
        assert not self.task.done()


@asynccontextmanager
async def running(link: LocalLink, tmp_path: Path) -> AsyncIterator[Running]:
    """A paired watch and a daemon syncing it; the daemon must stop cleanly at the end."""
    watch = await start_loopback_watch(link, tmp_path / "watch", seed=3, backfill=timedelta(0))
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    states = States()
    daemon = Daemon(
        agent.transport, agent.astore, fixed_preferences(SyncPreferences()), observer=states
    )
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield Running(watch, agent, daemon, states, task)
        stop.set()
        await asyncio.wait_for(task, WAIT)
    finally:
        stop.set()
        task.cancel()
        await agent.stop()
        await watch.stop()


async def test_a_watch_deleted_by_another_command_ends_its_engine_only(
    link: LocalLink, tmp_path: Path
) -> None:
    """``delete --device``, ``account delete`` commit first and tell ``run`` after, so a
    live record can reach the engine in between: ``run`` ended with a foreign-key error."""
    async with running(link, tmp_path) as run:
        live = await run.states.reach(SyncState.LIVE)
        other = Store.open(tmp_path / "agent", KEY)  # another process's connection
        try:
            other.add_device(OTHER)
            delete_data(other, device=run.watch.address)  # and no reload yet
        finally:
            other.close()
        await run.until(lambda: run.watch.address not in run.daemon.syncs)
        await run.pair_again(after=live)


async def test_pair_through_run_after_the_pairing_was_lost(link: LocalLink, tmp_path: Path) -> None:
    """The engine says "pairing lost, run pair again"; ``pair`` through ``run`` was then
    refused: "is paired and synced already (unpair it first)"."""
    async with running(link, tmp_path) as run:
        await run.states.reach(SyncState.LIVE)
        await run.watch.app.factory_reset()
        lost = await run.states.reach(SyncState.PAIRING_LOST)
        await run.pair_again(after=lost)
