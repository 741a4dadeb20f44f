"""HCI packets handed to the coalescing sink reach the socket whole and in order, in one
write per loop turn, and nothing handed over before a close is lost."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from bumble.transport.common import AsyncPipeSink, StreamPacketSink

from bumblekit.sink import CoalescingSink, coalesced

PACKETS = [bytes([0x02, n]) + bytes(range(n)) for n in (3, 200, 251, 1)]


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, far = socket.socketpair()
    far.setblocking(False)  # read here directly: what has been sent so far, or nothing
    with ours, far:
        yield ours, far


async def _transport(sock: socket.socket) -> asyncio.WriteTransport:
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=sock)
    assert isinstance(transport, asyncio.WriteTransport)
    return transport


async def test_packets_of_one_turn_go_out_in_one_write(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    ours, far = sockets
    sink = CoalescingSink(await _transport(ours))
    for packet in PACKETS[:3]:
        sink.on_packet(packet)
    with pytest.raises(BlockingIOError):
        far.recv(4096)  # nothing sent while the turn goes on
    await asyncio.sleep(0)  # the end of this turn (not a wait for time)
    assert far.recv(4096) == b"".join(PACKETS[:3])
    sink.on_packet(PACKETS[3])
    sink.close()  # what was handed over before the close still goes out
    assert far.recv(4096) == PACKETS[3]


async def test_only_byte_stream_sinks_are_coalesced(
    sockets: tuple[socket.socket, socket.socket],
) -> None:
    transport = await _transport(sockets[0])
    assert isinstance(coalesced(StreamPacketSink(transport)), CoalescingSink)
    pipe = AsyncPipeSink(StreamPacketSink(transport))
    assert coalesced(pipe) is pipe
    transport.close()
