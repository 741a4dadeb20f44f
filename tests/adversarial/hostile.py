"""Hostile centrals: raw Bumble devices that speak ATT byte by byte and pair with
whatever SMP parameters an attacker picks. Nothing of the project is imported here but
UUID constants, so these peers share no code (and no mistakes) with the watch or agent.
"""

from __future__ import annotations

import asyncio
import struct
import uuid as uuid_module
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bumble import hci, smp
from bumble.controller import Controller
from bumble.core import ProtocolError
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import MemoryKeyStore, PairingKeys
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from protocol import uuids

WAIT = 5.0
ATT_CID = 0x0004
SMP_CID = 0x0006
IoCapability = PairingDelegate.IoCapability

# ATT opcodes (Core Vol 3 Part F 3.4.8).
ERROR_RSP = 0x01
MTU_REQ = 0x02
FIND_INFORMATION_REQ = 0x04
READ_BY_TYPE_REQ = 0x08
READ_REQ = 0x0A
READ_BLOB_REQ = 0x0C
READ_MULTIPLE_REQ = 0x0E
WRITE_REQ = 0x12
WRITE_RSP = 0x13
PREPARE_WRITE_REQ = 0x16
EXECUTE_WRITE_REQ = 0x18
NOTIFICATION = 0x1B
INDICATION = 0x1D
CONFIRMATION = 0x1E
READ_MULTIPLE_VARIABLE_REQ = 0x20
MULTIPLE_NOTIFICATION = 0x23
WRITE_CMD = 0x52
PUSHED = frozenset({NOTIFICATION, INDICATION, MULTIPLE_NOTIFICATION})

# ATT error codes the tests name.
INVALID_PDU = 0x04
REQUEST_NOT_SUPPORTED = 0x06
PREPARE_QUEUE_FULL = 0x09
ATTRIBUTE_NOT_FOUND = 0x0A
INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
VALUE_NOT_ALLOWED = 0x13

CHARACTERISTIC_DECLARATION = 0x2803
CCCD = 0x2902
SIG_BASE = "-0000-1000-8000-00805f9b34fb"
# Characteristic properties (Core Vol 3 Part G 3.3.1.1).
PROP_READ, PROP_NOTIFY, PROP_INDICATE = 0x02, 0x10, 0x20


def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def uuid_of(raw: bytes) -> str:
    """The 128-bit lower-case form ``protocol.uuids`` uses, from a UUID on the air."""
    if len(raw) == 2:
        return f"0000{struct.unpack('<H', raw)[0]:04x}{SIG_BASE}"
    return str(uuid_module.UUID(bytes=bytes(reversed(raw))))


def uuid_bytes(uuid: str) -> bytes:
    """A UUID as ATT carries it: 16-bit for SIG UUIDs, otherwise 128-bit, little-endian."""
    if uuid.endswith(SIG_BASE) and uuid.startswith("0000"):
        return u16(int(uuid[4:8], 16))
    return bytes(reversed(uuid_module.UUID(uuid).bytes))


@dataclass(frozen=True)
class Found:
    """A characteristic as discovered on the air."""

    uuid: str
    properties: int
    value: int
    cccd: int | None


class Withholding(smp.Session):
    """An initiator that announces its keys and then never sends them, so that the
    responder's pairing never reaches its key distribution's end."""

    def distribute_keys(self) -> None:
        if not self.is_initiator:
            super().distribute_keys()


class Stalling(PairingDelegate):
    """A keyboard that never types: the pairing hangs at passkey entry."""

    def __init__(self) -> None:
        super().__init__(io_capability=IoCapability.KEYBOARD_INPUT_ONLY)
        self.never = asyncio.Event()

    async def get_number(self) -> int | None:
        await self.never.wait()
        return None


class Typist(PairingDelegate):
    """A keyboard that types what ``passkey`` gives (the right one, or not)."""

    def __init__(self, passkey: Callable[[], Awaitable[int]]) -> None:
        super().__init__(io_capability=IoCapability.KEYBOARD_INPUT_ONLY)
        self._passkey = passkey

    async def get_number(self) -> int | None:
        return await self._passkey()


@dataclass
class Pairing:
    """The SMP parameters this central asks for."""

    delegate: PairingDelegate = field(default_factory=PairingDelegate)
    sc: bool = True
    mitm: bool = False
    bonding: bool = True
    key_size: int = 16
    withhold_keys: bool = False


class RawCentral:
    """A Bumble device on the watch's air whose ATT channel is entirely its own."""

    def __init__(
        self,
        link: LocalLink,
        address: str,
        pairing: Pairing | None = None,
        *,
        raw_smp: bool = False,
    ) -> None:
        """``raw_smp``: SMP too is this central's own, byte by byte (``smp_request``)."""
        self.pairing = pairing or Pairing()
        self.pairing.delegate.maximum_encryption_key_size = self.pairing.key_size
        controller = Controller(f"hostile-{address}", link=link)
        self._link = link
        self._controller = controller
        config = DeviceConfiguration(name="hostile", address=hci.Address(address))
        self.device = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
        self.device.keystore = MemoryKeyStore()
        self.device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=self.pairing.sc,
            mitm=self.pairing.mitm,
            bonding=self.pairing.bonding,
            delegate=self.pairing.delegate,
        )
        if self.pairing.withhold_keys:
            self.device.smp_session_proxy = Withholding
        self.device.l2cap_channel_manager.register_fixed_channel(ATT_CID, self._on_att)
        if raw_smp:
            self.device.l2cap_channel_manager.register_fixed_channel(SMP_CID, self._on_smp)
        self.received: list[bytes] = []  # every ATT PDU the watch sent
        self._smp_answer: asyncio.Future[bytes] | None = None
        self.found: dict[str, Found] = {}
        self._response: asyncio.Future[bytes] | None = None
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        assert self._connection is not None, "not connected"
        return self._connection

    @property
    def pushed(self) -> list[bytes]:
        """Notifications and indications received."""
        return [pdu for pdu in self.received if pdu[0] in PUSHED]

    def _on_att(self, handle: int, pdu: bytes) -> None:
        self.received.append(pdu)
        if pdu[0] == INDICATION:
            self.device.send_l2cap_pdu(handle, ATT_CID, bytes([CONFIRMATION]))
        elif pdu[0] not in PUSHED and self._response is not None and not self._response.done():
            self._response.set_result(pdu)

    def _on_smp(self, handle: int, pdu: bytes) -> None:
        if self._smp_answer is not None and not self._smp_answer.done():
            self._smp_answer.set_result(pdu)

    async def smp_request(self, pdu: bytes) -> bytes:
        """Sends a raw SMP PDU and returns the watch's next SMP PDU."""
        self._smp_answer = asyncio.get_running_loop().create_future()
        self.device.send_l2cap_pdu(self.connection.handle, SMP_CID, pdu)
        return await asyncio.wait_for(self._smp_answer, WAIT)

    # --- link ----------------------------------------------------------------------
    def leave(self) -> None:
        """Off the air (its address free for a spoofer) until the next ``connect``."""
        self._link.remove_controller(self._controller)

    async def connect(self, address: str, *, discover: bool = True) -> Connection:
        if self._controller not in self._link.controllers:
            self._link.add_controller(self._controller)
        if not self.device.powered_on:
            await self.device.power_on()
        target = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        self._connection = await asyncio.wait_for(self.device.connect(target), WAIT)
        if discover and not self.found:
            await self.discover()
        return self._connection

    async def disconnect(self) -> None:
        connection = self.connection
        done = asyncio.get_running_loop().create_future()
        connection.once(Connection.EVENT_DISCONNECTION, done.set_result)
        await connection.disconnect()
        await asyncio.wait_for(done, WAIT)

    async def dropped(self) -> int:
        """Waits until the watch drops the link; its reason."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.connection.once(Connection.EVENT_DISCONNECTION, done.set_result)
        return await asyncio.wait_for(done, WAIT)

    async def pair(self) -> None:
        await asyncio.wait_for(self.connection.pair(), WAIT)

    async def try_pairing(self) -> int | None:
        """Pairs; the SMP reason the watch refused with, or None once paired. (A pairing
        that never finishes is the caller's to wait out.)"""
        try:
            await self.pair()
        except ProtocolError as error:
            assert error.error_code is not None
            return int(error.error_code)
        return None

    async def pairing_refused(self) -> int:
        """Pairs, expecting the watch to refuse; the SMP reason it gave."""
        reason = await self.try_pairing()
        assert reason is not None, "the watch accepted the pairing"
        return reason

    async def encryption_dropped(self, ltk: bytes) -> int:
        """Encrypts with a key of the attacker's choosing, expecting the link to end;
        the reason it ended with."""
        keys = PairingKeys(ltk=PairingKeys.Key(value=ltk))
        assert self.device.keystore is not None
        await self.device.keystore.update(str(self.connection.peer_address), keys)
        dropped = asyncio.ensure_future(self.dropped())
        encrypting = asyncio.ensure_future(self.connection.encrypt())
        reason = await dropped
        # Bumble cancels the encryption when the link ends: that is the expected end.
        await asyncio.gather(encrypting, return_exceptions=True)
        return reason

    # --- raw ATT ------------------------------------------------------------------
    def send(self, pdu: bytes) -> None:
        self.device.send_l2cap_pdu(self.connection.handle, ATT_CID, pdu)

    async def request(self, pdu: bytes) -> bytes:
        """Sends a request and returns the watch's answer (a timeout fails the test:
        ATT says a request without response kills the bearer)."""
        self._response = asyncio.get_running_loop().create_future()
        self.send(pdu)
        return await asyncio.wait_for(self._response, WAIT)

    async def command(self, pdu: bytes) -> None:
        """Sends a command, then a request behind it: ATT is sequential, so once the
        request is answered the command has been handled (and nothing answered it)."""
        self.send(pdu)
        await self.sync()

    async def sync(self) -> None:
        """A round trip: whatever the watch sent before its answer has arrived."""
        answer = await self.request(bytes([READ_REQ]) + u16(self.handle(uuids.MODEL_NUMBER)))
        assert answer[0] != ERROR_RSP, f"probe refused: {answer.hex()}"

    async def exchange_mtu(self, mtu: int) -> int:
        answer = await self.request(bytes([MTU_REQ]) + u16(mtu))
        assert answer[0] == MTU_REQ + 1, answer.hex()
        return int(struct.unpack_from("<H", answer, 1)[0])

    async def discover(self) -> None:
        """Every characteristic declaration, then each one's CCCD, by raw requests."""
        declarations: list[tuple[int, int, int, str]] = []
        start = 0x0001
        while True:
            answer = await self.request(
                bytes([READ_BY_TYPE_REQ])
                + u16(start)
                + u16(0xFFFF)
                + u16(CHARACTERISTIC_DECLARATION)
            )
            if answer[0] == ERROR_RSP:
                break
            size = answer[1]
            for offset in range(2, len(answer) - size + 1, size):
                entry = answer[offset : offset + size]
                handle, properties, value = struct.unpack_from("<HBH", entry)
                declarations.append((handle, properties, value, uuid_of(entry[5:])))
                start = handle + 1
        ends = [d[0] - 1 for d in declarations[1:]] + [0xFFFF]
        for (_, properties, value, uuid), end in zip(declarations, ends, strict=True):
            cccd = await self._find_cccd(value + 1, end) if properties & 0x30 else None
            self.found[uuid] = Found(uuid, properties, value, cccd)

    async def _find_cccd(self, start: int, end: int) -> int | None:
        answer = await self.request(bytes([FIND_INFORMATION_REQ]) + u16(start) + u16(end))
        if answer[0] == ERROR_RSP or answer[1] != 0x01:
            return None
        for offset in range(2, len(answer), 4):
            handle, kind = struct.unpack_from("<HH", answer, offset)
            if kind == CCCD:
                return int(handle)
        return None

    def handle(self, uuid: str) -> int:
        return self.found[uuid].value

    def cccd(self, uuid: str) -> int:
        cccd = self.found[uuid].cccd
        assert cccd is not None, f"{uuid} has no CCCD"
        return cccd


def refused(answer: bytes | None, opcode: int) -> int:
    """The error code of an Error Response to ``opcode`` (anything else fails)."""
    assert answer is not None and answer[0] == ERROR_RSP, f"not refused: {answer!r}"
    assert answer[1] == opcode, f"error for opcode 0x{answer[1]:02X}, sent 0x{opcode:02X}"
    return answer[4]


# Every ATT way in to a characteristic: name -> what it sends. Each returns the answer
# to its request (None for a command, which has none).
Attempt = Callable[[RawCentral, Found], Awaitable[tuple[int, bytes | None]]]


async def _read(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    return READ_REQ, await central.request(bytes([READ_REQ]) + u16(found.value))


async def _read_blob(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    return READ_BLOB_REQ, await central.request(bytes([READ_BLOB_REQ]) + u16(found.value) + u16(0))


async def _read_by_type(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    pdu = bytes([READ_BY_TYPE_REQ]) + u16(found.value) + u16(found.value) + uuid_bytes(found.uuid)
    return READ_BY_TYPE_REQ, await central.request(pdu)


async def _read_multiple(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    handles = u16(central.handle(uuids.MODEL_NUMBER)) + u16(found.value)
    return READ_MULTIPLE_REQ, await central.request(bytes([READ_MULTIPLE_REQ]) + handles)


async def _read_multiple_variable(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    handles = u16(central.handle(uuids.MODEL_NUMBER)) + u16(found.value)
    return READ_MULTIPLE_VARIABLE_REQ, await central.request(
        bytes([READ_MULTIPLE_VARIABLE_REQ]) + handles
    )


async def _write_request(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    return WRITE_REQ, await central.request(bytes([WRITE_REQ]) + u16(found.value) + b"\x01")


async def _write_command(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    await central.command(bytes([WRITE_CMD]) + u16(found.value) + b"\x01")
    return WRITE_CMD, None


async def _prepare_execute(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
    prepared = await central.request(
        bytes([PREPARE_WRITE_REQ]) + u16(found.value) + u16(0) + b"\x01"
    )
    executed = await central.request(bytes([EXECUTE_WRITE_REQ, 0x01]))
    # Nothing was queued, so there is nothing to execute (and nothing was written).
    assert executed[0] == EXECUTE_WRITE_REQ + 1, executed.hex()
    return PREPARE_WRITE_REQ, prepared


def _cccd_write(bits: int) -> Attempt:
    async def attempt(central: RawCentral, found: Found) -> tuple[int, bytes | None]:
        cccd = central.cccd(found.uuid)
        return WRITE_REQ, await central.request(bytes([WRITE_REQ]) + u16(cccd) + u16(bits))

    return attempt


# Subscriptions apply only where there is a CCCD to write.
SUBSCRIPTIONS = frozenset({"subscribe_notify", "subscribe_indicate"})
ATTEMPTS: dict[str, Attempt] = {
    "read": _read,
    "read_blob": _read_blob,
    "read_by_type": _read_by_type,
    "read_multiple": _read_multiple,
    "read_multiple_variable": _read_multiple_variable,
    "write_request": _write_request,
    "write_command": _write_command,
    "prepare_execute": _prepare_execute,
    "subscribe_notify": _cccd_write(0x0001),
    "subscribe_indicate": _cccd_write(0x0002),
}
