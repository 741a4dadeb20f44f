"""The daemon over the air's TCP port: when the air restarts, its radio goes with it, and
``phoneagent run`` (a ``Daemon`` given ``reopen``) opens a new one and syncs on."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from pathlib import Path

from phoneagent.config import SyncConfig
from phoneagent.daemon import Daemon
from phoneagent.store import AsyncStore, Store
from phoneagent.sync import StoreBonds, SyncPreferences, SyncState, fixed_preferences
from phoneagent.sync.discovery import pair_device
from phoneagent.transport import open_transport, parse_transport
from tests.integration.test_relays import States
from tests.integration.test_sync_engine import KEY, WAIT, QueueAgent
from watchsim.air import Air
from watchsim.testing import start_loopback_watch


async def test_a_new_radio_after_the_air_restarts_and_no_sample_twice(tmp_path: Path) -> None:
    air = Air()
    host, port = await air.start()
    # The watch joins the air's own link in-process, as a fleet's do: it stays up.
    watch = await start_loopback_watch(
        air.link, tmp_path / "watch", seed=5, backfill=timedelta(minutes=5), scenario="workout"
    )
    store = Store.open(tmp_path / "agent", KEY)
    astore = AsyncStore(store)
    opener = functools.partial(
        open_transport,
        parse_transport(f"loopback:{host}:{port}"),
        bonds=StoreBonds(store),
        agent=QueueAgent(watch),
    )
    transport = await opener()
    states = States()
    stop = asyncio.Event()
    try:
        await pair_device(transport, store, watch.address, scan_timeout=WAIT)
        daemon = Daemon(
            transport,
            astore,
            fixed_preferences(SyncPreferences()),
            config=SyncConfig(backoff_initial=0.05, backoff_max=0.5),
            observer=states,
            reopen=opener,
        )
        running = asyncio.create_task(daemon.run(stop))
        live = await states.reach(SyncState.LIVE)
        first_radio = transport.radio
        assert first_radio is not None and not first_radio.lost

        await air.close()  # every TCP client is dropped: the agent's radio is gone
        assert first_radio.transport_lost is not None
        await asyncio.wait_for(asyncio.shield(first_radio.transport_lost), WAIT)
        await air.start()  # the same port again

        back = await states.reach(SyncState.LIVE, after=live)
        assert not running.done()  # the lost radio did not end the daemon
        # Told as a lost radio being reopened, never as "stopped" (issue 16, item 8).
        assert SyncState.RADIO_LOST in states.seen[live:back]
        assert SyncState.STOPPED not in states.seen[live:back]
        stop.set()
        assert await asyncio.wait_for(running, WAIT)
        await astore.pool.run(lambda: None)  # after a cancelled engine's commit, still running
        samples = sum(store.counts()[watch.address].values())
        assert samples == store.next_seq(watch.address) - 1  # each seq once (0 never assigned)
    finally:
        stop.set()
        await transport.close()
        await astore.aclose()
        await watch.stop()
        await air.close()
