"""Health Thermometer service 0x1809: Temperature Measurement 0x2A1C, Temperature Type
0x2A1D and Intermediate Temperature 0x2A1E (same layout as the measurement).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from protocol._bytes import ByteEnum, Reader, Writer, check_reserved_bits, enum_member
from protocol.current_time import DateTime
from protocol.ieee11073 import FLOAT, Value, decode_float, encode_float


class TemperatureType(ByteEnum, characteristic="Temperature Type", field="type"):
    """Temperature Type 0x2A1D (0 and 10-255 reserved)."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


class _Flag(enum.IntFlag):
    FAHRENHEIT = 0x01
    TIMESTAMP = 0x02
    TYPE = 0x04


_KNOWN_FLAGS = 0x07


@dataclass(frozen=True)
class TemperatureMeasurement:
    """Temperature Measurement 0x2A1C: flags, FLOAT value, optional Date Time and type."""

    value: Value  # in degrees Celsius, or Fahrenheit if ``fahrenheit``
    fahrenheit: bool = False
    timestamp: DateTime | None = None
    temperature_type: TemperatureType | None = None

    CHARACTERISTIC: ClassVar[str] = "Temperature Measurement"

    def encode(self) -> bytes:
        name = self.CHARACTERISTIC
        flags = _Flag.FAHRENHEIT if self.fahrenheit else _Flag(0)
        body = Writer(name).raw(encode_float(self.value, name, "temperature"))
        if self.timestamp is not None:
            flags |= _Flag.TIMESTAMP
            self.timestamp.write(body)
        if self.temperature_type is not None:
            flags |= _Flag.TYPE
            kind = enum_member(TemperatureType, self.temperature_type, name, "temperature type")
            body.u8(kind, "temperature type")
        return bytes([flags]) + body.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        flags = check_reserved_bits(name, "flags", reader.u8("flags"), _KNOWN_FLAGS)
        value = decode_float(reader.take(FLOAT.size, "temperature"), name, "temperature")
        timestamp = DateTime.read(reader) if flags & _Flag.TIMESTAMP else None
        kind = None
        if flags & _Flag.TYPE:
            kind = enum_member(TemperatureType, reader.u8("type"), name, "temperature type")
        reader.end()
        return cls(value, bool(flags & _Flag.FAHRENHEIT), timestamp, kind)


@dataclass(frozen=True)
class IntermediateTemperature(TemperatureMeasurement):
    """Intermediate Temperature 0x2A1E: readings while a measurement settles."""

    CHARACTERISTIC: ClassVar[str] = "Intermediate Temperature"
