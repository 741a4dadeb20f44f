"""Errors of the agent's BLE transport, all ``BleakError`` so callers catch one family,
and ``AgentError`` so each carries its exit code.

ATT error responses come out as bleak's own ``BleakGATTProtocolError`` (code in ``.code``);
these are the cases bleak has no class for. ``radio_errors`` wraps what bleak and the
codecs raise where a command's radio session begins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bleak.exc import BleakError

from phoneagent.errors import EXIT_PAIRING_LOST, AgentError, AgentUsageError, UnreachableError
from protocol.errors import ProtocolError


class TransportConfigError(BleakError, AgentUsageError):
    """A transport configuration that names no usable transport. Never silently replaced."""


class TransportUnavailableError(TransportConfigError):
    """The configured transport exists on paper but not on this machine (no BlueZ)."""


class ConnectTimeoutError(BleakError, UnreachableError, TimeoutError):
    """The peer did not advertise or accept a connection in time."""


class PairingFailedError(BleakError, UnreachableError):
    """Pairing did not complete: wrong passkey, rejected comparison, peer refused."""


class PairingLostError(BleakError, AgentError):
    """A bond exists on one side only, or the two sides hold different keys."""

    exit_code = EXIT_PAIRING_LOST

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"pairing lost with {address} ({detail}): run pair again")
        self.address = address
        self.detail = detail


@contextmanager
def radio_errors() -> Iterator[None]:
    """bleak's errors, a watch's undecodable bytes and timeouts, as ``UnreachableError``;
    the agent's own errors (which may also be ``BleakError``) pass unchanged."""
    try:
        yield
    except AgentError:
        raise
    except (BleakError, ProtocolError, TimeoutError) as error:
        raise UnreachableError(str(error) or type(error).__name__) from error
