"""Errors of the agent's BLE transport, all ``BleakError`` so callers catch one family.

ATT error responses come out as bleak's own ``BleakGATTProtocolError`` (code in ``.code``);
these are the cases bleak has no class for.
"""

from __future__ import annotations

from bleak.exc import BleakError


class TransportConfigError(BleakError):
    """A transport configuration that names no usable transport. Never silently replaced."""


class ConnectTimeoutError(BleakError, TimeoutError):
    """The peer did not advertise or accept a connection in time."""


class PairingFailedError(BleakError):
    """Pairing did not complete: wrong passkey, rejected comparison, peer refused."""


class PairingLostError(BleakError):
    """A bond exists on one side only, or the two sides hold different keys."""

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"pairing lost with {address} ({detail}): run pair again")
        self.address = address
        self.detail = detail
