"""Battery service 0x180F: Battery Level 0x2A19, one byte of percent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from protocol._bytes import Reader, Writer, check_range


@dataclass(frozen=True)
class BatteryLevel:
    """Battery Level 0x2A19: 0..100 %; 101-255 are not levels and are refused."""

    percent: int

    CHARACTERISTIC: ClassVar[str] = "Battery Level"

    def encode(self) -> bytes:
        check_range(self.CHARACTERISTIC, "level", self.percent, 0, 100)
        return Writer(self.CHARACTERISTIC).u8(self.percent, "level").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.CHARACTERISTIC)
        percent = reader.u8("level")
        reader.end()
        return cls(check_range(cls.CHARACTERISTIC, "level", percent, 0, 100))
