"""The Heart Rate service's reads and writes: where the sensor sits, and the control point
that resets Energy Expended. Its measurements are pushed from the live values (``live``).
"""

from __future__ import annotations

from protocol import uuids
from protocol.heart_rate import (
    CONTROL_POINT_NOT_SUPPORTED,
    BodySensorLocation,
    HeartRateControlPoint,
)
from watchsim.app.device_info_service import constant
from watchsim.app.live import LiveValues
from watchsim.peripheral.port import AttError, Peer, Peripheral


class HeartRateService:
    """Binds the Heart Rate reads and control point of one peripheral to the live values."""

    def __init__(self, peripheral: Peripheral, live: LiveValues) -> None:
        self._live = live
        peripheral.set_read_handler(
            uuids.BODY_SENSOR_LOCATION, constant(BodySensorLocation.WRIST.encode())
        )
        peripheral.set_write_handler(uuids.HEART_RATE_CONTROL_POINT, self._on_control)

    async def _on_control(self, _peer: Peer, value: bytes) -> None:
        try:
            HeartRateControlPoint.decode(value)
        except ValueError:
            raise AttError(
                CONTROL_POINT_NOT_SUPPORTED, "control point value not supported"
            ) from None
        self._live.reset_energy_expended()
