"""bless's D-Bus connection when its socket fills: dbus_next alone drops the bus, BusWriter
waits and delivers everything in order.

A real private dbus-daemon, stopped (SIGSTOP) while a burst is sent, is what fills the
socket: the same state a backfill's notification burst reaches when bluetoothd lags.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from dbus_fast import Message as FastMessage
from dbus_fast.aio import MessageBus as FastBus
from dbus_next.aio.message_bus import MessageBus
from dbus_next.message import Message

from watchsim.peripheral.dbus_next_writer import BusWriter

BURST = 3000  # small signals: far more than a Unix socket buffers
PATH, INTERFACE, MEMBER = "/org/watchsim/test", "org.watchsim.Test", "Tick"
WAIT = 30.0


def _signal(n: int) -> Message:
    return Message.new_signal(PATH, INTERFACE, MEMBER, "us", [n, "x" * 200])


def _daemon_pid(bus: Any) -> int:
    credentials = bus._sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid: int = struct.unpack("3i", credentials)[0]
    return pid


def _writable(bus: Any) -> bool:
    return bool(select.select([], [bus._sock], [], 0)[1])


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Turn the event loop until ``condition``: the writer only runs between turns."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail(f"never happened: {what}")


@asynccontextmanager
async def _stopped(bus: Any) -> AsyncIterator[None]:
    """The bus daemon frozen, so that nothing it is sent is read."""
    pid = _daemon_pid(bus)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_dbus_next_alone_closes_the_bus_on_a_full_socket(session_bus: str) -> None:
    """The upstream bug BusWriter exists for; if this fails, dbus_next fixed it."""
    bus = await MessageBus(bus_address=session_bus).connect()
    try:
        async with _stopped(bus):
            sends = [bus.send(_signal(n)) for n in range(BURST)]
            await _until(lambda: not bus.connected, "the bus closed")
        with pytest.raises(BlockingIOError):
            await bus.wait_for_disconnect()
        outcomes = [send.exception() for send in sends if send.done()]
        assert [type(error) for error in outcomes if error is not None] == [BlockingIOError]
    finally:
        bus.disconnect()


async def test_bus_writer_waits_for_room_and_delivers_every_signal_in_order(
    session_bus: str,
) -> None:
    received: list[int] = []
    all_in = asyncio.Event()

    def on_message(message: FastMessage) -> None:
        if message.member == MEMBER:
            received.append(message.body[0])
            if len(received) == BURST:
                all_in.set()

    listener = await FastBus(bus_address=session_bus).connect()
    listener.add_message_handler(on_message)
    await listener.call(
        FastMessage(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="AddMatch",
            signature="s",
            body=[f"type='signal',interface='{INTERFACE}'"],
        )
    )
    bus = await MessageBus(bus_address=session_bus).connect()
    writer = BusWriter(bus)
    try:
        async with _stopped(bus):
            for n in range(BURST):
                bus.send(_signal(n))
            drained = asyncio.ensure_future(writer.drained())
            await _until(lambda: not _writable(bus), "the socket filled up")
            assert bus.connected and writer.pending and not drained.done()
        async with asyncio.timeout(WAIT):
            await drained
            await all_in.wait()
        assert bus.connected and not writer.pending
        assert received == list(range(BURST))
    finally:
        bus.disconnect()
        listener.disconnect()


async def test_drained_returns_at_once_when_nothing_is_queued(session_bus: str) -> None:
    bus = await MessageBus(bus_address=session_bus).connect()
    try:
        writer = BusWriter(bus)
        await _until(lambda: not writer.pending, "the Hello exchange was written")
        async with asyncio.timeout(WAIT):
            await writer.drained()
    finally:
        bus.disconnect()
