"""Settings service codecs: the user profile, the per-metric measurement table, control.

A metric switched off here is not measured at all (privacy: opting out stops collection,
not just upload), so the table is written whole and must name every metric once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Self

from protocol import uuids
from protocol._bytes import Reader, Writer, check_range, check_reserved_bits, enum_member
from protocol.errors import RangeError
from protocol.metrics import Metric
from protocol.profile import characteristic

USER_PROFILE = characteristic(uuids.USER_PROFILE).name
METRIC_SETTINGS = characteristic(uuids.METRIC_SETTINGS).name
SETTINGS_CONTROL = characteristic(uuids.SETTINGS_CONTROL).name

AGE_RANGE = (1, 120)
HEIGHT_CM_RANGE = (50, 272)
WEIGHT_DECIKG_RANGE = (20, 6350)  # 2.0 .. 635.0 kg
INTERVAL_S_RANGE = (1, 0xFFFF)
ENABLED_FLAG = 0x01


class Sex(enum.IntEnum):
    UNSPECIFIED = 0
    FEMALE = 1
    MALE = 2


@dataclass(frozen=True, slots=True)
class UserProfile:
    """Body data the watch's energy and distance estimates need; weight in 0.1 kg steps."""

    age_years: int
    sex: Sex
    height_cm: int
    weight_decikg: int

    @property
    def weight_kg(self) -> float:
        return self.weight_decikg / 10

    def _check(self) -> None:
        check_range(USER_PROFILE, "age", self.age_years, *AGE_RANGE)
        check_range(USER_PROFILE, "height", self.height_cm, *HEIGHT_CM_RANGE)
        check_range(USER_PROFILE, "weight (0.1 kg)", self.weight_decikg, *WEIGHT_DECIKG_RANGE)

    def encode(self) -> bytes:
        self._check()
        w = Writer(USER_PROFILE).u8(self.age_years, "age").u8(int(self.sex), "sex")
        return w.u16(self.height_cm, "height").u16(self.weight_decikg, "weight").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, USER_PROFILE)
        age = r.u8("age")
        sex = enum_member(Sex, r.u8("sex"), USER_PROFILE, "sex")
        profile = cls(age, sex, r.u16("height"), r.u16("weight"))
        r.end()
        profile._check()
        return profile


@dataclass(frozen=True, slots=True)
class MetricSetting:
    metric: Metric
    enabled: bool
    interval_s: int


@dataclass(frozen=True, slots=True)
class MetricSettings:
    """The whole table, one row per ``Metric`` in ascending metric order."""

    rows: tuple[MetricSetting, ...]

    def __getitem__(self, metric: Metric) -> MetricSetting:
        for row in self.rows:
            if row.metric is metric:
                return row
        raise KeyError(metric)

    def with_setting(self, metric: Metric, *, enabled: bool, interval_s: int) -> Self:
        """A copy with one metric's row replaced."""
        rows = tuple(
            replace(row, enabled=enabled, interval_s=interval_s) if row.metric is metric else row
            for row in self.rows
        )
        return replace(self, rows=rows)

    def _check(self) -> None:
        metrics = tuple(row.metric for row in self.rows)
        if metrics != tuple(Metric):
            raise RangeError(
                METRIC_SETTINGS,
                f"rows must cover {[m.value for m in Metric]} in order, got "
                f"{[int(m) for m in metrics]}",
            )
        for row in self.rows:
            check_range(
                METRIC_SETTINGS, f"{row.metric.key} interval", row.interval_s, *INTERVAL_S_RANGE
            )

    def encode(self) -> bytes:
        self._check()
        w = Writer(METRIC_SETTINGS)
        for row in self.rows:
            w.u8(int(row.metric), "metric").u8(ENABLED_FLAG if row.enabled else 0, "flags")
            w.u16(row.interval_s, "interval")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, METRIC_SETTINGS)
        rows = []
        while r.remaining:
            metric = enum_member(Metric, r.u8("metric"), METRIC_SETTINGS, "metric")
            flags = check_reserved_bits(
                METRIC_SETTINGS, f"{metric.key} flags", r.u8("flags"), ENABLED_FLAG
            )
            rows.append(MetricSetting(metric, bool(flags), r.u16("interval")))
        settings = cls(tuple(rows))
        settings._check()
        return settings


class SettingsOpcode(enum.IntEnum):
    REBOOT = 0x01  # restart the watch; history and settings survive
    FACTORY_RESET = 0x02  # wipe history, settings, profile and bonds, then reboot


@dataclass(frozen=True, slots=True)
class SettingsControl:
    opcode: SettingsOpcode

    def encode(self) -> bytes:
        return Writer(SETTINGS_CONTROL).u8(int(self.opcode), "opcode").getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data, SETTINGS_CONTROL)
        opcode = enum_member(SettingsOpcode, r.u8("opcode"), SETTINGS_CONTROL, "opcode")
        r.end()
        return cls(opcode)
