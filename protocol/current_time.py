"""Current Time service 0x1805: Current Time 0x2A2B, Local Time Information 0x2A0F.

Also home of the SIG Date Time (0x2A08) that thermometer and pulse-oximeter records
embed. SIG times are local wall-clock times; Local Time Information says how far that
wall clock is from UTC, so the pair converts to an aware ``datetime``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import ClassVar, Self

from protocol._bytes import Reader, Writer, check_range, check_reserved_bits, enum_member
from protocol.errors import RangeError

_QUARTER_HOUR = timedelta(minutes=15)
# CTS's own ATT application error: the server ignored a Current Time write (its time
# source is better than the client's; a simulated watch's timeline is its own).
DATA_FIELD_IGNORED = 0x80


@dataclass(frozen=True)
class DateTime:
    """Date Time: 7 bytes (year u16, month, day, hours, minutes, seconds).

    Year, month and day 0 mean "not known"; such a value has no ``datetime``.
    """

    year: int = 0
    month: int = 0
    day: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    SIZE: ClassVar[int] = 7
    CHARACTERISTIC: ClassVar[str] = "Date Time"

    def check(self, characteristic: str) -> None:
        """``RangeError`` naming ``characteristic`` if a field is outside its SIG range."""
        if self.year != 0:
            check_range(characteristic, "year", self.year, 1582, 9999)
        check_range(characteristic, "month", self.month, 0, 12)
        check_range(characteristic, "day", self.day, 0, 31)
        check_range(characteristic, "hours", self.hours, 0, 23)
        check_range(characteristic, "minutes", self.minutes, 0, 59)
        check_range(characteristic, "seconds", self.seconds, 0, 59)

    def write(self, writer: Writer) -> None:
        """Append to a larger record; errors name the writer's characteristic."""
        self.check(writer.characteristic)
        writer.u16(self.year).u8(self.month).u8(self.day)
        writer.u8(self.hours).u8(self.minutes).u8(self.seconds)

    @classmethod
    def read(cls, reader: Reader) -> Self:
        """Consume 7 bytes of a larger record; errors name the reader's characteristic."""
        value = cls(*(reader.uint(size, "Date Time") for size in (2, 1, 1, 1, 1, 1)))
        value.check(reader.characteristic)
        return value

    def encode(self) -> bytes:
        writer = Writer(self.CHARACTERISTIC)
        self.write(writer)
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.CHARACTERISTIC)
        value = cls.read(reader)
        reader.end()
        return value

    @classmethod
    def from_datetime(cls, moment: datetime) -> Self:
        """Wall-clock fields of ``moment``; sub-second part and time zone are dropped."""
        return cls(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)

    def to_datetime(self, tz: tzinfo | None = None) -> datetime:
        """``RangeError`` if a field is unknown (0) or the date does not exist (Feb 30)."""
        if 0 in (self.year, self.month, self.day):
            raise RangeError(self.CHARACTERISTIC, f"{self} has unknown fields")
        try:
            return datetime(
                self.year, self.month, self.day, self.hours, self.minutes, self.seconds, tzinfo=tz
            )
        except ValueError as exc:
            raise RangeError(self.CHARACTERISTIC, f"{self} is not a date: {exc}") from None


class DayOfWeek(enum.IntEnum):
    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class AdjustReason(enum.IntFlag):
    """Why the watch's clock last changed (bits 4-7 reserved)."""

    NONE = 0
    MANUAL_TIME_UPDATE = 0x01
    EXTERNAL_REFERENCE_TIME_UPDATE = 0x02
    CHANGE_OF_TIME_ZONE = 0x04
    CHANGE_OF_DST = 0x08


_ADJUST_REASON_BITS = 0x0F


@dataclass(frozen=True)
class CurrentTime:
    """Current Time 0x2A2B: Exact Time 256 (Day Date Time + 1/256 s) and adjust reason."""

    date_time: DateTime
    day_of_week: DayOfWeek = DayOfWeek.UNKNOWN
    fractions256: int = 0  # 1/256 s
    adjust_reason: AdjustReason = AdjustReason.NONE

    CHARACTERISTIC: ClassVar[str] = "Current Time"

    def encode(self) -> bytes:
        writer = Writer(self.CHARACTERISTIC)
        self.date_time.write(writer)
        enum_member(DayOfWeek, self.day_of_week, self.CHARACTERISTIC, "day of week")
        writer.u8(self.day_of_week, "day of week")
        writer.u8(self.fractions256, "fractions256")
        check_reserved_bits(
            self.CHARACTERISTIC, "adjust reason", self.adjust_reason, _ADJUST_REASON_BITS
        )
        return writer.u8(self.adjust_reason, "adjust reason").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        date_time = DateTime.read(reader)
        day_of_week = enum_member(DayOfWeek, reader.u8("day of week"), name, "day of week")
        fractions = reader.u8("fractions256")
        reason = reader.u8("adjust reason")
        reader.end()
        check_reserved_bits(name, "adjust reason", reason, _ADJUST_REASON_BITS)
        return cls(date_time, day_of_week, fractions, AdjustReason(reason))

    @classmethod
    def from_datetime(
        cls, moment: datetime, adjust_reason: AdjustReason = AdjustReason.NONE
    ) -> Self:
        """Local wall-clock time of ``moment``, microseconds truncated to 1/256 s."""
        return cls(
            DateTime.from_datetime(moment),
            DayOfWeek(moment.isoweekday()),
            moment.microsecond * 256 // 1_000_000,
            adjust_reason,
        )

    def to_datetime(self, tz: tzinfo | None = None) -> datetime:
        """The day of week is not cross-checked: the date alone decides."""
        base = self.date_time.to_datetime(tz)
        return base.replace(microsecond=self.fractions256 * 1_000_000 // 256)


class DstOffset(enum.IntEnum):
    STANDARD_TIME = 0
    HALF_AN_HOUR_DAYLIGHT_TIME = 2
    DAYLIGHT_TIME = 4
    DOUBLE_DAYLIGHT_TIME = 8
    UNKNOWN = 255

    @property
    def offset(self) -> timedelta | None:
        """Amount added to standard time; ``None`` if unknown."""
        if self is DstOffset.UNKNOWN:
            return None
        return _QUARTER_HOUR * int(self.value)


_TIME_ZONE_UNKNOWN = -128


@dataclass(frozen=True)
class LocalTimeInformation:
    """Local Time Information 0x2A0F: standard offset from UTC in 15 min steps, and DST."""

    time_zone: int | None  # quarter hours, -48..+56; None = unknown
    dst_offset: DstOffset = DstOffset.UNKNOWN

    CHARACTERISTIC: ClassVar[str] = "Local Time Information"

    def encode(self) -> bytes:
        name = self.CHARACTERISTIC
        writer = Writer(name)
        if self.time_zone is None:
            writer.s8(_TIME_ZONE_UNKNOWN, "time zone")
        else:
            writer.s8(check_range(name, "time zone", self.time_zone, -48, 56), "time zone")
        enum_member(DstOffset, self.dst_offset, name, "DST offset")
        return writer.u8(self.dst_offset, "DST offset").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        zone = reader.s8("time zone")
        dst = enum_member(DstOffset, reader.u8("DST offset"), name, "DST offset")
        reader.end()
        if zone == _TIME_ZONE_UNKNOWN:
            return cls(None, dst)
        return cls(check_range(name, "time zone", zone, -48, 56), dst)

    @classmethod
    def from_datetime(cls, moment: datetime) -> Self:
        """From an aware ``datetime`` (e.g. with ``zoneinfo``): its UTC offset and DST."""
        name = cls.CHARACTERISTIC
        utc_offset, dst = moment.utcoffset(), moment.dst()
        if utc_offset is None:
            raise RangeError(name, "a naive datetime has no UTC offset")
        dst_code = DstOffset.UNKNOWN if dst is None else _dst_code(dst, name)
        standard = utc_offset - (dst or timedelta(0))
        if standard % _QUARTER_HOUR:
            raise RangeError(name, f"UTC offset {standard} is not a whole number of 15 minutes")
        return cls(check_range(name, "time zone", standard // _QUARTER_HOUR, -48, 56), dst_code)

    def tzinfo(self) -> timezone | None:
        """Fixed-offset zone of the watch's wall clock; ``None`` while anything is unknown."""
        dst = self.dst_offset.offset
        if self.time_zone is None or dst is None:
            return None
        return timezone(_QUARTER_HOUR * self.time_zone + dst)


def _dst_code(dst: timedelta, characteristic: str) -> DstOffset:
    quarters, rest = divmod(dst, _QUARTER_HOUR)
    known = {code.value for code in DstOffset if code is not DstOffset.UNKNOWN}
    if rest or quarters not in known:
        raise RangeError(characteristic, f"DST offset {dst} has no code")
    return DstOffset(quarters)
