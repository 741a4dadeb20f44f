"""The Bumble-backed bleak backend, exercised only through bleak's public API.

The peripheral here is a plain Bumble ``Device`` (it enforces its own security, as
Bumble's GATT server does not) so these tests do not depend on the watch's adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakGATTProtocolError
from bumble import att
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from phoneagent.transport import (
    BumbleRadio,
    ConnectTimeoutError,
    MemoryBondStore,
    PairingAgent,
    PairingLostError,
    appearance,
)
from phoneagent.transport.factory import radio_transport
from protocol import uuids
from tests.adversarial.peripherals import advertise_as_watch

WAIT = 5.0
SERVICE = uuids.custom_uuid(0xFF00)
OPEN_CHAR = uuids.custom_uuid(0xFF01)
NOTIFY_CHAR = uuids.custom_uuid(0xFF02)
INDICATE_CHAR = uuids.custom_uuid(0xFF03)
SECRET_CHAR = uuids.custom_uuid(0xFF04)
FAILING_CHAR = uuids.custom_uuid(0xFF05)
APP_ERROR = 0x80
P = Characteristic.Properties


class DisplayDelegate(PairingDelegate):
    """The watch's screen: shows a fixed passkey, or compares numbers when asked to."""

    def __init__(self, passkey: int, numeric: bool) -> None:
        super().__init__(
            io_capability=(
                PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT
                if numeric
                else PairingDelegate.DISPLAY_OUTPUT_ONLY
            )
        )
        self._passkey = passkey

    async def generate_passkey(self) -> int:
        return self._passkey

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return True


class PlainWatch:
    """A minimal peripheral on a LocalLink: one custom service, security enforced here."""

    def __init__(
        self,
        link: LocalLink,
        address: str,
        name: str,
        *,
        passkey: int = 123456,
        numeric: bool = False,
        keystore: KeyStore | None = None,
    ) -> None:
        controller = Controller(name, link=link)
        self.device = Device(
            config=DeviceConfiguration(name=name, address=Address(address)),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        self.address = address
        self.name = name
        self.keystore = keystore or MemoryKeyStore()
        self.device.keystore = self.keystore
        self.device.pairing_config_factory = lambda _: PairingConfig(
            delegate=DisplayDelegate(passkey, numeric),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
        self.writes: asyncio.Queue[bytes] = asyncio.Queue()
        self.connections: asyncio.Queue[Connection] = asyncio.Queue()
        self.device.on(Device.EVENT_CONNECTION, self.connections.put_nowait)
        self.value = b"hello"
        self.open: Characteristic[bytes] = Characteristic(
            OPEN_CHAR,
            P.READ | P.WRITE | P.WRITE_WITHOUT_RESPONSE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda _: self.value, write=self._on_write),
        )
        self.notifying = Characteristic(NOTIFY_CHAR, P.NOTIFY, Characteristic.READABLE, b"")
        self.indicating = Characteristic(INDICATE_CHAR, P.INDICATE, Characteristic.READABLE, b"")
        secret: Characteristic[bytes] = Characteristic(
            SECRET_CHAR, P.READ, Characteristic.READABLE, CharacteristicValue(read=self._secret)
        )
        failing: Characteristic[bytes] = Characteristic(
            FAILING_CHAR, P.READ, Characteristic.READABLE, CharacteristicValue(read=self._fail)
        )
        self.device.add_service(
            Service(SERVICE, [self.open, self.notifying, self.indicating, secret, failing])
        )

    def _on_write(self, connection: Connection, value: bytes) -> None:
        self.value = value
        self.writes.put_nowait(value)

    @staticmethod
    def _secret(connection: Connection) -> bytes:
        if not (connection.is_encrypted and connection.authenticated):
            raise att.ATT_Error(att.ErrorCode.INSUFFICIENT_AUTHENTICATION)
        return b"secret"

    @staticmethod
    def _fail(connection: Connection) -> bytes:
        raise att.ATT_Error(APP_ERROR)

    async def start(self) -> PlainWatch:
        await self.device.power_on()
        services = (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, b"\x0d\x18")
        await advertise_as_watch(self.device, self.name, services)
        return self

    async def connection(self) -> Connection:
        return await asyncio.wait_for(self.connections.get(), WAIT)


class Agent:
    """Plays the user: types ``passkey``, counts how often it was asked."""

    def __init__(self, passkey: int | None = 123456) -> None:
        self.passkey = passkey
        self.asked = 0

    async def enter_passkey(self, peer: str) -> int | None:
        self.asked += 1
        return self.passkey

    async def confirm_number(self, peer: str, number: int) -> bool:
        self.asked += 1
        return True


def agent_of(agent: Agent) -> PairingAgent:
    return agent


@pytest.fixture
async def watch(link: LocalLink) -> PlainWatch:
    return await PlainWatch(link, "C4:00:00:00:00:01", "PlainWatch").start()


@pytest.fixture
async def radio(link: LocalLink) -> AsyncIterator[BumbleRadio]:
    async with await BumbleRadio.on_link(
        link, bonds=MemoryBondStore(), agent=agent_of(Agent())
    ) as radio:
        yield radio


async def test_scan_finds_peripheral_by_service_and_name(
    radio: BumbleRadio, watch: PlainWatch
) -> None:
    by_service = await BleakScanner.find_device_by_filter(
        lambda _d, _a: True,
        timeout=WAIT,
        service_uuids=[uuids.HEART_RATE_SERVICE],
        backend=radio.scanner_backend,
    )
    assert by_service is not None and by_service.address == watch.address
    by_name = await BleakScanner.find_device_by_name(
        "PlainWatch", timeout=WAIT, backend=radio.scanner_backend
    )
    assert by_name is not None and by_name.name == "PlainWatch"
    missing = await BleakScanner.find_device_by_filter(
        lambda _d, _a: True,
        timeout=0.2,
        service_uuids=[uuids.BATTERY_SERVICE],
        backend=radio.scanner_backend,
    )
    assert missing is None


async def test_scan_for_addresses_hears_only_them(radio: BumbleRadio, link: LocalLink) -> None:
    """The controller's accept list filters: the host never sees the other advertiser."""
    wanted = await PlainWatch(link, "C4:00:00:00:00:01", "Wanted").start()
    other = await PlainWatch(link, "C4:00:00:00:00:02", "Other").start()
    transport = radio_transport(radio)

    async def heard(addresses: list[str] | None) -> set[str]:
        """Every address the host heard until the wanted watch was reported five times."""
        reported: list[str] = []
        enough = asyncio.Event()

        def on_report(advertisement: Advertisement) -> None:
            reported.append(str(advertisement.address.to_string(False)))
            if reported.count(wanted.address) >= 5:
                enough.set()

        radio.device.on(Device.EVENT_ADVERTISEMENT, on_report)
        try:
            async with transport.scanner(lambda _d, _a: None, addresses=addresses):
                await asyncio.wait_for(enough.wait(), WAIT)
        finally:
            radio.device.remove_listener(Device.EVENT_ADVERTISEMENT, on_report)
        return set(reported)

    assert await heard(None) == {wanted.address, other.address}
    assert await heard([wanted.address]) == {wanted.address}
    assert await heard(None) == {wanted.address, other.address}  # the filter is lifted


async def test_advertisement_data(radio: BumbleRadio, watch: PlainWatch) -> None:
    seen: asyncio.Future[tuple[BLEDevice, AdvertisementData]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_advertisement(device: BLEDevice, data: AdvertisementData) -> None:
        if not seen.done():
            seen.set_result((device, data))

    async with BleakScanner(on_advertisement, backend=radio.scanner_backend):
        device, data = await asyncio.wait_for(seen, WAIT)
    assert device.address == watch.address
    assert data.local_name == "PlainWatch"
    assert data.service_uuids == [uuids.HEART_RATE_SERVICE]
    assert data.rssi == -50
    assert appearance(data) == uuids.APPEARANCE_SMARTWATCH


async def test_gatt_conformance(radio: BumbleRadio, watch: PlainWatch) -> None:
    async with BleakClient(watch.address, timeout=WAIT, backend=radio.client_backend) as client:
        assert client.is_connected
        assert client.mtu_size == 517
        service = client.services.get_service(SERVICE)
        assert service is not None
        assert {c.uuid for c in service.characteristics} >= {OPEN_CHAR, NOTIFY_CHAR}
        open_char = client.services.get_characteristic(OPEN_CHAR)
        assert open_char is not None
        assert set(open_char.properties) == {"read", "write", "write-without-response"}
        assert open_char.max_write_without_response_size == 514

        assert await client.read_gatt_char(OPEN_CHAR) == b"hello"
        await client.write_gatt_char(OPEN_CHAR, b"with", response=True)
        assert watch.writes.get_nowait() == b"with"
        await client.write_gatt_char(OPEN_CHAR, b"without", response=False)
        assert await asyncio.wait_for(watch.writes.get(), WAIT) == b"without"

        received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

        def on_value(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            received.put_nowait((sender.uuid, bytes(data)))

        await client.start_notify(NOTIFY_CHAR, on_value)
        await client.start_notify(INDICATE_CHAR, on_value)
        peer = await watch.connection()
        await watch.device.notify_subscriber(peer, watch.notifying, b"n1")
        await watch.device.indicate_subscriber(peer, watch.indicating, b"i1")
        assert await asyncio.wait_for(received.get(), WAIT) == (NOTIFY_CHAR, b"n1")
        assert await asyncio.wait_for(received.get(), WAIT) == (INDICATE_CHAR, b"i1")
        await client.stop_notify(NOTIFY_CHAR)
        await watch.device.notify_subscriber(peer, watch.notifying, b"n2", force=True)
        await watch.device.indicate_subscriber(peer, watch.indicating, b"i2")
        # Indications are confirmed, so once "i2" is here "n2" would have been too.
        assert await asyncio.wait_for(received.get(), WAIT) == (INDICATE_CHAR, b"i2")
        assert received.empty()
    assert not client.is_connected


async def test_att_error_becomes_bleak_error(radio: BumbleRadio, watch: PlainWatch) -> None:
    async with BleakClient(watch.address, timeout=WAIT, backend=radio.client_backend) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.read_gatt_char(FAILING_CHAR)
        assert caught.value.code == APP_ERROR
        # Not paired: the security refusal becomes "pair again", not a raw ATT code.
        with pytest.raises(PairingLostError):
            await client.read_gatt_char(SECRET_CHAR)


async def test_peripheral_disconnect_fires_callback(radio: BumbleRadio, watch: PlainWatch) -> None:
    gone: asyncio.Future[BleakClient] = asyncio.get_running_loop().create_future()
    client = BleakClient(watch.address, gone.set_result, timeout=WAIT, backend=radio.client_backend)
    await client.connect()
    peer = await watch.connection()
    await peer.disconnect()
    assert await asyncio.wait_for(gone, WAIT) is client
    assert not client.is_connected


async def test_absent_address_times_out(radio: BumbleRadio, watch: PlainWatch) -> None:
    client = BleakClient("C4:00:00:00:00:99", timeout=0.3, backend=radio.client_backend)
    with pytest.raises(ConnectTimeoutError):
        await client.connect()
    # The radio is still usable: the failed attempt never reached the controller.
    async with BleakClient(watch.address, timeout=WAIT, backend=radio.client_backend) as client:
        assert await client.read_gatt_char(OPEN_CHAR) == b"hello"


async def test_one_radio_connects_to_several_peripherals(
    link: LocalLink, radio: BumbleRadio
) -> None:
    watches = [
        await PlainWatch(link, f"C4:00:00:00:01:0{i}", f"Watch{i}").start() for i in range(3)
    ]
    clients = [BleakClient(w.address, timeout=WAIT, backend=radio.client_backend) for w in watches]
    await asyncio.gather(*(c.connect() for c in clients))
    for i, (client, w) in enumerate(zip(clients, watches, strict=True)):
        await client.write_gatt_char(OPEN_CHAR, f"to {i}".encode(), response=True)
        assert w.value == f"to {i}".encode()
    await asyncio.gather(*(c.disconnect() for c in clients))
    assert not any(c.is_connected for c in clients)
