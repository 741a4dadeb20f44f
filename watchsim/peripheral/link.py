"""A LocalLink that costs the same per packet with ten controllers or a thousand.

Bumble's ``LocalLink`` hands every advertising PDU to every other controller (scanning
or not) and finds the destination of every ACL packet by walking all controllers and
their connections: O(controllers) per packet, O(N^2) per second for a fleet, which at
500 watches is millions of calls a second spent on nothing. This link keeps the set of
controllers that listen to advertisements (scanning, or initiating a connection: it
hooks those commands) and a cache from address to
controller, checked on every hit, so both are O(1). Behaviour is the same: advertisements
reach exactly the controllers that would have acted on them, and a connection request
reaches its advertiser (or, when the address is unknown, everyone, as before).
An advertisement skips the controllers that would drop it (``VirtualController.hears``:
a scan filtered to other devices, an initiator waiting for another peer), so a fleet's
agents, each after its own watch, cost the air one delivery per advertisement, not N.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink

from bumblekit.controller import VirtualController

# The commands after which a controller starts or stops listening to advertisements.
_LISTEN_COMMANDS = (
    "on_hci_le_set_scan_enable_command",
    "on_hci_le_set_extended_scan_enable_command",
    "on_hci_le_create_connection_command",
    "on_hci_le_extended_create_connection_command",
)


def _listens(controller: Controller) -> bool:
    return bool(controller.le_scan_enable or controller.pending_le_connection)


def _hears(controller: Controller, advertiser: hci.Address) -> bool:
    return not isinstance(controller, VirtualController) or controller.hears(advertiser)


def _answers(controller: Controller, address: hci.Address) -> bool:
    """Whether ``controller`` is the one Bumble's own search would find for ``address``."""
    return (
        controller.random_address == address
        or controller.public_address == address
        or any(c.self_address == address for c in controller.le_connections.values())
    )


class IndexedLink(LocalLink):
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.listening: set[Controller] = set()
        self._by_address: dict[hci.Address, Controller] = {}

    def add_controller(self, controller: Controller) -> None:
        super().add_controller(controller)
        for name in _LISTEN_COMMANDS:
            setattr(controller, name, self._tracking(controller, getattr(controller, name)))

    def _tracking(
        self, controller: Controller, handler: Callable[[Any], Any]
    ) -> Callable[[Any], Any]:
        """The controller's own handler, then note whether it now listens."""

        def hooked(command: Any) -> Any:
            result = handler(command)
            if _listens(controller) and controller in self.controllers:
                self.listening.add(controller)
            return result

        return hooked

    def remove_controller(self, controller: Controller) -> None:
        super().remove_controller(controller)
        self.listening.discard(controller)
        for address in [a for a, c in self._by_address.items() if c is controller]:
            del self._by_address[address]

    def find_le_controller(self, address: hci.Address) -> Controller | None:
        cached = self._by_address.get(address)
        if cached is not None and cached in self.controllers and _answers(cached, address):
            return cached
        found: Controller | None = super().find_le_controller(address)
        if found is not None:
            self._by_address[address] = found
        return found

    def send_advertising_pdu(
        self, sender_controller: Controller, packet: ll.AdvertisingPdu
    ) -> None:
        loop = asyncio.get_running_loop()
        targets: set[Controller] | list[Controller]
        if isinstance(packet, ll.ConnectInd):
            advertiser = self.find_le_controller(packet.advertiser_address)
            targets = self.controllers if advertiser is None else [advertiser]
        else:
            # Initiators stop listening when connected, without a command: pruned here.
            self.listening = {c for c in self.listening if _listens(c)}
            sender: hci.Address | None = getattr(packet, "advertiser_address", None)
            targets = [c for c in self.listening if sender is None or _hears(c, sender)]
        for controller in targets:
            if controller is not sender_controller:
                loop.call_soon(controller.on_ll_advertising_pdu, packet)
