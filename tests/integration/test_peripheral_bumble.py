"""The watch peripheral over Bumble, seen by an independent raw Bumble central.

The central helpers here are also used by test_peripheral_security.py.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_module
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from bumble import hci
from bumble.att import ATT_Handle_Value_Notification
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, Appearance, ProtocolError
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration
from bumble.device import Peer as BumblePeer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from protocol import uuids
from protocol.errors import RangeError
from protocol.profile import ADVERTISED_SERVICE_UUIDS, PROFILE, Property
from protocol.uuids import sig_uuid
from watchsim.peripheral.bumble_adapter import (
    FAST_ADVERTISING_MS,
    BumblePeripheral,
    advertising_payload,
    bumble_uuid,
    start_on_link,
)
from watchsim.peripheral.port import (
    AttErrorCode,
    Connected,
    Disconnected,
    Peer,
    PeripheralEvent,
    SubscriptionChanged,
)

WAIT = 5.0
E = TypeVar("E")


class PasskeyEntry(PairingDelegate):
    """Keyboard-only central: types the passkey it is given by ``passkey``."""

    def __init__(self, passkey: Callable[[], Awaitable[int]]) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY)
        self._passkey = passkey

    async def get_number(self) -> int | None:
        return await self._passkey()


class Comparison(PairingDelegate):
    """A central with a display and yes/no: remembers the number it was shown."""

    def __init__(self) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
        self.numbers: list[int] = []

    async def compare_numbers(self, number: int, digits: int) -> bool:
        self.numbers.append(number)
        return True


class Central:
    def __init__(
        self, link: LocalLink, address: str, delegate: PairingDelegate | None = None
    ) -> None:
        controller = Controller(f"central-{address}", link=link)
        config = DeviceConfiguration(
            name="central",
            address=hci.Address(address),
            identity_address_type=hci.Address.RANDOM_DEVICE_ADDRESS,
        )
        self.device = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
        self.device.keystore = MemoryKeyStore()
        self._delegate = delegate or PairingDelegate()
        self.device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=self._delegate,
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def connect(self, address: str) -> BumblePeer:
        if not self.device.powered_on:
            await self.device.power_on()
        connection = await asyncio.wait_for(self.device.connect(hci.Address(address)), WAIT)
        peer = BumblePeer(connection)
        await asyncio.wait_for(discover(peer), WAIT)
        return peer


async def discover(peer: BumblePeer) -> None:
    """Services and characteristics; descriptors are found by ``subscribe`` as needed."""
    for service in await peer.discover_services():
        await peer.discover_characteristics(service=service)


def characteristic(peer: BumblePeer, uuid: str) -> CharacteristicProxy[bytes]:
    found = peer.get_characteristics_by_uuid(bumble_uuid(uuid))
    assert found, f"{uuid} not discovered"
    return found[0]


def uuid_str(uuid: UUID) -> str:
    """The 128-bit lower-case form protocol.uuids uses, whatever width Bumble parsed."""
    return str(uuid_module.UUID(bytes=bytes(reversed(uuid.uuid_128_bytes))))


async def disconnected(connection: Connection) -> None:
    done = asyncio.get_running_loop().create_future()
    connection.once(Connection.EVENT_DISCONNECTION, lambda _reason: done.set_result(None))
    await connection.disconnect()
    await asyncio.wait_for(done, WAIT)


class EventLog:
    """Collects peripheral events; ``wait_for`` waits for one of a type with a timeout."""

    def __init__(self) -> None:
        self.events: list[PeripheralEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: PeripheralEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, kind: type[E]) -> E:
        async def wait() -> E:
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), WAIT)
        except TimeoutError:
            raise AssertionError(f"no {kind.__name__} event within {WAIT}s") from None


class Screen:
    """The watch's display: remembers the passkey it was asked to show."""

    def __init__(self) -> None:
        self.passkey: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.shown = 0

    async def show_passkey(self, peer_address: str, passkey: int) -> None:
        self.shown += 1
        if not self.passkey.done():
            self.passkey.set_result(passkey)

    async def confirm_number(self, peer_address: str, number: int) -> bool:
        return True

    async def read_passkey(self) -> int:
        return await asyncio.wait_for(asyncio.shield(self.passkey), WAIT)


CENTRAL_ADDRESS = "F1:22:33:44:55:66"


@pytest.fixture
async def screen() -> Screen:
    return Screen()


@pytest.fixture
async def watch(link: LocalLink, tmp_path: Path, screen: Screen) -> AsyncIterator[BumblePeripheral]:
    peripheral = await start_on_link(link, tmp_path / "watch", name="TestWatch", display=screen)
    yield peripheral
    await peripheral.stop()


async def paired_central(link: LocalLink, watch: BumblePeripheral, screen: Screen) -> BumblePeer:
    central = Central(link, CENTRAL_ADDRESS, PasskeyEntry(screen.read_passkey))
    peer = await central.connect(watch.address)
    await asyncio.wait_for(peer.connection.pair(), WAIT)
    return peer


async def test_advertises_name_appearance_and_services(
    link: LocalLink, watch: BumblePeripheral
) -> None:
    central = Central(link, CENTRAL_ADDRESS)
    await central.device.power_on()
    seen: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

    def on_advertisement(advertisement: Advertisement) -> None:
        if not seen.done():
            seen.set_result(advertisement)

    central.device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
    await central.device.start_scanning()
    advertisement = await asyncio.wait_for(seen, WAIT)
    data = advertisement.data
    assert data.get(AdvertisingData.COMPLETE_LOCAL_NAME) == "TestWatch"
    assert data.get(AdvertisingData.APPEARANCE) == Appearance.from_int(uuids.APPEARANCE_SMARTWATCH)
    listed = data.get(AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS) or []
    assert {uuid_str(u) for u in listed} == set(ADVERTISED_SERVICE_UUIDS)


def on_air_interval_ms(link: LocalLink, watch: BumblePeripheral) -> float | None:
    """The interval the watch's controller advertises at (the chip's view), None if it
    does not advertise."""
    intervals = [
        adv_set.parameters.primary_advertising_interval_min * 0.625
        for controller in link.controllers
        for adv_set in getattr(controller, "advertising_sets", {}).values()
        if adv_set.enabled and str(adv_set.random_address) == watch.address and adv_set.parameters
    ]
    assert len(intervals) <= 1
    return intervals[0] if intervals else None


async def next_advertisement(central: Central, address: str) -> None:
    """Until the central hears ``address`` advertise (it scans from now on)."""
    heard: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_advertisement(advertisement: Advertisement) -> None:
        if str(advertisement.address) == address and not heard.done():
            heard.set_result(None)

    central.device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
    if not central.device.is_scanning:
        await central.device.start_scanning()
    try:
        await asyncio.wait_for(heard, WAIT)
    finally:
        central.device.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)


async def test_advertises_fast_at_first_and_again_as_a_central_leaves(
    link: LocalLink, watch: BumblePeripheral
) -> None:
    """Fast (20 ms) when it starts advertising and after each disconnection, then at its
    own interval (100 ms): a phone coming back connects within an interval or two."""
    assert on_air_interval_ms(link, watch) == watch.interval_on_air_ms == FAST_ADVERTISING_MS
    await watch.end_fast_advertising()  # what the fast window's timer does
    assert on_air_interval_ms(link, watch) == watch.interval_on_air_ms == 100.0
    central = Central(link, CENTRAL_ADDRESS)
    peer = await central.connect(watch.address)
    assert on_air_interval_ms(link, watch) is None and watch.interval_on_air_ms is None
    await disconnected(peer.connection)
    await next_advertisement(central, watch.address)
    assert on_air_interval_ms(link, watch) == FAST_ADVERTISING_MS
    await central.device.stop_scanning()
    again = await central.connect(watch.address)  # still connectable, as before
    await disconnected(again.connection)


async def test_a_connection_during_a_change_of_interval_ends_advertising(
    link: LocalLink, watch: BumblePeripheral
) -> None:
    """The fast window's end restarts advertising; a central connecting meanwhile (on the
    old advertisement or the new one) leaves the watch not advertising until it leaves."""
    central = Central(link, CENTRAL_ADDRESS)
    _, peer = await asyncio.gather(watch.end_fast_advertising(), central.connect(watch.address))
    assert on_air_interval_ms(link, watch) is None and watch.interval_on_air_ms is None
    await disconnected(peer.connection)
    await next_advertisement(central, watch.address)
    assert on_air_interval_ms(link, watch) == FAST_ADVERTISING_MS


async def test_a_watch_without_the_fast_window_advertises_at_its_interval(
    link: LocalLink, tmp_path: Path, screen: Screen
) -> None:
    watch = await start_on_link(
        link,
        tmp_path / "slow",
        display=screen,
        advertising_interval_ms=1000.0,
        fast_advertising_s=0,
    )
    assert on_air_interval_ms(link, watch) == 1000.0
    await watch.end_fast_advertising()
    assert on_air_interval_ms(link, watch) == 1000.0
    await watch.stop()


def test_long_name_is_shortened_to_fit_31_bytes() -> None:
    payload = advertising_payload("x" * 40, uuids.APPEARANCE_SMARTWATCH, ADVERTISED_SERVICE_UUIDS)
    assert len(payload) == 31
    assert payload[-15] == 0x08  # shortened local name AD type, 14 name bytes follow


async def test_discovers_published_profile(link: LocalLink, watch: BumblePeripheral) -> None:
    peer = await Central(link, CENTRAL_ADDRESS).connect(watch.address)
    services = {uuid_str(s.uuid) for s in peer.services}
    assert {s.uuid for s in PROFILE} <= services
    for spec in PROFILE:
        for char_spec in spec.characteristics:
            proxy = characteristic(peer, char_spec.uuid)
            expected = {p.name for p in Property if p in char_spec.properties}
            actual = {
                p.name
                for p in Property
                if p.name and proxy.properties & getattr(Characteristic.Properties, p.name)
            }
            assert actual == expected, char_spec.name
    appearance = await peer.read_value(characteristic(peer, sig_uuid(0x2A01)))
    assert appearance == uuids.APPEARANCE_SMARTWATCH.to_bytes(2, "little")


async def test_events_carry_peer_identity_and_mtu(link: LocalLink, watch: BumblePeripheral) -> None:
    log = EventLog()
    watch.add_listener(log)
    peer = await Central(link, CENTRAL_ADDRESS).connect(watch.address)
    connected = await log.wait_for(Connected)
    assert connected.peer.address == CENTRAL_ADDRESS
    assert connected.peer.bonded is False
    await peer.subscribe(characteristic(peer, uuids.BATTERY_LEVEL), lambda _v: None)
    subscribed = await log.wait_for(SubscriptionChanged)
    assert (subscribed.uuid, subscribed.notify, subscribed.indicate) == (
        uuids.BATTERY_LEVEL,
        True,
        False,
    )
    assert subscribed.peer.mtu == peer.connection.att_mtu
    await disconnected(peer.connection)
    gone = await log.wait_for(Disconnected)
    assert gone.peer.address == CENTRAL_ADDRESS
    assert watch.peers == ()


async def test_read_write_notify_indicate_after_passkey_pairing(
    link: LocalLink, watch: BumblePeripheral, screen: Screen
) -> None:
    written: list[tuple[str, bytes]] = []

    async def on_profile(peer: Peer, value: bytes) -> None:
        if value == b"bad":
            raise RangeError("User Profile", "age out of range")
        written.append((peer.address, value))

    watch.set_read_handler(uuids.BODY_SENSOR_LOCATION, lambda: b"\x02")
    watch.set_write_handler(uuids.USER_PROFILE, on_profile)
    peer = await paired_central(link, watch, screen)

    assert await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION)) == b"\x02"
    await peer.write_value(characteristic(peer, uuids.USER_PROFILE), b"ok", with_response=True)
    assert written == [(CENTRAL_ADDRESS, b"ok")]
    with pytest.raises(ProtocolError) as refused:
        await peer.write_value(characteristic(peer, uuids.USER_PROFILE), b"bad", with_response=True)
    assert refused.value.error_code == AttErrorCode.VALUE_NOT_ALLOWED

    notified: asyncio.Queue[bytes] = asyncio.Queue()
    indicated: asyncio.Queue[bytes] = asyncio.Queue()
    assert not watch.listened(uuids.HEART_RATE_MEASUREMENT)
    await peer.subscribe(characteristic(peer, uuids.HEART_RATE_MEASUREMENT), notified.put_nowait)
    await peer.subscribe(characteristic(peer, uuids.TEMPERATURE_MEASUREMENT), indicated.put_nowait)
    assert watch.listened(uuids.HEART_RATE_MEASUREMENT)
    assert watch.listened(uuids.TEMPERATURE_MEASUREMENT)  # indications count too
    assert not watch.listened(uuids.INTERMEDIATE_TEMPERATURE)
    assert await watch.notify(uuids.HEART_RATE_MEASUREMENT, b"\x00\x48") == 1
    assert await asyncio.wait_for(notified.get(), WAIT) == b"\x00\x48"
    assert await watch.indicate(uuids.TEMPERATURE_MEASUREMENT, b"\x00\x01\x02\x03\x04") == 1
    assert await asyncio.wait_for(indicated.get(), WAIT) == b"\x00\x01\x02\x03\x04"
    # Not subscribed: nobody is sent anything.
    assert await watch.notify(uuids.INTERMEDIATE_TEMPERATURE, b"\x00") == 0


async def test_listened_follows_each_cccd_write_and_the_peer_leaving(
    link: LocalLink, watch: BumblePeripheral, screen: Screen
) -> None:
    """What ``listened`` and a push find is kept between CCCD writes (a watch asks several
    times a second); each write and each connection's end changes it at once."""
    log = EventLog()
    watch.add_listener(log)
    peer = await paired_central(link, watch, screen)
    heart_rate = characteristic(peer, uuids.HEART_RATE_MEASUREMENT)
    assert not watch.listened(uuids.HEART_RATE_MEASUREMENT)

    await peer.subscribe(heart_rate, lambda _v: None)
    assert watch.listened(uuids.HEART_RATE_MEASUREMENT)
    await peer.unsubscribe(heart_rate)
    assert not watch.listened(uuids.HEART_RATE_MEASUREMENT)
    assert await watch.notify(uuids.HEART_RATE_MEASUREMENT, b"\x00\x48") == 0

    await peer.subscribe(heart_rate, lambda _v: None)
    assert watch.listened(uuids.HEART_RATE_MEASUREMENT)
    assert await watch.notify(uuids.HEART_RATE_MEASUREMENT, b"\x00\x48") == 1
    await disconnected(peer.connection)  # Bumble drops the link's CCCDs, telling nobody
    await log.wait_for(Disconnected)
    assert not watch.listened(uuids.HEART_RATE_MEASUREMENT)
    assert await watch.notify(uuids.HEART_RATE_MEASUREMENT, b"\x00\x48") == 0


async def test_notify_burst_is_bounded_and_delivered_in_order(
    link: LocalLink, watch: BumblePeripheral, screen: Screen
) -> None:
    peer = await paired_central(link, watch, screen)
    received: list[bytes] = []
    done = asyncio.Event()

    def on_value(value: bytes) -> None:
        received.append(value)
        if len(received) == 500:
            done.set()

    await peer.subscribe(characteristic(peer, uuids.HISTORY_RECORDS), on_value)
    queue = watch.device.host.le_acl_packet_queue or watch.device.host.acl_packet_queue
    assert queue is not None
    deepest = 0
    for i in range(500):
        await watch.notify(uuids.HISTORY_RECORDS, i.to_bytes(4, "little"))
        deepest = max(deepest, queue.pending)
    # Back-pressure: the burst waited for the controller instead of piling up in the host.
    assert deepest <= queue.max_in_flight
    await asyncio.wait_for(done.wait(), WAIT)
    assert received == [i.to_bytes(4, "little") for i in range(500)]


async def test_packet_strings_are_only_built_when_bumble_debug_is_on(
    watch: BumblePeripheral,
) -> None:
    pdu = ATT_Handle_Value_Notification(attribute_handle=0x2A, attribute_value=b"\x01")
    bumble_logger = logging.getLogger("bumble")
    assert not bumble_logger.isEnabledFor(logging.DEBUG)
    assert str(pdu) == "ATT_Handle_Value_Notification"
    level = bumble_logger.level
    bumble_logger.setLevel(logging.DEBUG)
    try:
        assert "attribute_handle" in str(pdu)
    finally:
        bumble_logger.setLevel(level)
