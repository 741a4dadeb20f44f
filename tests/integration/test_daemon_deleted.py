"""A watch deleted under a running agent by another command (``delete --device``,
``account delete``): those commit first and tell ``run`` after, so a live record can reach
the running engine in between. That engine ends; ``run`` does not (it ended with a
foreign-key error before), and pairing the watch again through it syncs it again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
from watchsim.testing import start_loopback_watch

# A device the other command's store adds: the watch's new row gets a new id, not its old.
OTHER = "F0:5A:6E:00:00:99"


async def until(done: Callable[[], bool], running: asyncio.Task[object]) -> None:
    """Until ``done()``; fails at once if the daemon ends meanwhile, with its error."""
    async with asyncio.timeout(WAIT):
        while not done():
            if running.done():
                raise AssertionError(f"the daemon ended: {running.exception()!r}")
            await asyncio.sleep(0.05)


async def test_a_watch_deleted_by_another_command_ends_its_engine_only(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(link, tmp_path / "watch", seed=3, backfill=timedelta(0))
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    states = States()
    daemon = Daemon(
        agent.transport, agent.astore, fixed_preferences(SyncPreferences()), observer=states
    )
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    try:
        live = await states.reach(SyncState.LIVE)
        other = Store.open(tmp_path / "agent", KEY)  # another process's connection
        try:
            other.add_device(OTHER)
            delete_data(other, device=watch.address)  # and no reload yet
        finally:
            other.close()
        await until(lambda: watch.address not in daemon.syncs, running)

        await daemon.pair(Address(watch.address), scan_timeout=WAIT, bond=False)
        try:
            await states.reach(SyncState.LIVE, after=live)
        except TimeoutError:
            raise AssertionError(f"{states.seen[live:]} {running}") from None
        assert await agent.astore.next_seq(watch.address) > 1  # its backfill is stored
        assert not running.done()
        stop.set()
        await asyncio.wait_for(running, WAIT)
    finally:
        stop.set()
        running.cancel()
        await agent.stop()
        await watch.stop()
