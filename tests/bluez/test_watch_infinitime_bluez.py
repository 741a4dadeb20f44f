"""The InfiniTime personality on the real stack (issue 20): the watch app on bless (hci0)
as ``--personality infinitime``, the agent on bleak's BlueZ backend (hci1), in one
process as ``test_sync_bluez``: advertised as InfiniTime advertises (btmon on hci1 is the
witness), found by its name, recorded unbonded, live values stored as per-minute
records, a notification relayed and seen on the watch's ``ctl status``; then the same
through the real CLIs (the scenario of ``tests/system/test_infinitime_agent_cli.py``).

Named to sort after ``test_watch_hostile_central``: a watch application of another
layout registered before ``test_sync_bluez`` may leave hci1's bluetoothd a stale GATT
cache (docs/bluez.md, trap 12).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from phoneagent.control import request
from phoneagent.daemon import Daemon
from phoneagent.privacy.export import rows
from phoneagent.relays.permissions import Feature, set_permission
from phoneagent.relays.service import RelayService
from phoneagent.store import LIVE_PER_MINUTE, AsyncStore, Store
from phoneagent.sync import Committed, SyncObserver, SyncPreferences, fixed_preferences
from phoneagent.sync.discovery import pair_device, scan
from phoneagent.sync.infinitime import InfiniTimeSync
from phoneagent.transport import RefusingAgent, parse_transport
from phoneagent.transport.factory import bluez_transport
from protocol import infinitime
from protocol.metrics import Metric
from tests.bluez.conftest import Adapters
from tests.bluez.tools import btmon
from tests.integration.test_sync_engine import KEY
from tests.processes import Phone, Watch, infinitime_pair_sync_relay
from watchsim.app import PERSONALITIES, BlueZRadio, WatchApp, WatchConfig
from watchsim.control import request as ctl
from watchsim.control import start_controlled
from watchsim.controlops import Status
from watchsim.history import DEFAULT_CAPACITY
from watchsim.model import load_builtin
from watchsim.peripheral.port import PairingMode
from watchsim.testing import TEST_START

pytestmark = pytest.mark.bluez_vm

WAIT = 60.0  # BlueZ round trips on an emulated CPU take tens of milliseconds
SCAN_S = 5.0  # a scan window is a duration: the watch advertises many times within it
# A minute of the watch's (and so the agent's) clock in 6 s: records within the test.
SPEED = 10.0
CLI_WAIT = 90.0  # a command's imports on an emulated CPU, then BlueZ (test_cli_bluez)


def _report(kind: str, address: str) -> re.Pattern[str]:
    """One LE Advertising Report of ``kind`` from ``address`` in btmon's decoding: its
    lines up to the next HCI event."""
    return re.compile(rf"Event type: {kind}[^\n]*\n[^>]*?Address: {address}\b[^>]*")


class Minutes(SyncObserver):
    """The metrics of the per-minute records committed so far."""

    def __init__(self) -> None:
        self.metrics: set[Metric] = set()
        self._stored = asyncio.Event()

    async def committed(self, commit: Committed) -> None:
        self.metrics |= {s.metric for s in commit.samples}
        self._stored.set()

    async def stored(self, metrics: set[Metric]) -> None:
        async with asyncio.timeout(WAIT):
            while not metrics <= self.metrics:
                self._stored.clear()
                await self._stored.wait()


async def _start_watch(state_dir: Path) -> WatchApp:
    config = WatchConfig(
        state_dir=state_dir,
        name=infinitime.NAME,
        seed=3,
        scenario=load_builtin("workout"),  # worn and stepping whatever the hour
        speed=SPEED,
        start_time=TEST_START.timestamp(),
        backfill_s=0,
        pairing=PairingMode.PASSKEY,
        history_capacity=DEFAULT_CAPACITY,
    )
    app = PERSONALITIES["infinitime"](config, BlueZRadio("hci0", config.name, config.pairing))
    app.open_state_dir()
    return app


async def _shown(app: WatchApp, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The watch's ``ctl status`` once ``check`` holds, asked again at each line it logs."""
    changed = asyncio.Event()
    app.log_listeners.append(lambda _line: changed.set())
    async with asyncio.timeout(WAIT):
        while True:
            changed.clear()
            status: dict[str, Any] = await ctl(app.config.state_dir, Status())
            if check(status):
                return status
            await changed.wait()


@pytest.mark.timeout(300)
async def test_infinitime_watch_found_paired_synced_and_relayed(
    adapters: Adapters, tmp_path: Path
) -> None:
    app = await _start_watch(tmp_path / "watch")
    control = await start_controlled(app)
    data_dir = tmp_path / "agent"
    store = Store.open(data_dir, KEY)
    astore = AsyncStore(store)
    relays = RelayService(store, data_dir, dbus=False)
    stop = asyncio.Event()
    running: asyncio.Task[Any] | None = None
    try:
        assert app.radio.address == adapters.watch
        transport = bluez_transport(parse_transport("bluez:hci1"), agent=RefusingAgent())

        # Found by the name in its scan response, as Gadgetbridge and itd find it.
        monitor = await btmon()  # attached: it sees the scan from its start
        try:
            sightings = await scan(transport, SCAN_S)
            await monitor.expect(_report("Scan response", adapters.watch).pattern)
        finally:
            trace = await monitor.stop()
        (seen,) = [s for s in sightings if s.address == adapters.watch]
        assert (seen.name, seen.watch) == (infinitime.NAME, True)
        advertised = _report("Connectable undirected - ADV_IND", adapters.watch).search(trace)
        response = _report("Scan response", adapters.watch).search(trace)
        assert advertised is not None and response is not None, trace
        assert "Heart Rate (0x180d)" in advertised[0], advertised[0]
        assert "128-bit Service UUIDs (complete): 1 entry" in advertised[0], advertised[0]
        assert "Name" not in advertised[0], advertised[0]
        assert f"Name (complete): {infinitime.NAME}" in response[0], response[0]

        # Recorded unbonded: the watch never asks for a bond.
        record = await pair_device(transport, store, adapters.watch, scan_timeout=WAIT)
        assert (record.personality, record.live_derived, record.firmware) == (
            "infinitime",
            True,
            "1.15.0",
        )
        assert store.list_bonds() == []

        set_permission(store, Feature.NOTIFICATIONS, True)
        await relays.start()
        minutes = Minutes()
        daemon = Daemon(
            transport,
            astore,
            fixed_preferences(SyncPreferences()),
            observer=minutes,
            relays=relays.hub,
            clock=lambda: datetime.fromtimestamp(app.clock.now(), UTC),
        )
        running = asyncio.create_task(daemon.run(stop))
        await minutes.stored({Metric.HEART_RATE, Metric.STEPS})
        assert isinstance(daemon.syncs[adapters.watch], InfiniTimeSync)

        sent = await request(
            data_dir, {"op": "notify", "app": "chat", "title": "Ann", "body": "Hi"}
        )
        assert sent["result"] == "delivered"
        await _shown(app, lambda s: "Ann / Hi" in s["notifications"])

        stop.set()
        await asyncio.wait_for(running, WAIT)
        samples = list(rows(store, "samples"))
        assert {s["source"] for s in samples} == {LIVE_PER_MINUTE}
        assert {s["metric"] for s in samples} == {"heart_rate", "steps"}
        assert all(s["time"].endswith(":00+00:00") for s in samples)
    finally:
        stop.set()
        if running is not None and not running.done():
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await relays.aclose()
        await astore.aclose()
        await control.close()
        await app.stop()


# Seven agent commands and two watch ones, each paying its imports on an emulated CPU.
@pytest.mark.timeout(420)
async def test_infinitime_process_paired_synced_and_relayed_through_the_clis(
    adapters: Adapters, tmp_path: Path
) -> None:
    options = ("--transport", "bluez", "--adapter", "hci0", "--personality", "infinitime")
    watch = Watch(tmp_path / "pinetime", options, wait=CLI_WAIT, backfill="1m")
    phone = Phone(tmp_path / "agent", "bluez:hci1", wait=CLI_WAIT)
    assert await infinitime_pair_sync_relay(watch, phone, SCAN_S) == adapters.watch
