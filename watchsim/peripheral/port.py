"""The peripheral port: what the watch app needs from a BLE stack, and nothing more.

The watch app talks to this interface only, so that the same app runs over Bumble
(loopback air or raw HCI) and over BlueZ (bless). Adapters live one per module.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from protocol.errors import LengthError, ProtocolError
from protocol.profile import ServiceSpec


class AttErrorCode(enum.IntEnum):
    """ATT error codes the port lets a handler (or an adapter) answer with."""

    READ_NOT_PERMITTED = 0x02
    WRITE_NOT_PERMITTED = 0x03
    INSUFFICIENT_AUTHENTICATION = 0x05
    INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D
    UNLIKELY_ERROR = 0x0E
    INSUFFICIENT_ENCRYPTION = 0x0F
    VALUE_NOT_ALLOWED = 0x13
    # 0x80-0x9F: application errors (the profile's own meanings).
    APPLICATION_ERROR = 0x80


class AttError(Exception):
    """Raised by a read/write handler to answer the peer with a specific ATT error."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"ATT error 0x{code:02X}")
        self.code = code


def att_error_code(error: Exception) -> int:
    """ATT error a handler's exception becomes on the air (peers only see a code)."""
    match error:
        case AttError():
            return error.code
        case LengthError():
            return AttErrorCode.INVALID_ATTRIBUTE_VALUE_LENGTH
        case ProtocolError():
            return AttErrorCode.VALUE_NOT_ALLOWED
        case _:
            return AttErrorCode.UNLIKELY_ERROR


class PairingMode(enum.Enum):
    """What the watch can do during pairing (its SMP I/O capability)."""

    PASSKEY = "passkey"  # DisplayOnly: the watch shows a 6-digit passkey
    NUMERIC = "numeric"  # DisplayYesNo: numeric comparison, the user confirms
    JUST_WORKS = "justworks"  # NoInputNoOutput: no MITM protection


@dataclass(frozen=True)
class Peer:
    """A connected central as the watch sees it, at the moment of an event."""

    address: str
    bonded: bool
    mtu: int
    # The link's handle where the stack tells (Bumble): the address of one connection
    # changes when the central's resolvable private address is resolved (or pairing
    # gives its identity), the handle does not.
    handle: int | None = None

    @property
    def link(self) -> int | str:
        """What names this connection for as long as it lasts."""
        return self.address if self.handle is None else self.handle


@dataclass(frozen=True)
class Connected:
    peer: Peer


@dataclass(frozen=True)
class Disconnected:
    peer: Peer
    reason: int


@dataclass(frozen=True)
class SubscriptionChanged:
    peer: Peer
    uuid: str
    notify: bool
    indicate: bool


@dataclass(frozen=True)
class RadioLost:
    """The stack under the peripheral went away (the air stopped, a dongle was pulled):
    it serves nothing any more, and a new peripheral is needed once the stack is back."""

    reason: str


PeripheralEvent = Connected | Disconnected | SubscriptionChanged | RadioLost
Listener = Callable[[PeripheralEvent], None]
ReadHandler = Callable[[], bytes]
WriteHandler = Callable[[Peer, bytes], Awaitable[None]]


class PairingDisplay(Protocol):
    """The watch's screen and button during pairing."""

    async def show_passkey(self, peer_address: str, passkey: int) -> None: ...

    async def confirm_number(self, peer_address: str, number: int) -> bool: ...


# Bytes of a notification/indication payload that fit in one ATT PDU of a given MTU.
ATT_HEADER_SIZE: Final = 3


class Peripheral(abc.ABC):
    """One BLE peripheral role: publish the profile, advertise, serve and push values.

    Values pushed with ``notify``/``indicate`` are also what a read returns when the
    characteristic has no read handler, so a value need not be kept twice.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._read_handlers: dict[str, ReadHandler] = {}
        self._write_handlers: dict[str, WriteHandler] = {}
        self._values: dict[str, bytes] = {}

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def set_read_handler(self, uuid: str, handler: ReadHandler) -> None:
        self._read_handlers[uuid.lower()] = handler

    def set_write_handler(self, uuid: str, handler: WriteHandler) -> None:
        self._write_handlers[uuid.lower()] = handler

    def _emit(self, event: PeripheralEvent) -> None:
        for listener in tuple(self._listeners):
            listener(event)

    def _read(self, uuid: str) -> bytes:
        handler = self._read_handlers.get(uuid)
        return handler() if handler is not None else self._values.get(uuid, b"")

    async def _write(self, uuid: str, peer: Peer, value: bytes) -> None:
        handler = self._write_handlers.get(uuid)
        if handler is None:
            raise AttError(AttErrorCode.WRITE_NOT_PERMITTED, f"no write handler for {uuid}")
        await handler(peer, value)

    @abc.abstractmethod
    async def start(self, profile: Sequence[ServiceSpec]) -> None:
        """Power on and publish ``profile`` (services, properties, security)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect everyone and release the stack; bonds stay on disk."""

    @abc.abstractmethod
    async def start_advertising(
        self,
        local_name: str,
        appearance: int,
        service_uuids: Sequence[str],
        *,
        name_in_scan_response: bool = False,
    ) -> None:
        """Advertise ``service_uuids`` and the name. ``name_in_scan_response``: as an
        InfiniTime watch does, the complete name goes in the scan response and the
        advertising data carries no name and no appearance (``protocol.infinitime``)."""

    @abc.abstractmethod
    async def stop_advertising(self) -> None: ...

    def listened(self, uuid: str) -> bool:
        """Whether a central subscribed to ``uuid`` (notify or indicate), so that a value
        nobody listens to need not be computed. An adapter that cannot tell says True."""
        return True

    @property
    @abc.abstractmethod
    def peers(self) -> tuple[Peer, ...]:
        """Currently connected centrals."""

    @abc.abstractmethod
    async def notify(self, uuid: str, value: bytes) -> int:
        """Notify subscribed peers; waits while a link's buffers are full.

        Returns how many peers were sent the value.
        """

    @abc.abstractmethod
    async def indicate(self, uuid: str, value: bytes) -> int:
        """Indicate to subscribed peers; returns once every peer confirmed (or left)."""
