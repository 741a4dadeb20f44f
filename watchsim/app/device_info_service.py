"""The Device Information service: who made the watch, its model, firmware and serial.

Constant for a watch's whole life except the serial, which is drawn once and kept in
``<state_dir>/serial`` so the agent sees the same device across restarts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

from protocol import uuids
from protocol.device_info import DeviceInfoString, PnpId, VendorIdSource
from watchsim.peripheral.port import Peripheral

SERIAL_FILE: Final = "serial"
MANUFACTURER: Final = "watchsync project"
MODEL_NUMBER: Final = "WatchSim 1"
FIRMWARE: Final = "1.0.0"
# pid.codes (USB vendor 0x1209) test product id: free to use, claims no real vendor.
PNP_ID: Final = PnpId(VendorIdSource.USB_IMPLEMENTERS_FORUM, 0x1209, 0x0001, 0x0100)


def serial_number(state_dir: Path) -> str:
    """The watch's serial, made on first use and kept in the state dir."""
    path = state_dir / SERIAL_FILE
    if not path.exists():
        path.write_text(os.urandom(6).hex().upper())
    return path.read_text().strip()


def constant(value: bytes) -> Callable[[], bytes]:
    """A read handler for a value that never changes."""
    return lambda: value


def bind_device_info(peripheral: Peripheral, state_dir: Path) -> None:
    """Serve the Device Information characteristics of one peripheral."""
    strings = {
        uuids.MANUFACTURER_NAME: MANUFACTURER,
        uuids.MODEL_NUMBER: MODEL_NUMBER,
        uuids.SERIAL_NUMBER: serial_number(state_dir),
        uuids.HARDWARE_REVISION: "virtual",
        uuids.FIRMWARE_REVISION: FIRMWARE,
        uuids.SOFTWARE_REVISION: FIRMWARE,
    }
    for uuid, text in strings.items():
        peripheral.set_read_handler(uuid, constant(DeviceInfoString(text).encode()))
    peripheral.set_read_handler(uuids.PNP_ID, constant(PNP_ID.encode()))
