"""Peripheral port over BlueZ through bless (``--adapter hci0``).

Thin on purpose: the profile mapping is in pure functions (unit-tested); the rest only
forwards. What bless 0.3.0 can and cannot do, and what this adapter does instead:

- Security: bless permissions only know "encryption required" for reads and writes
  (``encrypt-read``/``encrypt-write``), and it declares only its first service primary.
  BlueZ takes a subscription's protection (the CCCD's write permission) only from the
  ``encrypt-notify``/``encrypt-authenticated-notify`` (and ``-indicate``) flags, so a plain
  ``notify`` lets any central subscribe. Before the application is registered,
  ``describe_to_bluez`` sets on bless's D-Bus objects the flags BlueZ reads
  (``bluez_flags``: every access of a characteristic, subscriptions included, at its
  profile security) and makes every service primary. bless 0.3.0 keeps both in private
  fields (``_flags``, ``_primary``): pinned (pyproject) and checked on a real bus by
  ``tests/integration/test_bless_bluez_objects.py``.
- No connection, disconnection or subscription events, no peer identity and no MTU:
  listeners are never called and ``peers`` is empty. BlueZ does name the central and the
  ATT MTU in every ReadValue/WriteValue call's options, which bless drops: the adapter
  watches its bus for those calls (``request_peer``) and hands the central to the write
  handler (``UNKNOWN_PEER`` when BlueZ sends no options).
  bless leaves links up when it stops, so ``stop`` disconnects the adapter's centrals
  itself (the port's contract; "out of range" relies on it).
- No pairing hooks: given a display, the adapter registers our own ``org.bluez.Agent1``
  (``bluez_agent``) as bluetoothd's default agent, which shows or confirms the passkey.
- Little advertising content control: BlueZ places the local name itself (in the scan
  response of a legacy advertisement, as InfiniTime does) and adds no appearance; bless
  advertises only the first service of its tree, so the adapter sets the advertised
  services itself (``ServiceUUIDs``). bless's advertisement has no ``Discoverable``
  property, so its flags say "not discoverable" (0x04) and BlueZ's plain discovery never
  lists the watch: the adapter registers ``DiscoverableAdvertisement`` (bless's, plus
  ``Discoverable``, which BlueZ has read since 2020) itself, together with the GATT
  application, in ``start_advertising``.
- ``update_value`` is synchronous and unacknowledged: ``notify``/``indicate`` cannot
  wait for confirmation; they wait until the value is in the D-Bus socket (``BusWriter``,
  which also keeps dbus_next from closing the bus when that socket is full) and return 1
  when bless took it.
- Write handlers are async but bless calls back synchronously, so a write is answered
  with success before the handler runs; a handler's error is only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from bless.backends.attribute import GATTAttributePermissions
from bless.backends.bluezdbus.dbus.advertisement import BlueZLEAdvertisement, Type
from bless.backends.bluezdbus.dbus.service import BlueZGattService
from bless.backends.characteristic import GATTCharacteristicProperties
from dbus_next.constants import MessageType, PropertyAccess  # bless's D-Bus library
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.service import dbus_property

from bluezkit import device_address
from protocol.profile import PROFILE, Property, Security, ServiceSpec
from watchsim.errors import WatchsimError
from watchsim.peripheral.bluez_agent import RegisteredAgent
from watchsim.peripheral.dbus_next_writer import BusWriter
from watchsim.peripheral.port import PairingDisplay, PairingMode, Peer, Peripheral

logger = logging.getLogger(__name__)

UNKNOWN_PEER: Final = Peer(address="unknown", bonded=False, mtu=23)
_CHARACTERISTIC_INTERFACE: Final = "org.bluez.GattCharacteristic1"
# BlueZ packs notifications to a BlueZ central into Multiple Handle Value Notifications,
# whose per-value length field leaves a value 2 bytes less than a plain notification.
_PACKED_NOTIFICATION_OVERHEAD: Final = 2

_PROPERTIES: Final = {
    Property.READ: GATTCharacteristicProperties.read,
    Property.WRITE: GATTCharacteristicProperties.write,
    Property.WRITE_WITHOUT_RESPONSE: GATTCharacteristicProperties.write_without_response,
    Property.NOTIFY: GATTCharacteristicProperties.notify,
    Property.INDICATE: GATTCharacteristicProperties.indicate,
}
_WRITABLE: Final = Property.WRITE | Property.WRITE_WITHOUT_RESPONSE
# BlueZ's GattCharacteristic1 flag of each access; the protection is a prefix.
_BLUEZ_ACCESS: Final = {
    Property.READ: "read",
    Property.WRITE: "write",
    Property.NOTIFY: "notify",
    Property.INDICATE: "indicate",
}
_BLUEZ_PROTECTION: Final = {
    Security.OPEN: "",
    Security.ENCRYPTED: "encrypt-",
    Security.AUTHENTICATED: "encrypt-authenticated-",
}

GattTree = dict[str, dict[str, dict[str, Any]]]


def bless_properties(properties: Property) -> GATTCharacteristicProperties:
    flags = GATTCharacteristicProperties(0)
    for ours, theirs in _PROPERTIES.items():
        if ours in properties:
            flags |= theirs
    return flags


def bless_permissions(properties: Property, security: Security) -> GATTAttributePermissions:
    """Access permissions; any security above OPEN needs encryption (see module doc)."""
    permissions = GATTAttributePermissions(0)
    encrypted = security >= Security.ENCRYPTED
    if Property.READ in properties:
        permissions |= GATTAttributePermissions.readable
        if encrypted:
            permissions |= GATTAttributePermissions.read_encryption_required
    if properties & _WRITABLE:
        permissions |= GATTAttributePermissions.writeable
        if encrypted:
            permissions |= GATTAttributePermissions.write_encryption_required
    return permissions


def bluez_flags(properties: Property, security: Security) -> list[str]:
    """BlueZ's ``Flags`` of a characteristic: every access, subscriptions included, at
    ``security``. BlueZ derives the value's permissions from the read/write flags and the
    CCCD's write permission from the notify/indicate ones."""
    protection = _BLUEZ_PROTECTION[security]
    flags = [protection + flag for access, flag in _BLUEZ_ACCESS.items() if access in properties]
    if Property.WRITE_WITHOUT_RESPONSE in properties:
        # No protected variant: BlueZ checks a Write Command against the write flag's
        # permission, so without that flag nothing would protect it.
        if security > Security.OPEN and Property.WRITE not in properties:
            raise ValueError("BlueZ cannot protect a write-without-response-only characteristic")
        flags.append("write-without-response")
    return flags


def describe_to_bluez(service: Any, spec: ServiceSpec) -> None:
    """Make bless's D-Bus service ``service`` (a ``BlueZGattService``) say what ``spec``
    needs and bless 0.3.0 has no API for: primary (bless makes only its first service
    primary, and phones find services by primary discovery) and each characteristic's
    full ``Flags``. BlueZ reads both when the application is registered."""
    service._primary = True
    specs = {str(UUID(c.uuid)): c for c in spec.characteristics}
    for characteristic in service.characteristics:
        c = specs[str(UUID(characteristic.UUID))]
        characteristic._flags = bluez_flags(c.properties, c.security)


# Where the watch's own services start in bluetoothd's database: above the ones bluetoothd
# registers for itself (GAP, GATT and Device Information end at 0x0014 in BlueZ 5.66).
FIRST_HANDLE: Final = 0x0100


def attribute_count(spec: ServiceSpec) -> int:
    """How many handles BlueZ gives ``spec``: the declaration, then each characteristic's
    declaration and value, plus a CCCD where it notifies or indicates (no characteristic
    of ours has extended properties or other descriptors)."""
    subscribable = Property.NOTIFY | Property.INDICATE
    return 1 + sum(2 + bool(c.properties & subscribable) for c in spec.characteristics)


def service_handles(profile: Sequence[ServiceSpec], first: int = FIRST_HANDLE) -> dict[str, int]:
    """Each service's first handle: contiguous from ``first``, in the profile's order."""
    handles: dict[str, int] = {}
    for spec in profile:
        handles[spec.uuid] = first
        first += attribute_count(spec)
    return handles


class PinnedGattService(BlueZGattService):
    """bless's GATT service with the ``Handle`` BlueZ (5.51 and later) reads when the
    application is registered. Without it, bluetoothd put each registration after every
    handle it had given out, so a restarted watch's database differed (handles and hash)
    and a bonded phone's next connection rediscovered it, removing and adding the services
    again on its D-Bus while bleak read them. With the same handles, the Service Changed
    indication a restart still causes finds the same services and changes nothing, as
    for a real watch, whose firmware keeps its handles from one boot to the next."""

    def __init__(self, original: Any, handle: int) -> None:
        super().__init__(original.UUID, original._primary, 1, original.app)
        self.path = original.path
        self.characteristics = original.characteristics
        self._handle = handle

    @dbus_property(access=PropertyAccess.READWRITE)
    def Handle(self) -> "q":  # type: ignore[name-defined]  # noqa: F821, UP037
        return self._handle

    @Handle.setter  # type: ignore[no-redef]
    def Handle(self, handle: "q") -> None:  # type: ignore[name-defined]  # noqa: F821, UP037
        self._handle = handle  # BlueZ writes back the handle it chose when given 0


def pin_handles(app: Any, profile: Sequence[ServiceSpec]) -> dict[str, PinnedGattService]:
    """Replace each of bless's services in ``app`` (a ``BlueZGattApplication`` not yet
    registered, its services already described by ``describe_to_bluez``) by a
    ``PinnedGattService`` at its handle from ``service_handles``; returns them by UUID."""
    index = {UUID(s.UUID): i for i, s in enumerate(app.services)}
    pinned: dict[str, PinnedGattService] = {}
    for uuid, handle in service_handles(profile).items():
        if (at := index.get(UUID(uuid))) is None:
            raise ValueError(f"the application has no service {uuid} to pin")
        original = app.services[at]
        service = app.services[at] = pinned[uuid] = PinnedGattService(original, handle)
        app.bus.unexport(service.path, original)
        app.bus.export(service.path, service)
    return pinned


class DiscoverableAdvertisement(BlueZLEAdvertisement):
    """bless's advertisement, advertised as LE General Discoverable: a watch waiting to be
    paired must show up in any central's plain discovery (BlueZ's included)."""

    @dbus_property(access=PropertyAccess.READ)  # type: ignore[untyped-decorator]
    def Discoverable(self) -> "b":  # type: ignore[name-defined]  # noqa: F821, UP037
        return True


def gatt_tree(profile: Sequence[ServiceSpec]) -> GattTree:
    """bless ``add_gatt`` tree, in the profile's order (InfiniTime's registration order
    for that personality)."""
    return {
        service.uuid: {
            c.uuid: {
                "Properties": bless_properties(c.properties),
                "Permissions": bless_permissions(c.properties, c.security),
                "Value": None,
            }
            for c in service.characteristics
        }
        for service in profile
    }


def request_peer(message: Message) -> Peer | None:
    """The central behind a ReadValue/WriteValue call BlueZ makes on a bless characteristic.

    The MTU is the one a notification value must fit (see ``_PACKED_NOTIFICATION_OVERHEAD``).
    """
    if (
        message.message_type is not MessageType.METHOD_CALL
        or message.interface != _CHARACTERISTIC_INTERFACE
        or message.member not in ("ReadValue", "WriteValue")
    ):
        return None
    options = message.body[-1]
    device, mtu = options.get("device"), options.get("mtu")
    if device is None or mtu is None:
        return UNKNOWN_PEER
    usable = max(UNKNOWN_PEER.mtu, int(mtu.value) - _PACKED_NOTIFICATION_OVERHEAD)
    return Peer(address=device_address(device.value), bonded=False, mtu=usable)


class BlessPeripheral(Peripheral):
    def __init__(
        self,
        adapter: str = "hci0",
        name: str = "Watchsim",
        display: PairingDisplay | None = None,
        mode: PairingMode = PairingMode.PASSKEY,
    ) -> None:
        super().__init__()
        self._adapter = adapter
        self._name = name
        self._display = display
        self._mode = mode
        self._agent: RegisteredAgent | None = None
        self._server: Any = None
        self._writer: BusWriter | None = None
        self._address = ""
        self._requester = UNKNOWN_PEER  # the central of the request bless is handling
        self._service_of: dict[str, str] = {}
        self._profile: Sequence[ServiceSpec] = ()
        self._registered = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, profile: Sequence[ServiceSpec] = PROFILE) -> None:
        # Imported here: only a real Linux host with D-Bus gets this far.
        from bless import BlessServer  # type: ignore[attr-defined]

        self._server = BlessServer(name=self._name, adapter=self._adapter)
        await self._server.setup_task  # connects the bus, before anything is sent on it
        self._writer = BusWriter(self._server.bus)
        self._server.bus.add_message_handler(self._note_requester)
        adapter = self._server.adapter.get_interface("org.bluez.Adapter1")
        self._address = str(await adapter.get_address())
        self._server.read_request_func = self._on_read
        self._server.write_request_func = self._on_write
        self._profile = profile
        await self._server.add_gatt(gatt_tree(profile))
        self._service_of = {c.uuid: s.uuid for s in profile for c in s.characteristics}
        for service in profile:
            describe_to_bluez(self._server.get_service(service.uuid).gatt, service)
        for uuid, pinned in pin_handles(self._server.app, profile).items():
            wrapper = self._server.get_service(uuid)
            wrapper.gatt = wrapper.obj = pinned
        if self._display is not None:
            self._agent = await RegisteredAgent.register(self._display, self._mode)

    async def stop(self) -> None:
        if self._agent is not None:
            await self._agent.close()
            self._agent = None
        if self._server is not None:
            await self._disconnect_centrals()
            if self._registered:  # bless's stop fails on an application never registered
                await self._server.stop()
            self._server.bus.disconnect()  # bless leaves its connection open

    async def _disconnect_centrals(self) -> None:
        bus, adapter = self._server.bus, self._server.adapter.path
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path="/",
                interface="org.freedesktop.DBus.ObjectManager",
                member="GetManagedObjects",
            )
        )
        if reply is None or reply.message_type is MessageType.ERROR:
            logger.error("cannot list BlueZ devices to disconnect them")
            return
        for path, interfaces in reply.body[0].items():
            device = interfaces.get("org.bluez.Device1")
            if device is None or not path.startswith(f"{adapter}/"):
                continue
            if device["Connected"].value:
                await bus.call(
                    Message(
                        destination="org.bluez",
                        path=path,
                        interface="org.bluez.Device1",
                        member="Disconnect",
                    )
                )

    async def start_advertising(
        self,
        local_name: str,
        appearance: int,
        service_uuids: Sequence[str],
        *,
        name_in_scan_response: bool = False,
    ) -> None:
        # What bless's ``start`` does, with a discoverable advertisement of the services
        # asked for (bless's: the tree's first). The name is fixed at construction; BlueZ
        # puts it in the scan response (``name_in_scan_response`` holds on BlueZ).
        server = self._server
        app = server.app
        server.bus.export(app.path, app)
        try:
            await app.register(server.adapter)
        except DBusError as error:
            last = FIRST_HANDLE + sum(attribute_count(s) for s in self._profile) - 1
            raise WatchsimError(
                f"bluetoothd refused the watch's services at handles 0x{FIRST_HANDLE:04x}-"
                f"0x{last:04x} on {self._adapter} ({error.text}): another GATT application"
                " there holds some of them (another watch on the same adapter?); stop it,"
                " or give this watch an adapter of its own"
            ) from error
        self._registered = True
        await app.set_name(server.adapter, app.app_name)
        advertisement: Any = DiscoverableAdvertisement(
            Type.PERIPHERAL, len(app.advertisements) + 1, app
        )
        advertisement.ServiceUUIDs = list(service_uuids)
        app.advertisements.append(advertisement)  # bless's stop_advertising unregisters it
        server.bus.export(advertisement.path, advertisement)
        manager = server.adapter.get_interface("org.bluez.LEAdvertisingManager1")
        await manager.call_register_advertisement(advertisement.path, {})

    async def stop_advertising(self) -> None:
        await self._server.app.stop_advertising(self._server.adapter)

    @property
    def address(self) -> str:
        """The adapter's address: what centrals see (no privacy on a bless server)."""
        return self._address

    @property
    def peers(self) -> tuple[Peer, ...]:
        return ()

    def _note_requester(self, message: Message) -> None:
        """Runs just before bless dispatches the same message; never handles it."""
        peer = request_peer(message)
        if peer is not None:
            self._requester = peer

    def _on_read(self, characteristic: Any, **_options: Any) -> bytearray:
        return bytearray(self._read(str(characteristic.uuid).lower()))

    def _on_write(self, characteristic: Any, value: Any) -> None:
        uuid = str(characteristic.uuid).lower()
        task = asyncio.get_running_loop().create_task(
            self._write(uuid, self._requester, bytes(value))
        )
        self._tasks.add(task)
        task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("write handler failed: %s", error)

    async def notify(self, uuid: str, value: bytes) -> int:
        uuid = uuid.lower()
        self._values[uuid] = value
        characteristic = self._server.get_characteristic(uuid)
        characteristic.value = bytearray(value)
        sent = self._server.update_value(self._service_of[uuid], uuid)
        if self._writer is not None:
            await self._writer.drained()
        return int(bool(sent))

    async def indicate(self, uuid: str, value: bytes) -> int:
        return await self.notify(uuid, value)
