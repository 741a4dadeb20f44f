"""``Daemon.sync_now``, what a running agent does for ``phoneagent sync`` (issue 17,
finding 4): live, it answers once everything the watch held when asked is stored; a
back-off in progress ends at once; a watch that does not advertise, or one it does not
sync, is refused with the reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from bumble.link import LocalLink

from phoneagent.config import SyncConfig
from phoneagent.daemon import Daemon, SyncNowError
from phoneagent.sync import SyncPreferences, SyncState, fixed_preferences
from phoneagent.sync.discovery import pair_device
from tests.integration.test_relays import States
from tests.integration.test_sync_engine import WAIT, Agent
from watchsim.testing import start_loopback_watch

# A back-off no test outlives: only ``sync_now`` ends it.
FOREVER_S = 3600.0
SCAN_TIMEOUT_S = 5.0


async def test_sync_now_live_after_a_back_off_and_refused(link: LocalLink, tmp_path: Path) -> None:
    watch = await start_loopback_watch(
        link, tmp_path / "watch", seed=8, backfill=timedelta(minutes=10), scenario="workout"
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    states = States()
    config = SyncConfig(
        backoff_initial=FOREVER_S, backoff_max=FOREVER_S, scan_timeout=SCAN_TIMEOUT_S
    )
    daemon = Daemon(
        agent.transport,
        agent.astore,
        fixed_preferences(SyncPreferences()),
        config=config,
        observer=states,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(WAIT):
            live = await states.reach(SyncState.LIVE)
            newest = watch.history.next_seq - 1
            _stored, position = await daemon.sync_now(watch.address)
            assert position > newest

            await watch.app.out_of_range(10**6)
            away = await states.reach(SyncState.BACKOFF, after=live)
            await watch.reboot()  # in range again; the engine sleeps on
            newest = watch.history.next_seq - 1
            _stored, position = await daemon.sync_now(watch.address)
            assert position > newest
            assert SyncState.LIVE in states.seen[away:]

            await watch.app.out_of_range(10**6)
            await states.reach(SyncState.BACKOFF, after=states.seen.index(SyncState.LIVE, away))
            with pytest.raises(
                SyncNowError, match=f"did not advertise within {SCAN_TIMEOUT_S:g} s"
            ):
                await daemon.sync_now(watch.address)
            with pytest.raises(SyncNowError, match="not paired"):
                await daemon.sync_now("F0:5A:6E:00:00:99")
        stop.set()
        await asyncio.wait_for(running, WAIT)
    finally:
        stop.set()
        running.cancel()
        await agent.stop()
        await watch.stop()
