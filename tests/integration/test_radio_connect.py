"""Connecting never stalls: a connect that timed out is gone at the controller (no late
connection surprises the host, which Bumble asserts on, or leaves the peer connected to a
phone that never uses it), and a connect to a bonded watch while another watch is scanned
for completes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from bleak.exc import BleakError
from bumble import core, hci
from bumble.controller import Controller
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
from phoneagent.transport.radio import CONNECT_MIN_S, BumbleRadio
from tests.integration.test_sync_engine import WAIT, Agent, CaughtUp, QueueAgent
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import LoopbackWatch, start_loopback_watch

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


async def _radio_holding_the_irk_of(link: LocalLink, address: str) -> BumbleRadio:
    """A radio bonded to ``address`` with an IRK, as after pairing: Bumble's connect then
    looks for the peer's current address before connecting."""
    bonds = MemoryBondStore()
    keys = PairingKeys(irk=PairingKeys.Key(os.urandom(16)))
    bonds.put(address, json.dumps(keys.to_dict()))
    radio = await BumbleRadio.on_link(link, bonds=bonds)
    await radio.device.refresh_resolving_list()
    return radio


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
    radio = await _radio_holding_the_irk_of(link, "F1:00:00:00:00:02")
    # The other engine, waiting for its own watch to advertise.
    await radio.add_scan_listener(lambda _: None, only=("F1:00:00:00:00:03",))

    connection = await radio.connect("F1:00:00:00:00:02", within=GUARD_S)

    assert connection.peer_address == first.random_address
    assert len(first.connections) == 1
    await radio.close()


async def test_a_bonded_watch_is_connected_on_the_advertisement_after_the_sighting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Holding the watch's IRK, Bumble's connect would wait for one more advertisement to
    learn the address the radio's scan has just heard: an advertising interval of every
    sync. The radio hands it the sighting, so Bumble never searches."""
    link = new_link()
    watch = await _device(link, "watch", "F1:00:00:00:00:02")
    await watch.start_advertising(auto_restart=False)
    radio = await _radio_holding_the_irk_of(link, "F1:00:00:00:00:02")
    searches: list[hci.Address] = []

    async def search(device: Device, identity: hci.Address) -> hci.Address:
        searches.append(identity)
        return identity

    monkeypatch.setattr(Device, "find_peer_by_identity_address", search)

    connection = await radio.connect("F1:00:00:00:00:02", within=GUARD_S)

    assert connection.peer_address == watch.random_address
    assert searches == []
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
    # Waiting for all six at once throughout, as the engines do when they start together
    # (whether they overlap is up to the scheduler): the list must hold them all.
    await agent.radio.add_scan_listener(lambda _: None, only=[w.address for w in watches])
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


class Central:
    """A watch on a fresh link, the agent's radio and its chip, and what the watch says
    of its connections (its own log: "connected", "disconnected")."""

    def __init__(self, watch: LoopbackWatch, radio: BumbleRadio, chip: Controller) -> None:
        self.watch = watch
        self.radio = radio
        self.chip = chip
        self.said: asyncio.Queue[str] = asyncio.Queue()
        watch.app.log_listeners.append(self._heard)

    def _heard(self, line: str) -> None:
        if line.startswith(("connected:", "disconnected:")):
            self.said.put_nowait(line.split(":")[0])

    @classmethod
    async def start(cls, tmp_path: Path) -> Central:
        link = new_link()
        watch = await start_loopback_watch(link, tmp_path / "watch")
        before = set(link.controllers)
        radio = await BumbleRadio.on_link(link, bonds=MemoryBondStore())
        (chip,) = set(link.controllers) - before
        return cls(watch, radio, chip)

    async def watch_free_again(self) -> None:
        """The watch was connected and let go, and advertises again: a connect reaches it."""
        assert await self.said.get() == "connected"
        assert await self.said.get() == "disconnected"
        connection = await self.radio.connect(self.watch.address, within=GUARD_S)
        assert await self.said.get() == "connected"
        assert list(self.radio.device.connections.values()) == [connection]

    async def stop(self) -> None:
        await self.radio.close()
        await self.watch.stop()


async def test_a_connect_given_up_as_the_controller_starts_leaves_the_watch_free(
    tmp_path: Path,
) -> None:
    """The caller gives up while LE Create Connection is on its way to the controller:
    the controller connects at the watch's next advertisement all the same. The agent
    drops that connection (Bumble asserted on it and never registered it, so the watch
    stayed connected to a phone that could not use it) and the watch advertises again."""
    central = await Central.start(tmp_path)
    chip = central.chip
    giving_up = asyncio.create_task(central.radio.connect(central.watch.address, within=GUARD_S))
    name = "on_hci_le_create_connection_command"
    received: Callable[[hci.HCI_Command], None] = getattr(chip, name)

    def give_up(command: hci.HCI_Command) -> None:
        """The caller gives up with the command on its way: the chip takes it after the
        caller has woken to its cancellation (the callbacks run in order)."""
        setattr(chip, name, received)
        giving_up.cancel()
        asyncio.get_running_loop().call_soon(received, command)

    setattr(chip, name, give_up)
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(asyncio.CancelledError):
            await giving_up
        await central.watch_free_again()
    await central.stop()


async def test_a_connection_that_crosses_its_cancel_is_dropped(tmp_path: Path) -> None:
    """Bumble's connect times out and cancels just as the chip connects: the chip
    refuses the cancel (Command Disallowed, Core Vol 4 Part E 7.8.13), so the connect
    fails with a connection made. The agent drops it and the watch advertises again."""
    central = await Central.start(tmp_path)
    chip = central.chip
    connect_now = chip.create_le_connection

    def deaf(peer_address: hci.Address) -> None:
        """Not connecting at the watch's advertisements, until the cancel."""

    chip.create_le_connection = deaf  # type: ignore[method-assign]
    name = "on_hci_le_create_connection_cancel_command"
    refuse: Callable[[hci.HCI_Command], object] = getattr(chip, name)

    def crossing(command: hci.HCI_Command) -> object:
        pending = chip.pending_le_connection
        assert pending is not None
        connect_now(pending.peer_address)
        delattr(chip, "create_le_connection")
        return refuse(command)

    setattr(chip, name, crossing)
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(BleakError, match="refused"):
            await central.radio.connect(central.watch.address, within=CONNECT_MIN_S)
        await central.watch_free_again()
    await central.stop()
