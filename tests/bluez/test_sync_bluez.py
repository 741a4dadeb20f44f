"""The sync engine end to end on the real stack: a watch app on bless (hci0), the agent's
sync engine on bleak's BlueZ backend (hci1), with the loopback tests' exactly-once check.

In one process, so that every sample the watch generates is recorded as it is appended
(``Recorder``) and compared with the agent's SQLCipher store.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from phoneagent.store import AsyncStore, Store
from phoneagent.sync import Committed, DeviceSync, SyncObserver, SyncPreferences, fixed_preferences
from phoneagent.sync.discovery import pair_device
from phoneagent.transport import RefusingAgent, Transport, parse_transport
from phoneagent.transport.factory import bluez_transport
from tests.bluez.conftest import Adapters
from tests.integration.test_sync_engine import KEY, QueueAgent, Recorder, assert_exact
from watchsim.app import BlueZRadio, WatchApp, WatchConfig
from watchsim.control import start_controlled
from watchsim.history import DEFAULT_CAPACITY
from watchsim.model import load_builtin
from watchsim.peripheral.port import PairingMode
from watchsim.testing import TEST_START, LoopbackWatch

pytestmark = pytest.mark.bluez_vm

WAIT = 60.0  # the VM is an emulated CPU: BlueZ round trips take tens of milliseconds
HOURS = 24  # a day of history, as in the loopback end-to-end test


class Reached(SyncObserver):
    """Sets ``event`` once a commit reaches ``seq``."""

    def __init__(self) -> None:
        self.seq = 0
        self.event = asyncio.Event()
        self.stored_up_to = 0

    def wait_for(self, seq: int) -> asyncio.Event:
        self.seq, self.event = seq, asyncio.Event()
        if self.stored_up_to >= seq:
            self.event.set()
        return self.event

    async def committed(self, commit: Committed) -> None:
        if commit.samples:
            self.stored_up_to = max(self.stored_up_to, commit.samples[-1].seq)
        if self.stored_up_to >= self.seq:
            self.event.set()


async def _start_watch(tmp_path: Path, adapters: Adapters) -> LoopbackWatch:
    config = WatchConfig(
        state_dir=tmp_path / "watch",
        name="BlueZWatch",
        seed=3,
        # Worn throughout (the default day charges off the wrist at 19:30, and the phone
        # sets the watch clock to its own time): live records whatever the hour.
        scenario=load_builtin("workout"),
        speed=1.0,
        start_time=TEST_START.timestamp(),
        backfill_s=int(timedelta(hours=HOURS).total_seconds()),
        pairing=PairingMode.PASSKEY,
        history_capacity=DEFAULT_CAPACITY,
    )
    app = WatchApp(config, BlueZRadio("hci0", config.name, config.pairing))
    passkeys: asyncio.Queue[int] = asyncio.Queue()
    app.passkey_listeners.append(passkeys.put_nowait)
    app.open_state_dir()
    control = await start_controlled(app)
    assert app.radio.address == adapters.watch
    return LoopbackWatch(app=app, address=adapters.watch, passkeys=passkeys, control=control)


# A day's ~90k records through an emulated CPU: the suite's 120 s covers two hours.
@pytest.mark.timeout(360)
async def test_pair_backfill_live_and_reconnect(adapters: Adapters, tmp_path: Path) -> None:
    watch = await _start_watch(tmp_path, adapters)
    recorder = Recorder(watch)
    store = Store.open(tmp_path / "agent", KEY)
    astore = AsyncStore(store)
    try:
        pairing = bluez_transport(parse_transport("bluez:hci1"), agent=QueueAgent(watch, WAIT))
        await pair_device(pairing, store, watch.address, scan_timeout=WAIT)

        # Backfill a day from the bond alone (a new connection, no second passkey).
        transport: Transport = bluez_transport(parse_transport("bluez:hci1"), agent=RefusingAgent())
        preferences = fixed_preferences(SyncPreferences())
        observer = Reached()
        sync = DeviceSync(watch.address, transport, astore, preferences, observer=observer)
        await sync.sync_once(scan_timeout=WAIT)
        assert_exact(store, watch.address, recorder)
        assert store.next_seq(watch.address) > 6_000

        # Live, then out of range and back: nothing lost, nothing twice.
        running = asyncio.create_task(
            DeviceSync(watch.address, transport, astore, preferences, observer=observer).run()
        )
        try:
            async with asyncio.timeout(WAIT):
                await observer.wait_for(watch.history.next_seq + 5).wait()
            await watch.app.out_of_range(10)
            async with asyncio.timeout(WAIT):
                await observer.wait_for(watch.history.next_seq + 5).wait()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert_exact(store, watch.address, recorder)
    finally:
        await astore.aclose()
        await watch.stop()
