"""Hostile peripherals: raw Bumble devices that pose as the watch to the agent.

Nothing of the project is imported here but UUID constants: the GATT table is built by
hand and every history value is written byte by byte from ``docs/protocol-custom.md``,
so a bug shared by the agent and the project's own codecs cannot hide here. A test
scripts what the peripheral does when the agent writes its History Control Point
(``Hostile.on_request``) and reads back everything the agent wrote (``Hostile.writes``).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bumble import att, hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from protocol import uuids

P = Characteristic.Properties
PASSKEY = 246810
# docs/protocol-custom.md, History Sync: opcodes, results, entry tags.
REPORT, COUNT, ABORT, DELETE_UP_TO, REPORT_LIVE = 1, 2, 3, 4, 5
SUCCESS, NO_RECORDS, ABORTED = 1, 2, 5
HEART_RATE = 1  # metric id
GAP_TAG = 0x80
BASE_TS = 1_780_000_000


@dataclass(frozen=True)
class Record:
    seq: int
    ts: int
    raw: int  # heart rate, bpm


def history(count: int, first: int = 1) -> list[Record]:
    """Heart-rate records ``first..first+count-1``, one a second."""
    return [Record(s, BASE_TS + s, 60 + s % 40) for s in range(first, first + count)]


def batch(records: list[Record]) -> bytes:
    """One packed batch of compact heart-rate records with consecutive seqs."""
    head = records[0]
    out = struct.pack("<II", head.seq, head.ts)
    previous = head.ts
    for record in records:
        out += struct.pack("<BBHh", HEART_RATE, 0, record.ts - previous, record.raw)
        previous = record.ts
    return out


def gap_batch(first: int, last: int) -> bytes:
    """A batch holding one gap entry: seqs first..last dropped on the watch."""
    return struct.pack("<IIBBI", first, 0, GAP_TAG, 0, last - first)


def response(opcode: int, result: int, value: int) -> bytes:
    return struct.pack("<BBBI", 0x80, opcode, result, value)


def status(newest: int, oldest: int, count: int) -> bytes:
    return struct.pack("<III", newest, oldest, count)


async def advertise_as_watch(device: Device, name: str, services: tuple[int, bytes]) -> None:
    """Connectable, general discoverable, every 20 ms: ``services`` (an AD type and its
    UUID list), the smartwatch appearance and ``name``."""
    payload = AdvertisingData(
        [
            (AdvertisingData.FLAGS, bytes([0x06])),
            services,
            (AdvertisingData.APPEARANCE, struct.pack("<H", uuids.APPEARANCE_SMARTWATCH)),
            (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
        ]
    )
    await device.start_advertising(
        advertising_data=bytes(payload),
        auto_restart=True,
        advertising_interval_min=20,
        advertising_interval_max=20,
    )


class _Screen(PairingDelegate):
    """Shows a fixed passkey (or, Just Works only, has no display and no input)."""

    def __init__(self, just_works: bool) -> None:
        super().__init__(
            io_capability=(
                PairingDelegate.NO_OUTPUT_NO_INPUT
                if just_works
                else PairingDelegate.DISPLAY_OUTPUT_ONLY
            )
        )

    async def generate_passkey(self) -> int:
        return PASSKEY


Script = Callable[["Hostile", Connection, bytes], Awaitable[None]]
# Where a peripheral may drop the link, in the order a session meets them.
PHASES = (
    "connect",
    "discovery",
    "pairing",
    "encryption",
    "status read",
    "REPORT",
    "records",
    "DELETE_UP_TO",
)


@dataclass
class Hostile:
    """A peripheral on ``link`` that advertises the watch's name and services.

    ``address``: the watch's own (a spoofer) or another. ``just_works``: it offers only
    Just Works pairing. ``on_request``: what it does on each Control Point write.
    """

    link: LocalLink
    address: str
    name: str = "WatchSim"
    just_works: bool = False
    newest: int = 0
    status_value: bytes | None = None  # History Status as read; None: from ``newest``
    # The phase in which it drops the link (``PHASES``); None: it never does.
    drop_in: str | None = None
    dropped: list[str] = field(default_factory=list)
    on_request: Script | None = None
    omitted: frozenset[str] = frozenset()  # characteristics it does not offer
    writes: list[tuple[str, bytes]] = field(default_factory=list)
    connections: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.controller = Controller(f"hostile-{self.address}", link=self.link)
        config = DeviceConfiguration(name=self.name, address=hci.Address(self.address))
        host = Host(self.controller, AsyncPipeSink(self.controller))
        self.device = Device(config=config, host=host)
        self.device.keystore = MemoryKeyStore()
        self.device.pairing_config_factory = lambda _: PairingConfig(
            sc=True,
            mitm=not self.just_works,
            bonding=True,
            delegate=_Screen(self.just_works),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
        self.device.on(Device.EVENT_CONNECTION, self._connected)
        self.device.on(Connection.EVENT_PAIRING_START, lambda c: self.drop("pairing", c))
        self.chars: dict[str, Characteristic[bytes]] = {}
        self._hook_discovery()
        self._hook_encryption()

    def drop(self, phase: str, connection: Connection) -> bool:
        """Disconnect ``connection`` if this is the phase to do it in."""
        if self.drop_in != phase:
            return False
        self.dropped.append(phase)
        task = asyncio.ensure_future(connection.disconnect())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    def _hook_discovery(self) -> None:
        """Drop instead of answering the first primary service discovery request."""
        server = self.device.gatt_server
        answer = server.on_att_read_by_group_type_request

        def request(bearer: Connection, pdu: att.ATT_PDU) -> None:
            if not self.drop("discovery", bearer):
                answer(bearer, pdu)

        server.on_att_read_by_group_type_request = request

    def _hook_encryption(self) -> None:
        """Drop when the central asks to encrypt with the bond (the LTK request)."""
        device, lookup = self.device, self.device.get_long_term_key

        async def key(handle: int, rand: bytes, ediv: int) -> bytes | None:
            connection = device.lookup_connection(handle)
            if connection is not None and self.drop("encryption", connection):
                await asyncio.Event().wait()  # no answer: the link goes first
            return await lookup(handle, rand, ediv)

        device.host.long_term_key_provider = key

    def _char(
        self, uuid: str, properties: P, value: bytes | CharacteristicValue[bytes]
    ) -> Characteristic[bytes]:
        """Open (no permission checks): the agent must not rely on the peer refusing."""
        permissions = Characteristic.READABLE | Characteristic.WRITEABLE
        char: Characteristic[bytes] = Characteristic(uuid, properties, permissions, value)
        self.chars[uuid] = char
        return char

    def _service(self, uuid: str, chars: list[Characteristic[bytes]]) -> Service:
        offered = [c for c in chars if all(self.chars.get(u) is not c for u in self.omitted)]
        return Service(uuid, offered)

    def _recording(self, uuid: str, read: bytes = b"") -> CharacteristicValue[bytes]:
        def write(connection: Connection, value: bytes) -> None:
            self.writes.append((uuid, bytes(value)))
            if uuid != uuids.HISTORY_CONTROL_POINT:
                return
            phase = {REPORT: "REPORT", DELETE_UP_TO: "DELETE_UP_TO"}.get(value[0], "")
            if self.drop(phase, connection):
                return
            if self.on_request is not None:
                task = asyncio.ensure_future(self.on_request(self, connection, bytes(value)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        return CharacteristicValue(read=lambda _: read, write=write)

    def _status(self, connection: Connection) -> bytes:
        self.drop("status read", connection)
        if self.status_value is not None:
            return self.status_value
        return status(self.newest, 1, self.newest)

    def _connected(self, connection: Connection) -> None:
        self.connections += 1
        self.drop("connect", connection)

    async def start(self) -> Hostile:
        rw = P.READ | P.WRITE
        status_value = CharacteristicValue[bytes](read=self._status)
        self.device.add_service(
            self._service(
                uuids.DEVICE_INFORMATION_SERVICE,
                [
                    self._char(uuids.MANUFACTURER_NAME, P.READ, b"Hostile"),
                    self._char(uuids.MODEL_NUMBER, P.READ, b"H-1"),
                    self._char(uuids.SERIAL_NUMBER, P.READ, b"0001"),
                    self._char(uuids.FIRMWARE_REVISION, P.READ, b"6.6.6"),
                ],
            )
        )
        self.device.add_service(
            self._service(
                uuids.CURRENT_TIME_SERVICE,
                [
                    self._char(uuids.CURRENT_TIME, rw, self._recording(uuids.CURRENT_TIME)),
                    self._char(
                        uuids.LOCAL_TIME_INFORMATION,
                        rw,
                        self._recording(uuids.LOCAL_TIME_INFORMATION),
                    ),
                ],
            )
        )
        self.device.add_service(
            self._service(
                uuids.HISTORY_SERVICE,
                [
                    self._char(
                        uuids.HISTORY_CONTROL_POINT,
                        P.WRITE | P.INDICATE,
                        self._recording(uuids.HISTORY_CONTROL_POINT),
                    ),
                    self._char(uuids.HISTORY_RECORDS, P.NOTIFY, b""),
                    self._char(uuids.HISTORY_STATUS, P.READ | P.NOTIFY, status_value),
                ],
            )
        )
        settings = bytes.fromhex("01010100 02013c00 03013c00 04013c00")
        self.device.add_service(
            self._service(
                uuids.SETTINGS_SERVICE,
                [
                    self._char(uuids.USER_PROFILE, rw, self._recording(uuids.USER_PROFILE)),
                    self._char(
                        uuids.METRIC_SETTINGS,
                        rw,
                        self._recording(uuids.METRIC_SETTINGS, settings),
                    ),
                ],
            )
        )
        await self.device.power_on()
        history_service = bytes.fromhex(uuids.HISTORY_SERVICE.replace("-", ""))[::-1]
        services = (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, history_service)
        await advertise_as_watch(self.device, self.name, services)
        return self

    # --- what a script sends -----------------------------------------------------------

    def handle(self, uuid: str) -> int:
        handle: int = self.chars[uuid].handle
        return handle

    def notify(self, connection: Connection, handle: int, value: bytes) -> None:
        """A raw Handle Value Notification: subscribed or not, on any handle."""
        pdu = att.ATT_Handle_Value_Notification(attribute_handle=handle, attribute_value=value)
        connection.send_l2cap_pdu(att.ATT_CID, bytes(pdu))

    def indicate(self, connection: Connection, handle: int, value: bytes) -> None:
        """A raw Handle Value Indication, without waiting for the previous confirmation."""
        pdu = att.ATT_Handle_Value_Indication(attribute_handle=handle, attribute_value=value)
        connection.send_l2cap_pdu(att.ATT_CID, bytes(pdu))

    def records(self, connection: Connection, value: bytes) -> None:
        self.notify(connection, self.handle(uuids.HISTORY_RECORDS), value)

    def respond(self, connection: Connection, opcode: int, result: int, value: int) -> None:
        self.indicate(
            connection, self.handle(uuids.HISTORY_CONTROL_POINT), response(opcode, result, value)
        )

    def writes_to(self, uuid: str) -> list[bytes]:
        return [value for written, value in self.writes if written == uuid]

    def acknowledged(self) -> list[int]:
        """Every DELETE_UP_TO seq the agent wrote, in order."""
        return [
            struct.unpack_from("<I", value, 1)[0]
            for uuid, value in self.writes
            if uuid == uuids.HISTORY_CONTROL_POINT and value[:1] == bytes([DELETE_UP_TO])
        ]

    def reports(self) -> list[int]:
        """Every REPORT from_seq the agent wrote, in order."""
        return [
            struct.unpack_from("<I", value, 1)[0]
            for uuid, value in self.writes
            if uuid == uuids.HISTORY_CONTROL_POINT and value[:1] == bytes([REPORT])
        ]

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for connection in list(self.device.connections.values()):
            await connection.disconnect()
        await self.device.stop_advertising()
        self.link.remove_controller(self.controller)


def serve(records: list[Record], per_batch: int = 10) -> Script:
    """A well-behaved watch holding ``records``: REPORT streams them and answers; every
    DELETE_UP_TO is answered."""

    async def script(hostile: Hostile, connection: Connection, request: bytes) -> None:
        opcode = request[0]
        if opcode in (REPORT, REPORT_LIVE):
            (start,) = struct.unpack_from("<I", request, 1)
            wanted = [r for r in records if r.seq >= start]
            for index in range(0, len(wanted), per_batch):
                if index and hostile.drop("records", connection):
                    return
                hostile.records(connection, batch(wanted[index : index + per_batch]))
            last = wanted[-1].seq if wanted else 0
            if opcode == REPORT:
                hostile.respond(connection, REPORT, SUCCESS if wanted else NO_RECORDS, last)
        elif opcode == DELETE_UP_TO:
            hostile.respond(connection, DELETE_UP_TO, SUCCESS, 0)
        elif opcode == ABORT:
            hostile.respond(connection, REPORT_LIVE, ABORTED, records[-1].seq if records else 0)
            hostile.respond(connection, ABORT, SUCCESS, 0)

    return script
