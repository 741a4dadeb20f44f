"""Heart Rate service 0x180D: Measurement 0x2A37, Body Sensor Location 0x2A38, Control Point 0x2A39.

RR intervals travel in units of 1/1024 s; ``HeartRateMeasurement.rr_intervals`` keeps that
raw unit (exact), ``rr_intervals_s`` converts to seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from protocol._bytes import ByteEnum, Reader, Writer, check_reserved_bits

RR_UNITS_PER_SECOND = 1024


class _Flag(enum.IntFlag):
    VALUE_U16 = 0x01
    CONTACT_DETECTED = 0x02
    CONTACT_SUPPORTED = 0x04
    ENERGY_EXPENDED = 0x08
    RR_INTERVALS = 0x10


_KNOWN_FLAGS = 0x1F


def rr_units(seconds: float) -> int:
    """Seconds to the nearest 1/1024 s unit."""
    return round(seconds * RR_UNITS_PER_SECOND)


@dataclass(frozen=True)
class HeartRateMeasurement:
    """Heart Rate Measurement 0x2A37.

    ``sensor_contact`` is ``None`` when the sensor cannot tell (feature not supported).
    The value goes out as u8 when it fits, as u16 otherwise; either is accepted.
    """

    bpm: int
    sensor_contact: bool | None = None
    energy_expended_kj: int | None = None
    rr_intervals: tuple[int, ...] = ()  # 1/1024 s each, oldest first

    CHARACTERISTIC: ClassVar[str] = "Heart Rate Measurement"

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        return tuple(rr / RR_UNITS_PER_SECOND for rr in self.rr_intervals)

    def encode(self) -> bytes:
        flags = _Flag(0)
        body = Writer(self.CHARACTERISTIC)
        if isinstance(self.bpm, int) and 0 <= self.bpm <= 0xFF:
            body.u8(self.bpm, "heart rate")
        else:
            flags |= _Flag.VALUE_U16
            body.u16(self.bpm, "heart rate")
        if self.sensor_contact is not None:
            flags |= _Flag.CONTACT_SUPPORTED
            if self.sensor_contact:
                flags |= _Flag.CONTACT_DETECTED
        if self.energy_expended_kj is not None:
            flags |= _Flag.ENERGY_EXPENDED
            body.u16(self.energy_expended_kj, "energy expended")
        if self.rr_intervals:
            flags |= _Flag.RR_INTERVALS
            for rr in self.rr_intervals:
                body.u16(rr, "RR interval")
        return bytes([flags]) + body.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        flags = check_reserved_bits(name, "flags", reader.u8("flags"), _KNOWN_FLAGS)
        bpm = reader.u16("heart rate") if flags & _Flag.VALUE_U16 else reader.u8("heart rate")
        contact = None
        if flags & _Flag.CONTACT_SUPPORTED:
            contact = bool(flags & _Flag.CONTACT_DETECTED)
        energy = reader.u16("energy expended") if flags & _Flag.ENERGY_EXPENDED else None
        rr_intervals: list[int] = []
        if flags & _Flag.RR_INTERVALS:
            while reader.remaining:
                rr_intervals.append(reader.u16("RR interval"))
        reader.end()
        return cls(bpm, contact, energy, tuple(rr_intervals))


class BodySensorLocation(ByteEnum, characteristic="Body Sensor Location", field="location"):
    """Body Sensor Location 0x2A38 (7-255 reserved)."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


class HeartRateControlPoint(ByteEnum, characteristic="Heart Rate Control Point", field="command"):
    """Heart Rate Control Point 0x2A39: the one defined command (others reserved)."""

    RESET_ENERGY_EXPENDED = 1


# The ATT error a server returns for a reserved control point value.
CONTROL_POINT_NOT_SUPPORTED = 0x80
