"""Errors of the agent's BLE transport, all ``BleakError`` so callers catch one family,
and ``AgentError`` so each carries its exit code.

ATT error responses come out as bleak's own ``BleakGATTProtocolError`` (code in ``.code``);
these are the cases bleak has no class for. ``radio_errors`` wraps what bleak and the
codecs raise where a command's radio session begins; ``radio_lost`` is the one answer to
"did the radio go away?", whichever stack (Bumble, BlueZ) said so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)

from phoneagent.errors import EXIT_PAIRING_LOST, AgentError, AgentUsageError, UnreachableError
from protocol.errors import ProtocolError


class TransportConfigError(BleakError, AgentUsageError):
    """A transport configuration that names no usable transport. Never silently replaced."""


class TransportUnavailableError(TransportConfigError):
    """The configured transport exists on paper but not on this machine (no BlueZ)."""


class RadioLostError(BleakError, UnreachableError):
    """The radio went away or is not there yet: the air stopped, a dongle was pulled, the
    controller stopped answering. Nothing a person must fix: open it again, with back-off."""


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


# D-Bus answers meaning bluetoothd, the adapter or the bus went away, not a watch's answer.
_BLUEZ_GONE = frozenset(
    {
        "org.freedesktop.DBus.Error.ServiceUnknown",  # bluetoothd is not running
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",  # it stopped answering (restarting)
        "org.freedesktop.DBus.Error.Disconnected",  # the system bus itself
        "org.freedesktop.DBus.Error.UnknownObject",  # the adapter's object is gone
        "org.bluez.Error.NotReady",  # the adapter is powered off
    }
)
# Bluetooth unavailable for these reasons comes back by itself; a denial needs a person.
_COMES_BACK = frozenset(
    {
        BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
        BleakBluetoothNotAvailableReason.POWERED_OFF,
        BleakBluetoothNotAvailableReason.UNKNOWN,
    }
)


def _bumble_lost_types() -> tuple[type[BaseException], ...]:
    """Bumble's "transport lost" errors; only a loaded Bumble can raise them, so Bumble is
    not imported for this (on BlueZ it never is)."""
    common = sys.modules.get("bumble.transport.common")
    if common is None:
        return ()
    return (common.TransportLostError, common.TransportInitError)


def radio_lost(error: BaseException) -> bool:
    """Whether ``error`` says the radio went away (rather than a watch, a key or a bug):
    Bumble's HCI transport closed, BlueZ or the system bus gone, the adapter powered off,
    the air stopped. The daemon opens a new radio, with back-off, on any of them."""
    if isinstance(error, (RadioLostError, *_bumble_lost_types())):
        return True
    if isinstance(error, BleakBluetoothNotAvailableError):
        return error.reason in _COMES_BACK
    if isinstance(error, BleakDBusError):
        return error.dbus_error in _BLUEZ_GONE
    return isinstance(error, EOFError)  # dbus-fast: the bus closed under a pending call
