"""Peripheral port over Bumble: a virtual controller on a LocalLink, or any Bumble HCI
transport (``tcp-client:127.0.0.1:PORT`` for the air, ``usb:0``, ``hci-socket:0``).

Bumble's GATT server checks no permissions of its own and counts every pairing (Just
Works included) as authenticated, so this adapter enforces each characteristic's
``Security`` itself on every read and write (CCCDs included, before a prepared write is
queued). A link's security is what the key that encrypted it proves, never what a bond
stored for the peer's address says: the adapter answers the controller's LTK request
itself and notes whether the key it gave came from this link's own pairing (and that
pairing's method) or from a bond (and that bond's ``authenticated`` flag); the
encryption change then applies exactly that. Pairing is Secure Connections Only, with
MITM unless the watch runs in Just Works mode (``bumble_pairing``), and Bumble's GATT
server answers every request (``bumble_gatt``). Bonds live in ``<state_dir>/bonds.json``
and the random static identity address in ``<state_dir>/address`` so that a restarted
watch is the same device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bumble import att, gatt, hci
from bumble.core import UUID
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.host import DataPacketQueue, Host
from bumble.keys import JsonKeyStore, PairingKeys
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.gap import GenericAccessService
from bumble.smp import SMP_REPEATED_ATTEMPTS_ERROR
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from bumblekit.quiet import quiet_bumble_debug_strings
from bumblekit.sink import coalesced
from protocol import uuids
from protocol.profile import PROFILE, Property, Security, ServiceSpec
from watchsim.peripheral.bumble_gatt import GattServer, guard_att
from watchsim.peripheral.bumble_pairing import (
    SMP_TIMEOUT_S,
    Backoff,
    PairingPolicy,
    WatchDelegate,
    WatchSession,
    guard_smp,
)
from watchsim.peripheral.link import IndexedLink
from watchsim.peripheral.port import (
    ATT_HEADER_SIZE,
    AttErrorCode,
    Connected,
    Disconnected,
    PairingDisplay,
    PairingMode,
    Peer,
    Peripheral,
    RadioLost,
    SubscriptionChanged,
    att_error_code,
)

logger = logging.getLogger(__name__)

ADVERTISING_MAX: Final = 31
# How long a notify may wait for buffer room, and how long stop() waits for a peer.
FLOW_TIMEOUT: Final = 10.0
DISCONNECT_TIMEOUT: Final = 5.0
# A watch advertises fast for a while after it starts advertising and after each central
# leaves, then at its own interval (Apple's accessory guidelines: 20 ms for at least 30 s):
# a phone coming back connects within an interval or two. ``fast_advertising_s`` 0 turns
# it off (the fleet's thousand watches advertise once a second throughout).
FAST_ADVERTISING_MS: Final = 20.0
FAST_ADVERTISING_S: Final = 30.0
# A Handle Value Notification's opcode and handle (Core Vol 3 Part F 3.4.7.1), before the
# value: built with struct; Bumble's ATT_PDU object cost 3.5 us a notification (4-5% of
# the watch's CPU in a backfill).
_NOTIFICATION: Final = struct.Struct("<BH")

_IO_CAPABILITY: Final = {
    PairingMode.PASSKEY: PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY,
    PairingMode.NUMERIC: PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
    PairingMode.JUST_WORKS: PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
}
_PROPERTIES: Final = {
    Property.READ: gatt.Characteristic.Properties.READ,
    Property.WRITE: gatt.Characteristic.Properties.WRITE,
    Property.WRITE_WITHOUT_RESPONSE: gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    Property.NOTIFY: gatt.Characteristic.Properties.NOTIFY,
    Property.INDICATE: gatt.Characteristic.Properties.INDICATE,
}
_WRITABLE: Final = Property.WRITE | Property.WRITE_WITHOUT_RESPONSE
_SUBSCRIBABLE: Final = Property.NOTIFY | Property.INDICATE


def new_link() -> LocalLink:
    """A fresh virtual air whose cost per packet does not grow with its size."""
    return IndexedLink()


def bumble_uuid(uuid: str) -> UUID:
    """SIG UUIDs go on the air in their 16-bit form, as the specification wants."""
    uuid = uuid.lower()
    if uuid.endswith(uuids.SIG_BASE_SUFFIX) and uuid.startswith("0000"):
        return UUID.from_16_bits(int(uuid[4:8], 16))
    return UUID(uuid)


def advertising_payload(local_name: str, appearance: int, service_uuids: Sequence[str]) -> bytes:
    """Legacy advertising data: flags, appearance, service UUIDs, then as much name as fits.

    Our watch sends no scan response (a passive scan sees it all), so everything must fit
    in 31 bytes; the name is shortened (AD type 0x08) rather than dropping a service UUID.
    """
    short = [bytes(bumble_uuid(u)) for u in service_uuids if len(bytes(bumble_uuid(u))) == 2]
    long = [bytes(bumble_uuid(u)) for u in service_uuids if len(bytes(bumble_uuid(u))) == 16]
    structures = [
        (0x01, bytes([0x06])),  # LE General Discoverable, BR/EDR not supported
        (0x19, appearance.to_bytes(2, "little")),
    ]
    if short:
        structures.append((0x03, b"".join(short)))
    if long:
        structures.append((0x07, b"".join(long)))
    payload = b"".join(bytes([len(data) + 1, kind]) + data for kind, data in structures)
    room = ADVERTISING_MAX - len(payload) - 2
    if room < 1:
        raise ValueError(f"advertised services leave no room for a name ({len(payload)} bytes)")
    name = local_name.encode("utf-8")
    kind = 0x09 if len(name) <= room else 0x08
    name = name[:room].decode("utf-8", errors="ignore").encode("utf-8")
    return payload + bytes([len(name) + 1, kind]) + name


def scan_response_advertising(local_name: str, service_uuids: Sequence[str]) -> tuple[bytes, bytes]:
    """InfiniTime's layout: flags, complete service UUID lists and the TX power level in
    the advertising data; the complete name alone in the scan response."""
    short = b"".join(b for u in service_uuids if len(b := bytes(bumble_uuid(u))) == 2)
    long = b"".join(b for u in service_uuids if len(b := bytes(bumble_uuid(u))) == 16)
    structures = [(0x01, bytes([0x06]))]
    structures += [(kind, data) for kind, data in ((0x03, short), (0x07, long)) if data]
    structures.append((0x0A, bytes([0])))  # TX power level: 0 dBm
    name = local_name.encode("utf-8")
    advertising, response = (
        b"".join(bytes([len(data) + 1, kind]) + data for kind, data in group)
        for group in (structures, [(0x09, name)])
    )
    if len(advertising) > ADVERTISING_MAX or len(response) > ADVERTISING_MAX:
        raise ValueError(f"advertising data or scan response over {ADVERTISING_MAX} bytes")
    return advertising, response


BONDS_FILE: Final = "bonds.json"


def forget_bonds(state_dir: Path) -> None:
    """Delete every bond kept in ``state_dir`` (factory reset); the stack must be stopped."""
    (state_dir / BONDS_FILE).unlink(missing_ok=True)


def load_or_create_address(state_dir: Path) -> hci.Address:
    """Random static identity address, kept so bonds still match after a restart."""
    path = state_dir / "address"
    if path.exists():
        return hci.Address(path.read_text().strip(), hci.Address.RANDOM_DEVICE_ADDRESS)
    address = hci.Address.generate_static_address()
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(str(address))
    return address


@dataclass
class _Link:
    connection: Connection
    # Whether the key encrypting the link came from an MITM-protected pairing.
    key_authenticated: bool = False
    # The same for the key last given to the controller, applied once encryption starts.
    key_offered: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class BumblePeripheral(Peripheral):
    """The watch's peripheral role on a Bumble host. Build with ``start_on_link`` or
    ``open_peripheral`` rather than directly."""

    def __init__(
        self,
        host: Host,
        state_dir: Path,
        *,
        name: str = "Watchsim",
        mode: PairingMode = PairingMode.PASSKEY,
        display: PairingDisplay | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
        advertising_interval_ms: float = 100.0,
        fast_advertising_s: float = FAST_ADVERTISING_S,
        smp_timeout_s: float = SMP_TIMEOUT_S,
    ) -> None:
        super().__init__()
        if mode is not PairingMode.JUST_WORKS and display is None:
            raise ValueError(f"pairing mode {mode.value} needs a display hook")
        quiet_bumble_debug_strings()
        self._mode = mode
        self._display = display
        self._close = close
        self.lost = False
        self._stopping = False
        self._interval = advertising_interval_ms
        self._fast_s = fast_advertising_s
        # What is advertised (data, scan response) while advertising is wanted, and the
        # pending end of fast advertising.
        self._advertised: tuple[bytes, bytes] | None = None
        self._connections = 0  # made so far: a restart tells whether one took it
        self._slowing: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Future[None]] = set()
        # One start or stop at a time: Bumble's advertising calls are several HCI
        # commands each, and two interleaved leave its state and the controller's apart.
        self._advertising_turn = asyncio.Lock()
        # On air now, None when not (a connection ends legacy advertising).
        self.interval_on_air_ms: float | None = None
        address = load_or_create_address(state_dir)
        config = DeviceConfiguration(
            name=name,
            address=address,
            gap_service_enabled=False,
            gatt_service_enabled=False,  # added below, to our own GATT server
            identity_address_type=hci.Address.RANDOM_DEVICE_ADDRESS,
            io_capability=_IO_CAPABILITY[mode],
        )
        self.device = Device(config=config, host=host)
        self.device.gatt_server = GattServer(self.device, self._permit_write)
        self.device.add_default_services(add_gap_service=False, add_gatt_service=True)
        guard_att(self.device)
        guard_smp(self.device)
        self.device.keystore = JsonKeyStore(str(address), str(state_dir / BONDS_FILE))
        self.device.pairing_config_factory = self._pairing_config
        self.device.smp_session_proxy = WatchSession
        # The LTK request is answered here, where it is known which key was given.
        host.long_term_key_provider = self._long_term_key
        self._smp_timeout_s = smp_timeout_s
        self.backoff = Backoff()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        self.device.gatt_server.on(
            GattServer.EVENT_CHARACTERISTIC_SUBSCRIPTION, self._on_subscription
        )
        self._characteristics: dict[str, gatt.Characteristic[bytes]] = {}
        self._uuid_of_handle: dict[int, str] = {}
        # Attribute handle (value or CCCD) -> what the profile allows on it.
        self._access: dict[int, tuple[Property, Security]] = {}
        self._links: dict[int, _Link] = {}
        # (uuid, CCCD bits) -> the links subscribed: asked several times a watch and second
        # (``listened``, each push), so kept until a CCCD is written or a link begins or
        # ends (Bumble then drops its CCCDs without an event).
        self._subscribed_links: dict[tuple[str, int], tuple[_Link, ...]] = {}
        # Bonded peer address -> whether its LTK is MITM-protected.
        self._bonds: dict[str, bool] = {}
        self._flow = asyncio.Event()
        self._name = name

    @property
    def address(self) -> str:
        return str(self.device.static_address)

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        """MITM in passkey and numeric modes, and in any mode for an address whose bond
        is authenticated: a pairing never replaces such a bond with a weaker one."""
        address = str(connection.peer_address)
        mitm = self._mode is not PairingMode.JUST_WORKS or self._bonds.get(address, False)
        policy = PairingPolicy(
            timeout_s=self._smp_timeout_s,
            repeated_attempts=self.backoff.blocked(address, asyncio.get_running_loop().time()),
        )
        return PairingConfig(
            sc=True,
            mitm=mitm,
            bonding=True,
            delegate=WatchDelegate(_IO_CAPABILITY[self._mode], policy, self._display, address),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def _long_term_key(self, handle: int, rand: bytes, ediv: int) -> bytes | None:
        """Bumble's choice of LTK (this link's pairing first, then the bond), noting on
        the link whether that key is MITM-protected."""
        ltk = await self.device.get_long_term_key(handle, rand, ediv)
        link = self._links.get(handle)
        if link is not None and ltk is not None:
            link.key_offered = await self._key_authenticated(link.connection, ltk, rand, ediv)
        return ltk

    async def _key_authenticated(
        self, connection: Connection, ltk: bytes, rand: bytes, ediv: int
    ) -> bool:
        session = self.device.smp_manager.sessions.get(connection.handle)
        if session is not None and session.get_long_term_key(rand, ediv) == ltk:
            return isinstance(session, WatchSession) and session.authenticated
        assert self.device.keystore is not None
        keys = await self.device.keystore.get(str(connection.peer_address))
        stored = [] if keys is None else [keys.ltk, keys.ltk_central, keys.ltk_peripheral]
        return any(key is not None and key.value == ltk and key.authenticated for key in stored)

    # --- lifecycle -------------------------------------------------------------------
    async def start(self, profile: Sequence[ServiceSpec] = PROFILE) -> None:
        self.device.add_service(GenericAccessService(self._name, uuids.APPEARANCE_SMARTWATCH))
        for spec in profile:
            self.device.add_service(self._service(spec))
        self._uuid_of_handle = {c.handle: u for u, c in self._characteristics.items()}
        for spec in profile:
            for c in spec.characteristics:
                characteristic = self._characteristics[c.uuid]
                self._access[characteristic.handle] = (c.properties, c.security)
                for descriptor in characteristic.descriptors:
                    self._access[descriptor.handle] = (Property.READ | Property.WRITE, c.security)
        await self.device.power_on()
        assert self.device.keystore is not None
        for address, keys in await self.device.keystore.get_all():
            self._bonds[address] = _ltk_authenticated(keys)
        queue = self._queue()
        if queue is not None:
            queue.on("flow", self._flow.set)

    def lose(self, reason: str) -> None:
        """The HCI transport is gone: nothing more can be sent, so ``stop`` sends nothing.
        (Our own ``stop`` closing it is not a loss.)"""
        if not (self.lost or self._stopping):
            self.lost = True
            self._emit(RadioLost(reason))

    async def stop(self) -> None:
        self._stopping = True
        self._end_fast_advertising_later(None)
        # A restart under way finishes (a cancelled HCI command would leave Bumble's
        # advertising state and the controller's apart); none starts from now on.
        await asyncio.gather(*self._background, return_exceptions=True)
        if not self.lost:
            # First, or advertising would start again as each peer leaves.
            await self.stop_advertising()
            for link in tuple(self._links.values()):
                with contextlib.suppress(hci.HCI_Error, TimeoutError):
                    await asyncio.wait_for(link.connection.disconnect(), DISCONNECT_TIMEOUT)
            await self.device.power_off()
        if self._close is not None:
            await self._close()

    async def start_advertising(
        self,
        local_name: str,
        appearance: int = uuids.APPEARANCE_SMARTWATCH,
        service_uuids: Sequence[str] = (),
        *,
        name_in_scan_response: bool = False,
    ) -> None:
        if name_in_scan_response:
            data, response = scan_response_advertising(local_name, service_uuids)
        else:
            data, response = advertising_payload(local_name, appearance, service_uuids), b""
        self._advertised = (data, response)
        await self._advertise(fast=True)

    async def stop_advertising(self) -> None:
        self._advertised = None
        self._end_fast_advertising_later(None)
        async with self._advertising_turn:
            self.interval_on_air_ms = None
            await self.device.stop_advertising()

    async def end_fast_advertising(self) -> None:
        """Advertise at the watch's own interval from now (the fast window's end)."""
        self._end_fast_advertising_later(None)
        await self._advertise(fast=False, only_if_on_air=True)

    async def _advertise(self, *, fast: bool, only_if_on_air: bool = False) -> None:
        """(Re)start advertising what ``start_advertising`` set; restarted by us, not by
        Bumble, as a central leaves (``_on_connection``), so that it starts fast again.
        ``fast``: for the fast window, if the watch has one. ``only_if_on_air``: a
        change of interval, not for a watch a central took."""
        fast = fast and self._fast_s > 0
        async with self._advertising_turn:
            if self._advertised is None or self._stopping or self.lost:
                return
            interval = FAST_ADVERTISING_MS if fast else self._interval
            if only_if_on_air and self.interval_on_air_ms in (None, interval):
                return
            data, response = self._advertised
            self._end_fast_advertising_later(self._fast_s if fast else None)
            connections = self._connections
            await self.device.start_advertising(
                advertising_data=data,
                scan_response_data=response,
                advertising_interval_min=interval,
                advertising_interval_max=interval,
            )
            if connections == self._connections:
                self.interval_on_air_ms = interval
            else:  # a central connected meanwhile: no advertising until it leaves
                await self.device.stop_advertising()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the event handler that asked for it; a failure is logged
        as a connection handler's is."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._on_connection_error(error)

    def _end_fast_advertising_later(self, delay_s: float | None) -> None:
        """Schedule the fast window's end in ``delay_s``, replacing any; None: cancel."""
        if self._slowing is not None:
            self._slowing.cancel()
            self._slowing = None
        if delay_s is not None:
            loop = asyncio.get_running_loop()
            self._slowing = loop.call_later(
                delay_s, lambda: self._in_background(self.end_fast_advertising())
            )

    # --- GATT table --------------------------------------------------------------------
    def _service(self, spec: ServiceSpec) -> gatt.Service:
        return gatt.Service(
            bumble_uuid(spec.uuid),
            [self._characteristic(c.uuid, c.properties) for c in spec.characteristics],
        )

    def _characteristic(self, uuid: str, properties: Property) -> gatt.Characteristic[bytes]:
        flags = gatt.Characteristic.Properties(0)
        for ours, theirs in _PROPERTIES.items():
            if ours in properties:
                flags |= theirs

        async def read(connection: Connection) -> bytes:
            self._check_access(connection, characteristic.handle, Property.READ)
            try:
                return self._read(uuid)
            except Exception as error:
                raise _att_error(uuid, error) from error

        async def write(connection: Connection, value: bytes) -> None:
            self._check_access(connection, characteristic.handle, _WRITABLE)
            try:
                await self._write(uuid, self._peer(connection), value)
            except Exception as error:
                raise _att_error(uuid, error) from error

        characteristic: gatt.Characteristic[bytes] = gatt.Characteristic(
            bumble_uuid(uuid),
            flags,
            gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(read=read, write=write),
        )
        if properties & _SUBSCRIBABLE:
            # Our own CCCD, so that its handle is known: a subscription needs the same
            # security as a read (``_access``, checked by the server before any write).
            server = self.device.gatt_server
            characteristic.descriptors = [
                gatt.Descriptor(
                    gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    gatt.Descriptor.READABLE | gatt.Descriptor.WRITEABLE,
                    server.make_descriptor_value(characteristic),
                )
            ]
        self._characteristics[uuid] = characteristic
        return characteristic

    def _permit_write(self, bearer: att.Bearer, attribute: att.Attribute[bytes]) -> None:
        """Asked by the GATT server before any write (request, command, prepared, CCCD)."""
        if attribute.handle in self._access:
            assert isinstance(bearer, Connection)  # no EATT: every bearer is the ACL link
            self._check_access(bearer, attribute.handle, _WRITABLE)

    def _check_access(self, connection: Connection, handle: int, wanted: Property) -> None:
        properties, required = self._access[handle]
        if not properties & wanted:
            raise att.ATT_Error(
                AttErrorCode.READ_NOT_PERMITTED
                if wanted is Property.READ
                else AttErrorCode.WRITE_NOT_PERMITTED
            )
        if required is Security.OPEN:
            return
        link = self._links.get(connection.handle)
        if not connection.encryption or link is None:
            bonded = str(connection.peer_address) in self._bonds
            raise att.ATT_Error(
                AttErrorCode.INSUFFICIENT_ENCRYPTION
                if bonded
                else AttErrorCode.INSUFFICIENT_AUTHENTICATION
            )
        if required is Security.AUTHENTICATED and not link.key_authenticated:
            raise att.ATT_Error(AttErrorCode.INSUFFICIENT_AUTHENTICATION)

    # --- connections -------------------------------------------------------------------
    def _peer(self, connection: Connection) -> Peer:
        address = str(connection.peer_address)
        return Peer(address, address in self._bonds, connection.att_mtu, connection.handle)

    @property
    def peers(self) -> tuple[Peer, ...]:
        return tuple(self._peer(link.connection) for link in self._links.values())

    def _on_connection(self, connection: Connection) -> None:
        link = _Link(connection)
        self._links[connection.handle] = link
        self._subscribed_links.clear()  # nothing remembered may point at a handle reused
        # A connection ends legacy advertising; it starts again (fast) as a central leaves.
        self._connections += 1
        self.interval_on_air_ms = None
        self._end_fast_advertising_later(None)

        def on_encryption_change() -> None:
            """The key just given to the controller is the one encrypting the link now."""
            link.key_authenticated = bool(connection.encryption) and link.key_offered

        def on_pairing(keys: PairingKeys) -> None:
            address = str(connection.peer_address)
            self.backoff.succeeded(address)
            self._bonds[address] = _ltk_authenticated(keys)

        def on_pairing_failure(reason: int) -> None:
            # A refusal for repeated attempts does not itself lengthen the wait.
            if reason != SMP_REPEATED_ATTEMPTS_ERROR:
                now = asyncio.get_running_loop().time()
                self.backoff.failed(str(connection.peer_address), now)

        def on_disconnection(reason: int) -> None:
            self._links.pop(connection.handle, None)
            if self._advertised is not None and self.interval_on_air_ms is None:
                self._in_background(self._advertise(fast=True))
            self._subscribed_links.clear()  # Bumble drops the link's CCCDs
            link.closed.set()
            self._flow.set()
            self._emit(Disconnected(self._peer(connection), reason))

        connection.on(Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, on_encryption_change)
        connection.on(Connection.EVENT_CONNECTION_ENCRYPTION_KEY_REFRESH, on_encryption_change)
        connection.on(Connection.EVENT_PAIRING, on_pairing)
        connection.on(Connection.EVENT_PAIRING_FAILURE, on_pairing_failure)
        connection.on(Connection.EVENT_DISCONNECTION, on_disconnection)
        connection.on("error", self._on_connection_error)
        self._emit(Connected(self._peer(connection)))

    def _on_connection_error(self, error: BaseException) -> None:
        """What a connection's listeners or the advertising restart as one ends raised:
        expected once the transport is gone, which ``lose`` reports."""
        if self.lost or self._stopping:
            logger.debug("after the radio went away: %r", error)
        else:
            logger.warning("connection event handler failed: %r", error)

    def _on_subscription(
        self,
        connection: Connection,
        characteristic: gatt.Characteristic[bytes],
        notify: bool,
        indicate: bool,
    ) -> None:
        self._subscribed_links.clear()
        uuid = self._uuid_of_handle.get(characteristic.handle)
        if uuid is None:  # Bumble's own Service Changed characteristic
            return
        self._emit(SubscriptionChanged(self._peer(connection), uuid, notify, indicate))

    # --- pushing values ------------------------------------------------------------------
    def _queue(self) -> DataPacketQueue | None:
        host = self.device.host
        return host.le_acl_packet_queue or host.acl_packet_queue

    def listened(self, uuid: str) -> bool:
        return bool(self._subscribers(uuid.lower(), 0x03))

    def _subscribers(self, uuid: str, bits: int) -> tuple[_Link, ...]:
        """Links whose CCCD for ``uuid`` has any of ``bits`` (0x01 notify, 0x02 indicate)."""
        key = (uuid, bits)
        links = self._subscribed_links.get(key)
        if links is None:
            handle = self._characteristics[uuid].handle
            subscribers = self.device.gatt_server.subscribers
            links = self._subscribed_links[key] = tuple(
                link
                for link in self._links.values()
                if (cccd := subscribers.get(link.connection, {}).get(handle)) and cccd[0] & bits
            )
        return links

    def _subscribed(self, uuid: str, bit: int, value: bytes) -> tuple[_Link, ...]:
        self._values[uuid] = value
        links = self._subscribers(uuid, bit)
        for link in links:
            if len(value) > link.connection.att_mtu - ATT_HEADER_SIZE:
                raise ValueError(
                    f"{len(value)} bytes do not fit MTU {link.connection.att_mtu} of "
                    f"{link.connection.peer_address} for {uuid}"
                )
        return links

    async def _wait_for_room(self, link: _Link) -> None:
        queue = self._queue()
        while queue is not None and queue.pending >= queue.max_in_flight:
            if link.closed.is_set():
                return
            self._flow.clear()
            try:
                await asyncio.wait_for(self._flow.wait(), FLOW_TIMEOUT)
            except TimeoutError:
                raise TimeoutError(
                    f"ACL buffers still full after {FLOW_TIMEOUT}s "
                    f"({queue.pending} packets pending)"
                ) from None

    async def notify(self, uuid: str, value: bytes) -> int:
        uuid = uuid.lower()
        handle = self._characteristics[uuid].handle
        sent = 0
        for link in self._subscribed(uuid, 0x01, value):
            await self._wait_for_room(link)
            if link.closed.is_set():
                continue
            pdu = _NOTIFICATION.pack(att.Opcode.ATT_HANDLE_VALUE_NOTIFICATION, handle) + value
            self.device.send_l2cap_pdu(link.connection.handle, att.ATT_CID, pdu)
            sent += 1
        return sent

    async def indicate(self, uuid: str, value: bytes) -> int:
        uuid = uuid.lower()
        characteristic = self._characteristics[uuid]
        links = self._subscribed(uuid, 0x02, value)
        results = await asyncio.gather(
            *(self._indicate_one(link, characteristic, value) for link in links)
        )
        return sum(results)

    async def _indicate_one(
        self, link: _Link, characteristic: gatt.Characteristic[bytes], value: bytes
    ) -> bool:
        """Indicate to one peer; a peer leaving mid-indication is not an error."""
        confirmed = asyncio.ensure_future(
            self.device.gatt_server.indicate_subscriber(link.connection, characteristic, value)
        )
        closed = asyncio.ensure_future(link.closed.wait())
        try:
            await asyncio.wait({confirmed, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if confirmed.done():
            confirmed.result()
            return True
        confirmed.cancel()
        return False


def _ltk_authenticated(keys: PairingKeys) -> bool:
    ltk = keys.ltk or keys.ltk_peripheral
    return ltk is not None and ltk.authenticated


def _att_error(uuid: str, error: Exception) -> att.ATT_Error:
    code = att_error_code(error)
    if code == AttErrorCode.UNLIKELY_ERROR:
        logger.exception("handler for %s failed", uuid)
    return att.ATT_Error(code, message=str(error))


async def start_on_link(
    link: LocalLink,
    state_dir: Path,
    *,
    name: str = "Watchsim",
    mode: PairingMode = PairingMode.PASSKEY,
    display: PairingDisplay | None = None,
    profile: Sequence[ServiceSpec] = PROFILE,
    advertise: bool = True,
    advertising_interval_ms: float = 100.0,
    fast_advertising_s: float = FAST_ADVERTISING_S,
    smp_timeout_s: float = SMP_TIMEOUT_S,
) -> BumblePeripheral:
    """A started (and advertising) watch peripheral on a fresh virtual controller
    (``smp_timeout_s``: shorter than the specification's 30 s only in tests)."""
    controller = virtual_controller(f"watch-{name}", link=link)

    async def leave_link() -> None:
        link.remove_controller(controller)

    host = Host(controller, AsyncPipeSink(controller))
    peripheral = BumblePeripheral(
        host,
        state_dir,
        name=name,
        mode=mode,
        display=display,
        close=leave_link,
        advertising_interval_ms=advertising_interval_ms,
        fast_advertising_s=fast_advertising_s,
        smp_timeout_s=smp_timeout_s,
    )
    await _start(peripheral, profile, name, advertise)
    return peripheral


async def open_peripheral(
    transport: str,
    state_dir: Path,
    *,
    name: str = "Watchsim",
    mode: PairingMode = PairingMode.PASSKEY,
    display: PairingDisplay | None = None,
    profile: Sequence[ServiceSpec] = PROFILE,
    advertise: bool = True,
) -> BumblePeripheral:
    """A started watch peripheral over a Bumble HCI transport (air, usb:0, hci-socket:0)."""
    hci_transport = await open_transport(transport)
    peripheral = BumblePeripheral(
        Host(hci_transport.source, coalesced(hci_transport.sink)),
        state_dir,
        name=name,
        mode=mode,
        display=display,
        close=hci_transport.close,
    )
    try:
        await _start(peripheral, profile, name, advertise)
    except BaseException:
        await hci_transport.close()
        raise
    terminated = hci_transport.source.terminated
    terminated.add_done_callback(lambda _: peripheral.lose(f"transport {transport} closed"))
    return peripheral


async def _start(
    peripheral: BumblePeripheral, profile: Sequence[ServiceSpec], name: str, advertise: bool
) -> None:
    await peripheral.start(profile)
    if advertise:
        advertised = [s.uuid for s in profile if s.advertised]
        await peripheral.start_advertising(name, uuids.APPEARANCE_SMARTWATCH, advertised)
