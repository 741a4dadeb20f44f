"""An HCI byte-stream sink that writes once per event-loop turn, not once per packet.

Bumble's ``StreamPacketSink`` writes every HCI packet to its socket at once: a 512-byte
history notification is three ACL fragments, and each fragment, each completion event,
is a ``send`` system call of its own in the watch and again in the air that relays it
(the air's largest cost in a backfill profile after the debug strings). Packets handed
over in one turn of the loop are joined and written together at the end of it, in
order; a stream has no packet boundaries to lose.
"""

from __future__ import annotations

import asyncio

from bumble.transport.common import StreamPacketSink, TransportSink


class CoalescingSink:
    """Bumble's packet-sink interface (``on_packet``, ``close``) over a stream transport."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        self._pending: list[bytes] = []

    def on_packet(self, packet: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(packet))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self.transport.is_closing():
            self.transport.write(b"".join(pending))

    def close(self) -> None:
        self._flush()  # what was handed over before the close still goes out
        self.transport.close()


def coalesced(sink: TransportSink) -> TransportSink:
    """``sink`` writing once per loop turn when it is a byte stream's (TCP, a socket);
    any other sink (a packet-per-call transport) as it is."""
    if isinstance(sink, StreamPacketSink):
        return CoalescingSink(sink.transport)
    return sink
