"""A send path for bless's D-Bus connection that survives a full socket and drains on demand.

bless 0.3.0 talks to bluetoothd through dbus_next 0.2.3, whose asyncio writer sends on a
non-blocking socket and treats ``EAGAIN`` as a fatal error: the first time the socket's
buffer is full (a backfill's burst of notifications is enough) it closes the bus, and with
it the GATT application and the advertisement (python-dbus-next issue 153, unfixed in
0.2.3). ``BusWriter`` is the one place this is worked around: it takes over the write
callback of one bus (never dbus_next's class), waits for the socket to become writable
instead of giving up, and lets a caller wait until everything queued was handed to the
socket, which is the back-pressure the adapter's ``notify`` gives the watch app.

It relies on ``_MessageWriter``'s fields (``messages``, ``buf``, ``offset``, ``fut``, ...),
hence the exact dbus_next pin bless brings in; ``tests/integration/test_dbus_next_writer.py``
checks it against a real socket pair.
"""

from __future__ import annotations

import array
import asyncio
import socket
from typing import Any


def _settle(future: asyncio.Future[None] | None, error: BaseException | None = None) -> None:
    """Resolve a future nobody may be awaiting any more (dbus_next drops send futures)."""
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class BusWriter:
    """Owns the send side of one connected dbus_next ``MessageBus``."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus
        self._writer = bus._writer
        self._waiters: list[asyncio.Future[None]] = []
        # An instance attribute: dbus_next looks it up each time it arms the writer.
        self._writer.write_callback = self._on_writable
        # A bus closed from the other end (or by us) never calls the writer again.
        bus._disconnect_future.add_done_callback(lambda _future: self._wake())

    @property
    def pending(self) -> bool:
        """Whether some queued message has not been handed to the socket entirely."""
        return self._writer.buf is not None or self._writer.messages.qsize() > 0

    async def drained(self) -> None:
        """Return once every message queued so far is in the socket (or the bus failed)."""
        if not self.pending or not self._bus.connected:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _on_writable(self) -> None:
        writer = self._writer
        try:
            while self._send_some(writer):
                pass
        except (BlockingIOError, InterruptedError):
            return  # full: the loop calls back once the socket is writable again
        except Exception as error:  # the connection is gone: fail as dbus_next would
            _settle(writer.fut, error)
            self._bus._finalize(error)
            self._wake()
            return
        if not self.pending:
            writer.loop.remove_writer(writer.fd)
            self._wake()

    @staticmethod
    def _send_some(writer: Any) -> bool:
        """Send from the current message; True while more can be sent at once."""
        if writer.buf is None:
            if writer.messages.qsize() == 0:
                return False
            data, writer.unix_fds, writer.fut = writer.messages.get_nowait()
            writer.buf, writer.offset = memoryview(data), 0
        rest = writer.buf[writer.offset :]
        if writer.unix_fds and writer.negotiate_unix_fd:
            rights = array.array("i", writer.unix_fds)
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)]
            writer.offset += writer.sock.sendmsg([rest], ancillary)
            writer.unix_fds = None  # sent with the first bytes of the message
        else:
            writer.offset += writer.sock.send(rest)
        if writer.offset < len(writer.buf):
            return False  # a partial send: the socket is full
        writer.buf = None
        _settle(writer.fut)
        return True

    def _wake(self) -> None:
        """Release every ``drained`` caller; a failed bus reports itself on the next call."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _settle(waiter)
