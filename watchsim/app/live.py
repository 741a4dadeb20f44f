"""Live SIG and Activity values from the model: what third-party apps see.

The history stream is the truth; these characteristics are for display, so each push
carries only the newest value. Pure encoding here; the watch app does the pushing.
Values of notify- or indicate-only characteristics nobody listens to are not encoded at
all (in a fleet no agent listens, and encoding them was a fifth of the watches' work);
readable ones (battery, activity) are kept current for reads.
"""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from protocol import uuids
from protocol.activity import ActivitySummary
from protocol.battery import BatteryLevel
from protocol.current_time import AdjustReason, CurrentTime, DateTime
from protocol.heart_rate import HeartRateMeasurement, rr_units
from protocol.metrics import Metric
from protocol.pulse_oximeter import (
    MeasurementStatus,
    PlxContinuousMeasurement,
    PlxSpotCheckMeasurement,
    SpO2PR,
)
from protocol.thermometer import IntermediateTemperature, TemperatureMeasurement, TemperatureType
from watchsim.model import Measurement, WatchState

# RR intervals that fit one Heart Rate Measurement at the default MTU of 23
# (flags, u8 heart rate, u16 energy, then 2 bytes per interval in 20 bytes).
MAX_RR_PER_NOTIFICATION: Final = 8
ENERGY_MAX_KJ: Final = 0xFFFF
# A settled Temperature Measurement is the mean of this many skin-temperature samples;
# every sample also goes out as an Intermediate Temperature.
SETTLED_SAMPLES: Final = 5
KJ_PER_KCAL: Final = 4.184
TEMPERATURE_TYPE: Final = TemperatureType.BODY
DEMO: Final = MeasurementStatus.DEMONSTRATION_DATA


@dataclass(frozen=True)
class Push:
    uuid: str
    value: bytes
    indicate: bool = False


def local_datetime(utc_seconds: float, utc_offset_s: int) -> datetime.datetime:
    zone = datetime.timezone(datetime.timedelta(seconds=utc_offset_s))
    return datetime.datetime.fromtimestamp(utc_seconds, zone)


def current_time(
    utc_seconds: float, utc_offset_s: int, reason: AdjustReason = AdjustReason.NONE
) -> bytes:
    return CurrentTime.from_datetime(local_datetime(utc_seconds, utc_offset_s), reason).encode()


def activity_summary(state: WatchState, utc_offset_s: int) -> bytes:
    return ActivitySummary(
        day=local_datetime(state.timestamp, utc_offset_s).date(),
        steps=state.steps_today,
        distance_m=int(state.distance_m_today),
        energy_kcal=_kcal(state),
    ).encode()


def _activity_fields(state: WatchState, utc_offset_s: int) -> tuple[int, int, int, int]:
    """What ``activity_summary`` encodes, the day as a number: compared each second, so
    that a summary is only made (a datetime, an encoding) when one of them changed."""
    day = int((state.timestamp + utc_offset_s) // 86_400)
    return day, state.steps_today, int(state.distance_m_today), _kcal(state)


def _kcal(state: WatchState) -> int:
    return min(0xFFFF, int(state.energy_kj_today / KJ_PER_KCAL))


class LiveValues:
    """Turns each model step into the notifications and indications it warrants."""

    def __init__(self) -> None:
        self._energy_reset_kj = 0.0
        self._battery: int | None = None
        self._activity: tuple[int, int, int, int] | None = None  # ``_activity_fields``
        self._contact: bool | None = None
        self._temperatures: deque[int] = deque(maxlen=SETTLED_SAMPLES)
        self._energy_kj = 0.0

    def reset_energy_expended(self) -> None:
        """Heart Rate Control Point: energy counts from zero again."""
        self._energy_reset_kj = self._energy_kj

    def battery(self, state: WatchState) -> bytes:
        return BatteryLevel(state.battery_percent).encode()

    def step(
        self,
        state: WatchState,
        measured: list[Measurement],
        utc_offset_s: int,
        listened: Callable[[str], bool],
    ) -> list[Push]:
        self._energy_kj = state.energy_kj_today
        if self._energy_kj < self._energy_reset_kj:  # the day counters rolled over
            self._energy_reset_kj = 0.0
        pushes: list[Push] = []
        newest = {m.metric: m for m in measured}
        heart = newest.get(Metric.HEART_RATE)
        if listened(uuids.HEART_RATE_MEASUREMENT) and (
            heart is not None or self._contact is not state.on_wrist
        ):
            pushes.append(self._heart_rate(state, heart))
        if (spo2 := newest.get(Metric.SPO2)) is not None:
            pushes.extend(self._oximetry(state, spo2, utc_offset_s, listened))
        for m in measured:
            if m.metric is Metric.SKIN_TEMPERATURE:
                pushes.extend(self._temperature(m, utc_offset_s, listened))
        if state.battery_percent != self._battery:
            self._battery = state.battery_percent
            pushes.append(Push(uuids.BATTERY_LEVEL, self.battery(state)))
        activity = _activity_fields(state, utc_offset_s)
        if activity != self._activity:
            self._activity = activity
            pushes.append(Push(uuids.ACTIVITY_SUMMARY, activity_summary(state, utc_offset_s)))
        return pushes

    def _heart_rate(self, state: WatchState, heart: Measurement | None) -> Push:
        self._contact = state.on_wrist
        energy = min(ENERGY_MAX_KJ, int(state.energy_kj_today - self._energy_reset_kj))
        rr = tuple(rr_units(ms / 1000) for ms in state.rr_intervals_ms[-MAX_RR_PER_NOTIFICATION:])
        value = HeartRateMeasurement(
            bpm=heart.raw if heart is not None and state.on_wrist else 0,
            sensor_contact=state.on_wrist,
            energy_expended_kj=energy,
            rr_intervals=rr if heart is not None and state.on_wrist else (),
        )
        return Push(uuids.HEART_RATE_MEASUREMENT, value.encode())

    def _oximetry(
        self,
        state: WatchState,
        spo2: Measurement,
        utc_offset_s: int,
        listened: Callable[[str], bool],
    ) -> list[Push]:
        continuous = listened(uuids.PLX_CONTINUOUS_MEASUREMENT)
        spot_check = listened(uuids.PLX_SPOT_CHECK_MEASUREMENT)
        if not (continuous or spot_check):
            return []
        reading = SpO2PR(Decimal(spo2.raw) / Metric.SPO2.scale, Decimal(max(0, state.heart_rate)))
        pushes = []
        if continuous:
            value = PlxContinuousMeasurement(reading, status=DEMO).encode()
            pushes.append(Push(uuids.PLX_CONTINUOUS_MEASUREMENT, value))
        if spot_check:
            stamp = DateTime.from_datetime(local_datetime(spo2.timestamp, utc_offset_s))
            value = PlxSpotCheckMeasurement(reading, timestamp=stamp, status=DEMO).encode()
            pushes.append(Push(uuids.PLX_SPOT_CHECK_MEASUREMENT, value, indicate=True))
        return pushes

    def _temperature(
        self, sample: Measurement, utc_offset_s: int, listened: Callable[[str], bool]
    ) -> list[Push]:
        scale = Metric.SKIN_TEMPERATURE.scale
        pushes = []
        if listened(uuids.INTERMEDIATE_TEMPERATURE):
            value = IntermediateTemperature(
                Decimal(sample.raw) / scale, temperature_type=TEMPERATURE_TYPE
            ).encode()
            pushes.append(Push(uuids.INTERMEDIATE_TEMPERATURE, value))
        self._temperatures.append(sample.raw)  # the settled mean counts every sample
        if len(self._temperatures) == SETTLED_SAMPLES:
            mean = round(sum(self._temperatures) / SETTLED_SAMPLES)
            self._temperatures.clear()
            if not listened(uuids.TEMPERATURE_MEASUREMENT):
                return pushes
            stamp = DateTime.from_datetime(local_datetime(sample.timestamp, utc_offset_s))
            measurement = TemperatureMeasurement(
                Decimal(mean) / scale, timestamp=stamp, temperature_type=TEMPERATURE_TYPE
            )
            pushes.append(Push(uuids.TEMPERATURE_MEASUREMENT, measurement.encode(), indicate=True))
        return pushes
