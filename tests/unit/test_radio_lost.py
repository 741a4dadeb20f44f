"""``radio_lost``: the one classification of "the radio went away" the daemon reopens on."""

from __future__ import annotations

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bumble.transport.common import TransportLostError, TransportSpecError

from phoneagent.transport import (
    ConnectTimeoutError,
    PairingLostError,
    RadioLostError,
    TransportConfigError,
    radio_lost,
)

Reason = BleakBluetoothNotAvailableReason


@pytest.mark.parametrize(
    "error",
    [
        RadioLostError("the air stopped"),
        TransportLostError("transport lost"),
        BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["bluetoothd gone"]),
        BleakDBusError("org.freedesktop.DBus.Error.NoReply", []),
        BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]),
        BleakBluetoothNotAvailableError("adapter off", Reason.POWERED_OFF),
        EOFError(),
    ],
)
def test_the_radio_went_away(error: BaseException) -> None:
    assert radio_lost(error)


@pytest.mark.parametrize(
    "error",
    [
        TransportConfigError("unknown transport"),
        TransportSpecError("bad spec"),
        PairingLostError("F0:00:00:00:00:01", "keys differ"),
        ConnectTimeoutError("no advertisement"),
        BleakGATTProtocolError(BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION),
        BleakDBusError("org.bluez.Error.AuthenticationFailed", []),
        BleakBluetoothNotAvailableError("denied", Reason.DENIED_BY_USER),
        BleakError("F0:00:00:00:00:01 disconnected"),
        RuntimeError("a bug"),
        OSError(28, "No space left on device"),
    ],
)
def test_not_the_radio(error: BaseException) -> None:
    assert not radio_lost(error)
