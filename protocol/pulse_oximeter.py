"""Pulse Oximeter service 0x1822: PLX Features 0x2A60, Continuous 0x2A5F, Spot-check 0x2A5E.

SpO2 (%) and pulse rate (bpm) are SFLOATs. Flags are not fields of the dataclasses: an
optional part is present on the wire exactly when its field is not ``None``. The
simulator sets ``MeasurementStatus.DEMONSTRATION_DATA`` on what it sends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from protocol._bytes import Reader, Writer, check_reserved_bits
from protocol.current_time import DateTime
from protocol.errors import RangeError
from protocol.ieee11073 import SFLOAT, Value, decode_sfloat, encode_sfloat


class PlxFeature(enum.IntFlag):
    """PLX Features supported-features bits (8-15 reserved)."""

    NONE = 0
    MEASUREMENT_STATUS_SUPPORT = 0x0001  # presence of the status-support field
    DEVICE_SENSOR_STATUS_SUPPORT = 0x0002  # presence of the device-status-support field
    SPOT_CHECK_STORAGE = 0x0004
    SPOT_CHECK_TIMESTAMP = 0x0008
    SPO2PR_FAST = 0x0010
    SPO2PR_SLOW = 0x0020
    PULSE_AMPLITUDE_INDEX = 0x0040
    MULTIPLE_BONDS = 0x0080


class MeasurementStatus(enum.IntFlag):
    """Measurement Status (u16; bits 0-4 reserved)."""

    NONE = 0
    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DEMONSTRATION_DATA = 1 << 10
    TESTING_DATA = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT = 1 << 14
    INVALID_MEASUREMENT = 1 << 15


class DeviceSensorStatus(enum.IntFlag):
    """Device and Sensor Status (u24; bits 16-23 reserved)."""

    NONE = 0
    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY = 1 << 2
    INADEQUATE_SIGNAL = 1 << 3
    POOR_SIGNAL = 1 << 4
    LOW_PERFUSION = 1 << 5
    ERRATIC_SIGNAL = 1 << 6
    NONPULSATILE_SIGNAL = 1 << 7
    QUESTIONABLE_PULSE = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


_FEATURE_BITS = 0x00FF
_PRESENCE_BITS = PlxFeature.MEASUREMENT_STATUS_SUPPORT | PlxFeature.DEVICE_SENSOR_STATUS_SUPPORT
_STATUS_BITS = 0xFFE0
_DEVICE_STATUS_BITS = 0x00FFFF
_MEASUREMENT_FLAG_BITS = 0x1F  # both measurements define flag bits 0-4


def _write_status(writer: Writer, status: MeasurementStatus, field: str) -> None:
    check_reserved_bits(writer.characteristic, field, status, _STATUS_BITS)
    writer.u16(status, field)


def _read_status(reader: Reader, field: str) -> MeasurementStatus:
    raw = reader.u16(field)
    return MeasurementStatus(check_reserved_bits(reader.characteristic, field, raw, _STATUS_BITS))


def _write_device_status(writer: Writer, status: DeviceSensorStatus, field: str) -> None:
    check_reserved_bits(writer.characteristic, field, status, _DEVICE_STATUS_BITS)
    writer.u24(status, field)


def _read_device_status(reader: Reader, field: str) -> DeviceSensorStatus:
    raw = check_reserved_bits(reader.characteristic, field, reader.u24(field), _DEVICE_STATUS_BITS)
    return DeviceSensorStatus(raw)


def _write_sfloat(writer: Writer, value: Value, field: str) -> None:
    writer.raw(encode_sfloat(value, writer.characteristic, field))


def _read_sfloat(reader: Reader, field: str) -> Value:
    return decode_sfloat(reader.take(SFLOAT.size, field), reader.characteristic, field)


_Tail = tuple[MeasurementStatus | None, DeviceSensorStatus | None, Value | None]


def _write_tail(writer: Writer, tail: _Tail, bits: tuple[int, int, int]) -> int:
    """Status, device status and pulse amplitude index (common to both measurements).

    ``bits`` are the flag bits announcing each; returns the flag bits of those present.
    """
    status, device, pai = tail
    flags = 0
    if status is not None:
        flags |= bits[0]
        _write_status(writer, status, "measurement status")
    if device is not None:
        flags |= bits[1]
        _write_device_status(writer, device, "device and sensor status")
    if pai is not None:
        flags |= bits[2]
        _write_sfloat(writer, pai, "pulse amplitude index")
    return flags


def _read_tail(reader: Reader, flags: int, bits: tuple[int, int, int]) -> _Tail:
    status = _read_status(reader, "measurement status") if flags & bits[0] else None
    device = _read_device_status(reader, "device and sensor status") if flags & bits[1] else None
    pai = _read_sfloat(reader, "pulse amplitude index") if flags & bits[2] else None
    return status, device, pai


@dataclass(frozen=True)
class PlxFeatures:
    """PLX Features 0x2A60. ``features`` holds every bit except the two presence bits,
    which follow ``measurement_status_support`` / ``device_status_support``.
    """

    features: PlxFeature = PlxFeature.NONE
    measurement_status_support: MeasurementStatus | None = None
    device_status_support: DeviceSensorStatus | None = None

    CHARACTERISTIC: ClassVar[str] = "PLX Features"

    def encode(self) -> bytes:
        name = self.CHARACTERISTIC
        features = check_reserved_bits(name, "supported features", self.features, _FEATURE_BITS)
        if features & _PRESENCE_BITS:
            raise RangeError(name, "presence bits 0-1 follow the optional fields; leave them out")
        writer = Writer(name)
        if self.measurement_status_support is not None:
            features |= PlxFeature.MEASUREMENT_STATUS_SUPPORT
        if self.device_status_support is not None:
            features |= PlxFeature.DEVICE_SENSOR_STATUS_SUPPORT
        writer.u16(features, "supported features")
        if self.measurement_status_support is not None:
            _write_status(writer, self.measurement_status_support, "measurement status support")
        if self.device_status_support is not None:
            _write_device_status(writer, self.device_status_support, "device status support")
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        raw = reader.u16("supported features")
        features = PlxFeature(check_reserved_bits(name, "supported features", raw, _FEATURE_BITS))
        status = None
        if features & PlxFeature.MEASUREMENT_STATUS_SUPPORT:
            status = _read_status(reader, "measurement status support")
        device = None
        if features & PlxFeature.DEVICE_SENSOR_STATUS_SUPPORT:
            device = _read_device_status(reader, "device status support")
        reader.end()
        return cls(features & ~_PRESENCE_BITS, status, device)


@dataclass(frozen=True)
class SpO2PR:
    """One SpO2 (%) and pulse rate (bpm) pair, both SFLOAT."""

    spo2: Value
    pulse_rate: Value

    def write(self, writer: Writer, label: str) -> None:
        _write_sfloat(writer, self.spo2, f"{label} SpO2")
        _write_sfloat(writer, self.pulse_rate, f"{label} pulse rate")

    @classmethod
    def read(cls, reader: Reader, label: str) -> Self:
        return cls(
            _read_sfloat(reader, f"{label} SpO2"), _read_sfloat(reader, f"{label} pulse rate")
        )


class _ContinuousFlag(enum.IntFlag):
    FAST = 0x01
    SLOW = 0x02
    STATUS = 0x04
    DEVICE_STATUS = 0x08
    PULSE_AMPLITUDE_INDEX = 0x10


_CONTINUOUS_TAIL_BITS = (
    _ContinuousFlag.STATUS,
    _ContinuousFlag.DEVICE_STATUS,
    _ContinuousFlag.PULSE_AMPLITUDE_INDEX,
)


@dataclass(frozen=True)
class PlxContinuousMeasurement:
    """PLX Continuous Measurement 0x2A5F: normal SpO2/PR, then optional parts in order."""

    normal: SpO2PR
    fast: SpO2PR | None = None
    slow: SpO2PR | None = None
    status: MeasurementStatus | None = None
    device_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: Value | None = None  # percent

    CHARACTERISTIC: ClassVar[str] = "PLX Continuous Measurement"

    def encode(self) -> bytes:
        flags = _ContinuousFlag(0)
        body = Writer(self.CHARACTERISTIC)
        self.normal.write(body, "normal")
        if self.fast is not None:
            flags |= _ContinuousFlag.FAST
            self.fast.write(body, "fast")
        if self.slow is not None:
            flags |= _ContinuousFlag.SLOW
            self.slow.write(body, "slow")
        tail = (self.status, self.device_status, self.pulse_amplitude_index)
        flags |= _write_tail(body, tail, _CONTINUOUS_TAIL_BITS)
        return bytes([flags]) + body.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        flags = check_reserved_bits(name, "flags", reader.u8("flags"), _MEASUREMENT_FLAG_BITS)
        normal = SpO2PR.read(reader, "normal")
        fast = SpO2PR.read(reader, "fast") if flags & _ContinuousFlag.FAST else None
        slow = SpO2PR.read(reader, "slow") if flags & _ContinuousFlag.SLOW else None
        status, device, pai = _read_tail(reader, flags, _CONTINUOUS_TAIL_BITS)
        reader.end()
        return cls(normal, fast, slow, status, device, pai)


class _SpotCheckFlag(enum.IntFlag):
    TIMESTAMP = 0x01
    STATUS = 0x02
    DEVICE_STATUS = 0x04
    PULSE_AMPLITUDE_INDEX = 0x08
    DEVICE_CLOCK_NOT_SET = 0x10


_SPOT_CHECK_TAIL_BITS = (
    _SpotCheckFlag.STATUS,
    _SpotCheckFlag.DEVICE_STATUS,
    _SpotCheckFlag.PULSE_AMPLITUDE_INDEX,
)


@dataclass(frozen=True)
class PlxSpotCheckMeasurement:
    """PLX Spot-check Measurement 0x2A5E: SpO2/PR, then optional parts in order."""

    reading: SpO2PR
    timestamp: DateTime | None = None
    status: MeasurementStatus | None = None
    device_status: DeviceSensorStatus | None = None
    pulse_amplitude_index: Value | None = None  # percent
    device_clock_not_set: bool = False

    CHARACTERISTIC: ClassVar[str] = "PLX Spot-check Measurement"

    def encode(self) -> bytes:
        flags = (
            _SpotCheckFlag.DEVICE_CLOCK_NOT_SET if self.device_clock_not_set else _SpotCheckFlag(0)
        )
        body = Writer(self.CHARACTERISTIC)
        self.reading.write(body, "spot-check")
        if self.timestamp is not None:
            flags |= _SpotCheckFlag.TIMESTAMP
            self.timestamp.write(body)
        tail = (self.status, self.device_status, self.pulse_amplitude_index)
        flags |= _write_tail(body, tail, _SPOT_CHECK_TAIL_BITS)
        return bytes([flags]) + body.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        flags = check_reserved_bits(name, "flags", reader.u8("flags"), _MEASUREMENT_FLAG_BITS)
        reading = SpO2PR.read(reader, "spot-check")
        timestamp = DateTime.read(reader) if flags & _SpotCheckFlag.TIMESTAMP else None
        status, device, pai = _read_tail(reader, flags, _SPOT_CHECK_TAIL_BITS)
        reader.end()
        clock_not_set = bool(flags & _SpotCheckFlag.DEVICE_CLOCK_NOT_SET)
        return cls(reading, timestamp, status, device, pai, clock_not_set)
