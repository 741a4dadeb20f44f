"""Connecting never stalls: a connect that timed out is gone at the controller (no late
connection surprises the host, which Bumble asserts on, or leaves the peer connected to a
phone that never uses it), and a connect to a bonded watch while another watch is scanned
for completes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from bumble import core, hci
from bumble.device import Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import PairingKeys
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from bumblekit import controller
from bumblekit.controller import FILTER_ACCEPT_LIST_SIZE, virtual_controller
from phoneagent.daemon import Daemon
from phoneagent.sync import SyncPreferences, fixed_preferences
from phoneagent.sync.discovery import pair_device
from phoneagent.transport.bonds import MemoryBondStore
from phoneagent.transport.radio import BumbleRadio
from tests.integration.test_sync_engine import WAIT, Agent, CaughtUp, QueueAgent
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch

# Guards the test against the hang it checks for; far above a connect's own timeout.
GUARD_S = 10.0
# Paired to one agent: more than a small chip's accept list holds (8 entries, 2 a watch).
WATCHES = 6


async def _device(link: LocalLink, name: str, address: str) -> Device:
    controller = virtual_controller(name, link=link)
    device = Device(
        config=DeviceConfiguration(
            name=name, address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        ),
        host=Host(controller, AsyncPipeSink(controller)),
    )
    await device.power_on()
    return device


async def test_a_timed_out_connect_leaves_nothing_pending() -> None:
    link = new_link()
    central = await _device(link, "central", "F1:00:00:00:00:01")
    watch = await _device(link, "watch", "F1:00:00:00:00:02")
    observer = await _device(link, "observer", "F1:00:00:00:00:03")

    # The watch is silent: Bumble's timeout cancels the connect at the controller, and
    # the controller reports the cancelled connection so the wait ends.
    with pytest.raises(core.TimeoutError):
        async with asyncio.timeout(GUARD_S):
            await central.connect_le(watch.random_address, timeout=0.2)

    # Now it advertises: a controller still connecting would take it here.
    heard = asyncio.Event()
    observer.on(
        Device.EVENT_ADVERTISEMENT,
        lambda ad: heard.set() if ad.address == watch.random_address else None,
    )
    await observer.start_scanning(filter_duplicates=False)
    await watch.start_advertising(auto_restart=False)
    await heard.wait()
    assert not watch.connections
    assert not central.connections

    # And the central can connect again.
    connection = await central.connect_le(watch.random_address, timeout=GUARD_S)
    assert list(central.connections.values()) == [connection]
    assert len(watch.connections) == 1


async def test_a_cancel_with_nothing_pending_is_refused() -> None:
    """As a chip does (Core Vol 4 Part E 7.8.13): Command Disallowed."""
    central = await _device(new_link(), "central", "F1:00:00:00:00:01")
    with pytest.raises(hci.HCI_Error) as refused:
        await central.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
    assert refused.value.error_code == hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR


async def test_a_bonded_watch_connects_while_another_is_scanned_for() -> None:
    """Holding a watch's IRK, Bumble looks for it once more before connecting; a scan that
    another listener narrowed to the other watch hid it, and the connect waited for ever
    (two watches, one agent: both engines stuck 'connecting')."""
    link = new_link()
    first = await _device(link, "first", "F1:00:00:00:00:02")
    second = await _device(link, "second", "F1:00:00:00:00:03")
    for watch in (first, second):
        await watch.start_advertising(auto_restart=False)
    bonds = MemoryBondStore()
    keys = PairingKeys(irk=PairingKeys.Key(os.urandom(16)))
    bonds.put("F1:00:00:00:00:02", json.dumps(keys.to_dict()))
    radio = await BumbleRadio.on_link(link, bonds=bonds)
    await radio.device.refresh_resolving_list()
    # The other engine, waiting for its own watch to advertise.
    await radio.add_scan_listener(lambda _: None, only=("F1:00:00:00:00:03",))

    connection = await radio.connect("F1:00:00:00:00:02", within=GUARD_S)

    assert connection.peer_address == first.random_address
    assert len(first.connections) == 1
    await radio.close()


@pytest.mark.parametrize("list_size", [FILTER_ACCEPT_LIST_SIZE, 8])
async def test_one_agent_syncs_every_paired_watch(
    tmp_path: Path,
    list_size: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six paired watches, two accept-list entries each. A phone's controller holds them
    all, and the agent never hears the stranger on the air; a small chip's list (8) is
    full, and the agent scans unfiltered and still reaches all six."""
    monkeypatch.setattr(controller, "FILTER_ACCEPT_LIST_SIZE", list_size)
    caplog.set_level(logging.INFO, logger="phoneagent.transport.radio")
    link = new_link()
    watches = [
        await start_loopback_watch(
            link, tmp_path / f"w{n}", seed=n, name=f"W{n}", backfill=timedelta(minutes=2)
        )
        for n in range(WATCHES)
    ]
    stranger = await _device(link, "stranger", "F1:00:00:00:00:99")
    await stranger.start_advertising(auto_restart=False)
    agent = await Agent.start(link, tmp_path / "agent", watches[0])
    for watch in watches:
        agent.radio.agent = QueueAgent(watch)
        await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    heard: set[hci.Address] = set()
    agent.radio.device.on(Device.EVENT_ADVERTISEMENT, lambda ad: heard.add(ad.address))
    observer = CaughtUp(WATCHES)
    stop = asyncio.Event()
    daemon = Daemon(
        agent.transport, agent.astore, fixed_preferences(SyncPreferences()), observer=observer
    )
    running = asyncio.create_task(daemon.run(stop))
    try:
        async with asyncio.timeout(WAIT):
            await observer.done.wait()
    finally:
        stop.set()
        await running
        await agent.stop()
        for watch in watches:
            await watch.stop()
    full = list_size < 2 * WATCHES
    assert ("scanning unfiltered" in caplog.text) is full
    if not full:
        assert stranger.random_address not in heard
