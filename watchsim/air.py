"""The loopback "air": one shared Bumble LocalLink that separate processes join over TCP.

Every accepted TCP connection gets its own fresh virtual controller on the link and
speaks HCI (H4) over the socket, so a client opens the Bumble transport
``tcp-client:HOST:PORT``. Unlike Bumble's own ``apps/controllers.py``, a client that goes
away (socket closed, process killed) is taken off the link at once and its peers see a
disconnection (reason: connection timeout, as a real supervision timeout would give);
otherwise their pending reads would hang forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Final

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

from bumblekit.controller import virtual_controller
from bumblekit.quiet import quiet_bumble_debug_strings
from bumblekit.sink import CoalescingSink
from watchsim.peripheral.bumble_adapter import new_link

logger = logging.getLogger(__name__)

DEAD_PEER_REASON: Final = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR


class _Client(asyncio.Protocol):
    """One client process: a virtual controller fed by the socket's H4 byte stream."""

    def __init__(self, air: Air, name: str) -> None:
        self._air = air
        self._name = name
        self._parser: PacketParser | None = None
        self.controller: Controller | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.controller = virtual_controller(self._name, link=self._air.link)
        self.controller.host = CoalescingSink(transport)
        self._parser = PacketParser(self.controller)
        self._air.clients.add(self)
        logger.info("%s joined (%s)", self._name, transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        assert self._parser is not None
        try:
            self._parser.feed_data(data)
        except core.InvalidPacketError:
            logger.warning("%s sent an invalid H4 packet; dropping the client", self._name)
            self._air.leave(self)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._air.leave(self)


class Air:
    """A TCP listener in front of one LocalLink. ``await start()`` then ``await close()``.

    Closing drops every TCP client but keeps the link, so controllers joined in-process
    (a fleet's watches) stay; ``start()`` again listens on the same port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # The air handles every packet of both ends: unquietened, its controllers built
        # a debug string per packet (~15% of the air's CPU in a backfill).
        quiet_bumble_debug_strings()
        self.link: LocalLink = new_link()
        self.clients: set[_Client] = set()
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._names = (f"air-{n}" for n in itertools.count(1))

    async def start(self) -> tuple[str, int]:
        """Listen; returns the bound (host, port), useful when asked for port 0."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Client(self, next(self._names)), self._host, self._port
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self._port = int(port)  # a restart (close, then start) listens on the same port
        return str(host), int(port)

    def leave(self, client: _Client) -> None:
        """Take a client's controller off the link; its peers see a disconnection."""
        if client not in self.clients or client.controller is None:
            return
        self.clients.discard(client)
        controller = client.controller
        controller.host = None
        controller.le_legacy_advertiser.stop()
        for advertising_set in controller.advertising_sets.values():
            advertising_set.stop()
        for connection in tuple(controller.le_connections.values()):
            # The peer may have left in the same instant; then nobody is left to tell.
            with contextlib.suppress(core.InvalidArgumentError):
                connection.send_ll_control_pdu(ll.TerminateInd(DEAD_PEER_REASON))
        controller.le_connections.clear()
        self.link.remove_controller(controller)
        logger.info("%s left", controller.name)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in tuple(self.clients):
            self.leave(client)
            if client.transport is not None:
                client.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
