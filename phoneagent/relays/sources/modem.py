"""Incoming calls from ModemManager's Voice interface on the system bus.

Followed: ``Modem.Voice.CallAdded`` (a new call object) and ``Call.StateChanged`` on
each call. Only incoming calls are relayed. The call's ``Number`` property is never
read (properties are fetched one by one, never with ``GetAll``): ModemManager knows
numbers, not names, and a number never reaches the watch (PR-CALL), so modem calls
show as a hidden caller. Watch accept/reject call the call's ``Accept`` / ``Hangup``.

Without ModemManager on the bus (or without a system bus) the source reports itself
unavailable and calls come only from ``phoneagent inject call``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Final

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from phoneagent.relays.hub import RelayHub
from phoneagent.relays.sources.bus import add_match, call, connect, get_property, name_owner
from protocol.alerts import CallStatus

log = logging.getLogger(__name__)

NAME: Final = "org.freedesktop.ModemManager1"
VOICE: Final = "org.freedesktop.ModemManager1.Modem.Voice"
CALL: Final = "org.freedesktop.ModemManager1.Call"
SOURCE: Final = "modem"
DIRECTION_INCOMING: Final = 1


class MMCallState(enum.IntEnum):
    """``MMCallState`` from ModemManager's API."""

    UNKNOWN = 0
    DIALING = 1
    RINGING_OUT = 2
    RINGING_IN = 3
    ACTIVE = 4
    HELD = 5
    WAITING = 6
    TERMINATED = 7


REASON_REFUSED_OR_BUSY: Final = 5  # MMCallStateReason
_RINGING: Final = frozenset({MMCallState.RINGING_IN, MMCallState.WAITING})
_TALKING: Final = frozenset({MMCallState.ACTIVE, MMCallState.HELD})


def call_status(old: int, new: int, reason: int, hung_up_here: bool) -> CallStatus | None:
    """What a ModemManager state change means for the watch; None: nothing to show."""
    if new == MMCallState.ACTIVE and old not in _TALKING:
        return CallStatus.ACCEPTED
    if new != MMCallState.TERMINATED:
        return None
    if old in _TALKING:
        return CallStatus.ENDED
    if hung_up_here or reason == REASON_REFUSED_OR_BUSY:
        return CallStatus.REJECTED
    return CallStatus.MISSED


class ModemSource:
    """Relays ModemManager's incoming calls; the hub's call control for them."""

    def __init__(self, hub: RelayHub, bus_address: str | None = None) -> None:
        self._hub = hub
        self._address = bus_address
        self._bus: MessageBus | None = None
        self._calls: set[str] = set()  # call object paths being relayed
        self._hung_up: set[str] = set()
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Follow ModemManager; False when it (or the system bus) is not there."""
        bus = await connect(self._address, BusType.SYSTEM)
        if await name_owner(bus, NAME) is None:
            bus.disconnect()
            log.info("calls: no ModemManager on the system bus; calls come from injection only")
            return False
        self._bus = bus
        bus.add_message_handler(self._on_message)
        await add_match(bus, f"type='signal',sender='{NAME}',interface='{VOICE}'")
        await add_match(bus, f"type='signal',sender='{NAME}',interface='{CALL}'")
        self._worker = asyncio.create_task(self._work(), name="modem source")
        return True

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type is MessageType.SIGNAL and msg.interface in (VOICE, CALL):
            self._queue.put_nowait(msg)
        return False

    async def _work(self) -> None:
        while True:
            msg = await self._queue.get()
            try:
                await self._handle(msg)
            except DBusError as error:
                log.info("ModemManager call failed: %s", error.type)

    async def _handle(self, msg: Message) -> None:
        bus = self._bus
        if bus is None:
            return
        if msg.member == "CallAdded" and msg.signature == "o":
            path = str(msg.body[0])
            # Property by property: GetAll would hand us the Number too (PR-CALL).
            if await get_property(bus, NAME, path, CALL, "Direction") != DIRECTION_INCOMING:
                return
            if await get_property(bus, NAME, path, CALL, "State") not in _RINGING:
                return
            if (
                await self._hub.call_event(SOURCE, path, CallStatus.INCOMING, None, self)
                is not None
            ):
                self._calls.add(path)
        elif msg.member == "StateChanged" and msg.signature == "iiu":
            path = msg.path or ""
            if path not in self._calls:
                return
            old, new, reason = (int(x) for x in msg.body)
            status = call_status(old, new, reason, path in self._hung_up)
            if status is None:
                return
            if status is not CallStatus.ACCEPTED:
                self._calls.discard(path)
                self._hung_up.discard(path)
            await self._hub.call_event(SOURCE, path, status)

    async def accept(self, key: str) -> None:
        if self._bus is not None:
            await call(self._bus, NAME, key, CALL, "Accept")

    async def hangup(self, key: str) -> None:
        if self._bus is not None:
            self._hung_up.add(key)
            await call(self._bus, NAME, key, CALL, "Hangup")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._bus is not None:
            self._bus.disconnect()
