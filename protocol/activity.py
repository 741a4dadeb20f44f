"""Activity service codec: today's totals, notified whenever they change.

The summary names the watch-local date it covers, so an agent that connects just after
midnight can tell yesterday's final totals from today's first ones.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Self

from protocol import uuids
from protocol._bytes import Reader, Writer
from protocol.errors import RangeError
from protocol.profile import characteristic

ACTIVITY_SUMMARY = characteristic(uuids.ACTIVITY_SUMMARY).name


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    """Totals since local midnight of ``day`` (the watch's local calendar date)."""

    day: datetime.date
    steps: int
    distance_m: int
    energy_kcal: int

    def encode(self) -> bytes:
        w = Writer(ACTIVITY_SUMMARY).u16(self.day.year, "year")
        w.u8(self.day.month, "month").u8(self.day.day, "day")
        w.u32(self.steps, "steps").u32(self.distance_m, "distance")
        return w.u16(self.energy_kcal, "energy").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, ACTIVITY_SUMMARY)
        year, month, day = r.u16("year"), r.u8("month"), r.u8("day")
        try:
            date = datetime.date(year, month, day)
        except ValueError:
            raise RangeError(ACTIVITY_SUMMARY, f"no date {year}-{month}-{day}") from None
        summary = cls(date, r.u32("steps"), r.u32("distance"), r.u16("energy"))
        r.end()
        return summary
