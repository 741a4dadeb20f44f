"""bleak backend classes on a ``BumbleRadio``: the agent keeps speaking only bleak's API."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bumble import att, core
from bumble.device import Advertisement, Connection
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, Client, DescriptorProxy, ServiceProxy

from phoneagent.transport.advertising import advertisement_data, uuid_from_le
from phoneagent.transport.errors import TransportConfigError
from phoneagent.transport.radio import MTU, BumbleRadio, address_text, guarded
from protocol.address import Address

T = TypeVar("T")

# Errors a bonded link clears by encrypting; anything else is the watch's real answer.
_SECURITY_ERRORS = frozenset(
    {
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    }
)

_PROPERTY_NAMES: tuple[tuple[Characteristic.Properties, CharacteristicPropertyName], ...] = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)


def _bound_radio(cls: type[Any]) -> BumbleRadio:
    radio: BumbleRadio | None = getattr(cls, "radio", None)
    if radio is None:
        raise TransportConfigError(
            f"{cls.__name__} is not bound to a radio: use radio.scanner_backend / "
            "radio.client_backend (or the transport factory)"
        )
    return radio


class BumbleScanner(BaseBleakScanner):
    """Scanner backend; bleak filters by service UUID, we hand it every sighting.

    ``addresses`` (through ``BleakScanner``'s backend keywords, ``Transport.scanner``):
    the only devices wanted, which the radio's controller then filters for.
    """

    radio: ClassVar[BumbleRadio | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        addresses: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._radio = _bound_radio(type(self))
        self._addresses = None if addresses is None else tuple(addresses)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement_data(
            advertisement.data.ad_structures,
            advertisement.rssi,
            advertisement.is_connectable,
        )
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = address_text(advertisement.address)
        device = self.create_or_update_device(
            address, address, data.local_name, advertisement.address, data
        )
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        self.seen_devices = {}
        await self._radio.add_scan_listener(self._on_advertisement, self._addresses)

    async def stop(self) -> None:
        await self._radio.remove_scan_listener(self._on_advertisement)


class BumbleClient(BaseBleakClient):
    """Client backend: one Bumble LE connection, GATT through Bumble's client."""

    radio: ClassVar[BumbleRadio | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._radio = _bound_radio(type(self))
        self.address = Address(self.address)
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._service_filter = services
        self._connection: Connection | None = None
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        connection = self._live()
        mtu: int = connection.att_mtu
        return mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    def _live(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    # --- connection ------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        connection = await self._radio.connect(self.address, self._timeout)
        self._connection = connection
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            await self._call(lambda client: client.request_mtu(MTU))
            self.services = await self._discover()
            if pair:
                await self.pair()
        except BaseException:
            await self.disconnect()
            raise

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._subscribers.clear()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        # Already gone: the disconnection event has cleared our state, or will; with the
        # transport lost, the command would never be answered.
        if not self._radio.lost:
            with contextlib.suppress(core.BaseBumbleError):
                await connection.disconnect()
        self._connection = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        await self._radio.pair(self._live())

    async def unpair(self) -> None:
        self._radio.forget(self.address)
        await self.disconnect()

    # --- GATT ------------------------------------------------------------------------

    async def _call(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        """One ATT exchange, with Bumble's errors as bleak's."""
        connection = self._live()
        try:
            return await guarded(connection, operation(connection.gatt_client))
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except core.TimeoutError as error:
            raise BleakError(f"{self.address}: GATT request timed out") from error

    async def _secured(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        """Run an exchange on a link that proved the bond, if there is one.

        A bonded peer is encrypted with the bond's key before anything is read from or
        written to it: waiting for its security refusal would serve any device that takes
        the watch's address and does not refuse (our profile, clock and settings written
        to it, its records stored as the watch's). Discovery alone comes first; it tells
        the peer nothing. Unbonded (pairing), a security refusal asks for the bond.
        """
        if not self._live().is_encrypted and self._radio.bond_of(self.address) is not None:
            await self._radio.secure(self._live())
        try:
            return await self._call(operation)
        except BleakGATTProtocolError as error:
            if error.code not in _SECURITY_ERRORS or self._live().is_encrypted:
                raise
        await self._radio.secure(self._live())
        return await self._call(operation)

    async def _discover(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        client = self._live().gatt_client
        wanted = [core.UUID(u) for u in self._service_filter or ()]

        async def characteristics(service: ServiceProxy) -> list[CharacteristicProxy[bytes]]:
            return await self._call(lambda c: c.discover_characteristics((), service))

        async def descriptors(proxy: CharacteristicProxy[bytes]) -> list[DescriptorProxy]:
            return await self._call(lambda c: c.discover_descriptors(proxy))

        for service in await self._call(lambda c: c.discover_services(wanted)):
            entry = BleakGATTService(service, service.handle, uuid_from_le(service.uuid.uuid_bytes))
            collection.add_service(entry)
            for proxy in await characteristics(service):
                characteristic = BleakGATTCharacteristic(
                    proxy,
                    proxy.handle,
                    uuid_from_le(proxy.uuid.uuid_bytes),
                    [name for flag, name in _PROPERTY_NAMES if proxy.properties & flag],
                    lambda: client.mtu - 3,
                    entry,
                )
                collection.add_characteristic(characteristic)
                for descriptor in await descriptors(proxy):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            uuid_from_le(descriptor.type.uuid_bytes),
                            characteristic,
                        )
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(characteristic.handle, use_cached)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(descriptor.handle, use_cached)

    async def _read(self, handle: int, use_cached: bool) -> bytearray:
        cached = self._live().gatt_client.cached_values.get(handle)
        if use_cached and cached is not None:
            return bytearray(cached[1])
        return bytearray(await self._secured(lambda c: c.read_value(handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        value = bytes(data)
        await self._secured(lambda c: c.write_value(characteristic.handle, value, response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        value = bytes(data)
        await self._secured(lambda c: c.write_value(descriptor.handle, value, True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._secured(lambda c: c.subscribe(proxy, deliver, prefer_notify=True))
        self._subscribers[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscribers.pop(characteristic.handle, None)
        if deliver is not None:
            proxy: CharacteristicProxy[bytes] = characteristic.obj
            await self._secured(lambda c: c.unsubscribe(proxy, deliver))


def bind_backends(radio: BumbleRadio) -> tuple[type[BumbleScanner], type[BumbleClient]]:
    """Backend subclasses carrying ``radio``: bleak instantiates them with no extra kwargs."""
    scanner = type("BumbleScanner", (BumbleScanner,), {"radio": radio})
    client = type("BumbleClient", (BumbleClient,), {"radio": radio})
    return scanner, client


__all__ = ["BumbleClient", "BumbleScanner", "bind_backends"]
