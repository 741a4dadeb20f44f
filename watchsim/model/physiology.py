"""The wearer's body and the watch's sensors, stepped one simulated second at a time.

Everything is a pure function of (seed, scenario, start time, the calls made on the
model): the model never reads the wall clock, so a live watch and a ``--backfill 7d``
produce the same samples, however the simulated interval is chopped into calls.

Time is split into spans between "change points" (segment boundaries, scripted events,
local midnight, off-wrist/charge ends, the battery running out). Inside a span every
parameter is constant, so the per-second loop only integrates heart rate and counters;
the rest is done once per span. That keeps a week of 1 Hz heart rate to a few seconds.
"""

from __future__ import annotations

import enum
import math
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from protocol.metrics import Metric
from protocol.settings import Sex
from watchsim.model.scenario import Activity, Anchor, EventKind, Scenario, ScriptedEvent
from watchsim.model.user import Wearer

DAY = 86_400
_FOREVER = 1 << 62
_HR, _STEPS, _SPO2, _TEMP = (
    Metric.HEART_RATE,
    Metric.STEPS,
    Metric.SPO2,
    Metric.SKIN_TEMPERATURE,
)

DEFAULT_INTERVALS: dict[Metric, int] = {_HR: 1, _STEPS: 60, _SPO2: 300, _TEMP: 60}

# Heart-rate kinetics: faster on than off (time constants in seconds), cardiac drift
# during long hard exertion, and a small AR(1) measurement/physiological noise.
_K_UP = 1.0 - math.exp(-1.0 / 25.0)
_K_DOWN = 1.0 - math.exp(-1.0 / 80.0)
_FATIGUE_DECAY = math.exp(-1.0 / 900.0)
_FATIGUE_MAX = 20.0
_NOISE_KEEP, _NOISE_SD = 0.9, 0.5
_HR_FLOOR = 35.0
_TEMP_TAU = 600.0
_KJ_PER_KCAL = 4.184


class _Kind(NamedTuple):
    """Per-activity physiology. ``hr_frac`` is the fraction of heart-rate reserve."""

    hr_frac: float
    cadence: tuple[float, float]  # steps/min drawn uniformly per segment
    met: float
    hrv_cv: float  # beat-to-beat RR variability (coefficient of variation)
    temp_effect: float  # degC added to the circadian wrist temperature
    spo2_offset: float


_KINDS: dict[Activity, _Kind] = {
    Activity.SLEEP: _Kind(0.0, (0, 0), 0.95, 0.065, 0.6, -0.8),
    Activity.REST: _Kind(0.05, (0, 0), 1.3, 0.045, 0.0, 0.0),
    Activity.WALK: _Kind(0.30, (100, 115), 3.5, 0.025, -0.2, 0.0),
    Activity.RUN: _Kind(0.70, (160, 175), 9.8, 0.012, 0.5, -0.7),
    Activity.WORKOUT: _Kind(0.80, (0, 0), 7.0, 0.015, 0.4, -0.5),
}
_SLEEP_HR_FACTOR = 0.88  # sleeping heart rate relative to the resting one


class RadioState(enum.Enum):
    OFF = "off"
    ADVERTISING = "advertising"
    CONNECTED = "connected"


# Battery drain in percent per hour: a few days on a charge at the default settings.
_DRAIN_BASE = 0.35
_DRAIN_RADIO = {RadioState.OFF: 0.0, RadioState.ADVERTISING: 0.1, RadioState.CONNECTED: 0.2}
_DRAIN_ENABLED = {_HR: 0.25, _STEPS: 0.05, _SPO2: 0.0, _TEMP: 0.0}  # sensor kept powered
_DRAIN_PER_SAMPLE = {_HR: 0.3 / 3600, _STEPS: 0.0, _SPO2: 0.01, _TEMP: 0.0005}
_CHARGE_PER_S = 1.2 / 60


class Measurement(NamedTuple):
    """A measured value before the history gives it a sequence number."""

    timestamp: int
    metric: Metric
    raw: int

    @property
    def value(self) -> float:
        return self.raw / self.metric.scale


@dataclass(frozen=True, slots=True)
class MetricSettings:
    enabled: bool = True
    interval_s: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.interval_s <= DAY:
            raise ValueError(f"interval {self.interval_s} s is outside 1..{DAY}")


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """Something the watch app must act on or show (scripted, or the battery dying)."""

    timestamp: int
    kind: EventKind
    duration_s: int = 0
    level: int | None = None


@dataclass(frozen=True, slots=True)
class WatchState:
    """A snapshot for the live SIG characteristics and the Activity service."""

    timestamp: int
    activity: Activity
    on_wrist: bool
    charging: bool
    powered: bool  # False while the battery is empty
    heart_rate: int  # what the sensor would read now (valid while on-wrist)
    rr_intervals_ms: tuple[int, ...]  # beats since the previous heart-rate sample
    steps_today: int
    distance_m_today: float
    energy_kj_today: float
    battery_percent: int
    last: dict[Metric, Measurement]  # newest sample of each metric


class WatchModel:
    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        start: int,
        utc_offset_s: int = 0,
        user: Wearer | None = None,
        battery_percent: float = 100.0,
        radio: RadioState = RadioState.ADVERTISING,
    ) -> None:
        self._scenario = scenario
        self._user = user or Wearer()
        self._utc_offset = utc_offset_s
        self._radio = radio
        self._settings = {m: MetricSettings(True, iv) for m, iv in DEFAULT_INTERVALS.items()}
        # One stream per concern, so that switching one metric off leaves the others as they were.
        rngs = {
            n: random.Random(f"{seed}:{n}") for n in ("hr", "rr", "steps", "spo2", "dip", "temp")
        }
        self._rng_hr, self._rng_rr, self._rng_steps = rngs["hr"], rngs["rr"], rngs["steps"]
        self._rng_spo2, self._rng_dip, self._rng_temp = rngs["spo2"], rngs["dip"], rngs["temp"]
        self._spo2_base = 96.5 + 2.0 * self._rng_spo2.random()

        self._ends = list(accumulate(s.duration_s for s in scenario.segments))
        self._event_ats = [e.at_s for e in scenario.events]
        self._zero = start
        if scenario.anchor is Anchor.LOCAL_MIDNIGHT:
            self._zero = start - (start + utc_offset_s) % DAY

        self._hr = self._user.resting_hr
        self._hr_noise = 0.0
        self._fatigue = 0.0
        self._beat = 0.0
        self._rr: list[int] = []
        self._last_rr: tuple[int, ...] = ()
        self._step_acc = 0.0
        self._steps_today = 0
        self._interval_steps = 0
        self._distance = 0.0
        self._energy = 0.0
        self._battery = float(battery_percent)
        self._dead = False
        self._off_until = -_FOREVER
        self._charge_until = -_FOREVER
        self._temp_effect = 0.0
        self._temp_t = start
        self._activity = Activity.REST
        self._charging = False
        self._on_wrist = True
        self._battery_rate = 0.0
        self._last: dict[Metric, Measurement] = {}
        self._events: list[ModelEvent] = []

        self._t = start - 1  # the first advance emits samples due at `start`
        self._resync(start)

    # --- public API -------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The last simulated second the model has stepped through."""
        return self._t

    @property
    def user(self) -> Wearer:
        return self._user

    @property
    def utc_offset_s(self) -> int:
        return self._utc_offset

    def settings(self, metric: Metric) -> MetricSettings:
        return self._settings[metric]

    def advance_to(self, t: int) -> list[Measurement]:
        """Step through every second up to and including ``t``; return what was measured."""
        out: list[Measurement] = []
        while self._t < t:
            tick = self._t + 1
            if tick >= self._next_change:
                self._apply_changes(tick)
            last = min(t, self._next_change - 1)
            self._run_span(tick, last, out)
            self._t = last
        return out

    def take_events(self) -> list[ModelEvent]:
        """Events since the previous call, oldest first."""
        events, self._events = self._events, []
        return events

    def set_metric(
        self, metric: Metric, *, enabled: bool | None = None, interval_s: int | None = None
    ) -> None:
        """Turn a metric on or off or change its interval; a disabled metric is not measured."""
        old = self._settings[metric]
        self._settings[metric] = MetricSettings(
            old.enabled if enabled is None else enabled,
            old.interval_s if interval_s is None else interval_s,
        )
        if metric is _STEPS and not self._settings[metric].enabled:
            self._interval_steps = 0
        self._next_change = self._t + 1  # battery drain and sampling are re-planned

    def inject(self, kind: EventKind, duration_s: int = 0, level: int | None = None) -> None:
        """Act out ``kind`` from the next simulated second, as if the scenario scripted it.

        This is how a person or a test drives the wearer of a running watch.
        """
        self._fire(self._t + 1, ScriptedEvent(0, kind, duration_s, level))
        self._next_change = self._t + 1

    def put_on_wrist(self) -> None:
        """End an off-wrist period early."""
        self._off_until = min(self._off_until, self._t + 1)
        self._next_change = self._t + 1

    def set_radio(self, radio: RadioState) -> None:
        self._radio = radio
        self._next_change = self._t + 1

    def set_user(self, user: Wearer) -> None:
        self._user = user
        self._derive()

    def set_time(self, t: int, utc_offset_s: int | None = None) -> None:
        """The clock was set (Current Time write): jump forward without measuring the skipped time.

        The measurement timeline never steps back. Set to a second already measured (the
        phone sets the clock on every connection, to the second the watch is in, or behind
        it when the watch ran fast), the model holds: it measures nothing until the clock
        passes what it measured, so no second is measured twice under another seq and
        timestamps stay in seq order. The pause lasts as long as the correction.
        """
        if utc_offset_s is not None:
            self.set_utc_offset(utc_offset_s)
        if t <= self._t:
            return
        old_day = (self._t + 1 + self._utc_offset) // DAY
        self._t = t - 1
        if (t + self._utc_offset) // DAY != old_day:
            self._reset_day()
        self._resync(t)

    def set_utc_offset(self, utc_offset_s: int) -> None:
        """Keep a local-midnight scenario on local time; the day counters follow local time."""
        if self._scenario.anchor is Anchor.LOCAL_MIDNIGHT:
            self._zero += self._utc_offset - utc_offset_s
        self._utc_offset = utc_offset_s
        self._resync(self._t + 1)

    def state(self) -> WatchState:
        t = self._t
        return WatchState(
            timestamp=t,
            activity=self._activity,
            on_wrist=self._on_wrist,
            charging=self._charging,
            powered=not self._dead,
            heart_rate=round(min(max(self._hr + self._hr_noise, _HR_FLOOR), self._user.hr_max)),
            rr_intervals_ms=self._last_rr,
            steps_today=self._steps_today,
            distance_m_today=self._distance,
            energy_kj_today=self._energy,
            battery_percent=max(0, min(100, math.ceil(self._battery))),
            last=dict(self._last),
        )

    # --- schedule ---------------------------------------------------------------------

    def _resync(self, t: int) -> None:
        """Re-plan everything from tick ``t`` on (start, clock set, offset change)."""
        self._enter_segment(t)
        local = t + self._utc_offset
        self._next_midnight = t + DAY - local % DAY
        self._next_event, self._event_group = self._events_from(t)
        self._temp_t = t
        self._dip_start = self._dip_end = t
        self._dip_depth = 0.0
        self._next_change = t

    def _segment_at(self, t: int) -> tuple[int, int]:
        """(segment index or -1 for idle rest, absolute end of that stretch)."""
        pos, period = t - self._zero, self._ends[-1]
        if pos < 0:
            return -1, self._zero
        if self._scenario.loop:
            cycle, pos = divmod(pos, period)
            idx = bisect_right(self._ends, pos)
            return idx, self._zero + cycle * period + self._ends[idx]
        if pos >= period:
            return -1, _FOREVER
        idx = bisect_right(self._ends, pos)
        return idx, self._zero + self._ends[idx]

    def _events_from(self, t: int) -> tuple[int, list[ScriptedEvent]]:
        """The earliest scripted occurrence at or after ``t`` and the events sharing it."""
        events, ats = self._scenario.events, self._event_ats
        if not events:
            return _FOREVER, []
        pos = t - self._zero
        if self._scenario.loop:
            period = self._ends[-1]
            cycle, p = divmod(pos, period)
            idx = bisect_left(ats, p)
            if idx == len(ats):
                cycle, idx = cycle + 1, 0
            when = self._zero + cycle * period + ats[idx]
        else:
            idx = bisect_left(ats, pos)
            if idx == len(ats):
                return _FOREVER, []
            when = self._zero + ats[idx]
        return when, [e for e in events if e.at_s == ats[idx]]

    def _enter_segment(self, t: int) -> None:
        self._sync_temp(t)
        idx, self._seg_end = self._segment_at(t)
        segment = self._scenario.segments[idx] if idx >= 0 else None
        self._activity = segment.activity if segment else Activity.REST
        kind = _KINDS[self._activity]
        cadence = segment.cadence if segment else None
        if cadence is None:
            lo, hi = kind.cadence
            cadence = self._rng_steps.uniform(lo, hi) if hi else 0.0
        self._cadence = cadence
        self._intensity = segment.intensity if segment else None
        self._derive()

    def _derive(self) -> None:
        """Per-span constants from the activity and the user profile."""
        user, kind = self._user, _KINDS[self._activity]
        frac = kind.hr_frac if self._intensity is None else self._intensity
        if self._activity is Activity.SLEEP:
            self._target = user.resting_hr * _SLEEP_HR_FACTOR
        else:
            self._target = user.resting_hr + frac * (user.hr_max - user.resting_hr)
        self._fatigue_gain = 0.004 * frac if frac >= 0.5 else 0.0
        self._stride = user.stride_m(self._cadence)
        kg = user.weight_kg
        # Energy: METs (1 kcal/kg/h) at rest; while active, the larger of METs and the
        # Keytel et al. (2005) heart-rate equation (kJ/min), per second here.
        self._e_met = kind.met * kg * _KJ_PER_KCAL / 3600.0
        if self._activity in (Activity.SLEEP, Activity.REST):
            self._e_a, self._e_b = self._e_met, 0.0
        elif user.sex is Sex.MALE:
            self._e_a, self._e_b = (-55.0969 + 0.1988 * kg + 0.2017 * user.age) / 60, 0.6309 / 60
        else:
            self._e_a, self._e_b = (-20.4022 - 0.1263 * kg + 0.074 * user.age) / 60, 0.4472 / 60
        self._hrv_cv = kind.hrv_cv

    def _apply_changes(self, t: int) -> None:
        if t >= self._seg_end:
            self._enter_segment(t)
        if t >= self._next_midnight:
            self._reset_day()
            self._next_midnight = t + DAY - (t + self._utc_offset) % DAY
        if t >= self._next_event:
            for event in self._event_group:
                self._fire(t, event)
            self._next_event, self._event_group = self._events_from(t + 1)
        self._charging = t < self._charge_until
        self._on_wrist = t >= self._off_until and not self._charging
        if self._charging:  # the charger powers an empty watch up
            self._dead = False
        if not self._dead and not self._charging and self._battery <= 0:
            self._dead, self._battery = True, 0.0
            self._events.append(ModelEvent(t, EventKind.BATTERY_EMPTY))
        self._battery_rate = self._battery_rate_per_s()
        empty = _FOREVER
        if self._battery_rate < 0:
            empty = t + math.ceil(self._battery / -self._battery_rate)
        pending = [self._seg_end, self._next_midnight, self._next_event, empty]
        pending += [u for u in (self._off_until, self._charge_until) if u > t]
        self._next_change = max(t + 1, min(pending))

    def _fire(self, t: int, event: ScriptedEvent) -> None:
        if event.kind is EventKind.OFF_WRIST:
            self._off_until = max(self._off_until, t + event.duration_s)
        elif event.kind is EventKind.CHARGE:
            self._charge_until = max(self._charge_until, t + event.duration_s)
        elif event.kind is EventKind.BATTERY_LOW and event.level is not None:
            self._battery = min(self._battery, float(event.level))
        self._events.append(ModelEvent(t, event.kind, event.duration_s, event.level))

    def _battery_rate_per_s(self) -> float:
        if self._charging:
            return _CHARGE_PER_S if self._battery < 100 else 0.0
        if self._dead:
            return 0.0
        per_hour = _DRAIN_BASE + _DRAIN_RADIO[self._radio]
        for metric, s in self._settings.items():
            if s.enabled:
                per_hour += _DRAIN_ENABLED[metric] + _DRAIN_PER_SAMPLE[metric] * 3600 / s.interval_s
        return -per_hour / 3600.0

    def _reset_day(self) -> None:
        self._steps_today = 0
        self._distance = 0.0
        self._energy = 0.0

    # --- the per-second loop ----------------------------------------------------------

    def _due(self, metric: Metric, first: int, measuring: bool) -> tuple[int, int]:
        """(first due tick >= ``first``, interval), or never when not measuring."""
        s = self._settings[metric]
        if not (s.enabled and measuring):
            return _FOREVER, s.interval_s
        return -(-first // s.interval_s) * s.interval_s, s.interval_s

    def _run_span(self, first: int, last: int, out: list[Measurement]) -> None:
        powered = not self._dead
        sensing = powered and self._on_wrist
        due_hr, iv_hr = self._due(_HR, first, sensing)
        due_st, iv_st = self._due(_STEPS, first, powered)
        due_o2, iv_o2 = self._due(_SPO2, first, sensing)
        due_tp, iv_tp = self._due(_TEMP, first, sensing)
        hr_on = due_hr != _FOREVER
        count_steps = sensing and self._settings[_STEPS].enabled
        cad_s = self._cadence / 60.0 if count_steps else 0.0

        hr, noise, fatigue, beat = self._hr, self._hr_noise, self._fatigue, self._beat
        target, gain, hr_max = self._target, self._fatigue_gain, self._user.hr_max
        e_a, e_b, e_met, energy = self._e_a, self._e_b, self._e_met, self._energy
        step_acc, steps_span, interval_steps = self._step_acc, 0, self._interval_steps
        rr, last_rr, cv = self._rr, self._last_rr, self._hrv_cv
        gauss, rr_gauss = self._rng_hr.gauss, self._rng_rr.gauss
        append = out.append
        last_hr: Measurement | None = None
        last_st: Measurement | None = None

        for t in range(first, last + 1):
            goal = target + fatigue
            hr += (goal - hr) * (_K_UP if goal > hr else _K_DOWN)
            noise = noise * _NOISE_KEEP + gauss(0.0, _NOISE_SD)
            if gain:
                fatigue = min(fatigue + gain, _FATIGUE_MAX)
            else:
                fatigue *= _FATIGUE_DECAY
            obs = hr + noise
            if obs < _HR_FLOOR:
                obs = _HR_FLOOR
            elif obs > hr_max:
                obs = hr_max
            e = e_a + e_b * obs
            energy += e if e > e_met else e_met
            if cad_s:
                step_acc += cad_s
                if step_acc >= 1.0:
                    n = int(step_acc)
                    step_acc -= n
                    steps_span += n
                    interval_steps += n
            if hr_on:
                beat += obs / 60.0
                while beat >= 1.0:
                    beat -= 1.0
                    rr.append(int(60000.0 / obs * (1.0 + rr_gauss(0.0, cv)) + 0.5))
                if t >= due_hr:
                    due_hr += iv_hr
                    last_hr = Measurement(t, _HR, int(obs + 0.5))
                    append(last_hr)
                    last_rr, rr = tuple(rr), []
            if t >= due_st:
                due_st += iv_st
                last_st = Measurement(t, _STEPS, interval_steps)
                append(last_st)
                interval_steps = 0
            if t >= due_o2:
                due_o2 += iv_o2
                append(self._spo2_sample(t))
            if t >= due_tp:
                due_tp += iv_tp
                append(self._temp_sample(t))

        self._hr, self._hr_noise, self._fatigue, self._beat = hr, noise, fatigue, beat
        self._energy, self._step_acc, self._interval_steps = energy, step_acc, interval_steps
        self._steps_today += steps_span
        self._distance += steps_span * self._stride
        self._rr, self._last_rr = rr[-64:], last_rr
        if last_hr is not None:
            self._last[_HR] = last_hr
        if last_st is not None:
            self._last[_STEPS] = last_st
        battery = self._battery + self._battery_rate * (last - first + 1)
        self._battery = min(100.0, max(0.0, battery))

    def _spo2_sample(self, t: int) -> Measurement:
        kind = _KINDS[self._activity]
        value = self._spo2_base + kind.spo2_offset + self._rng_spo2.gauss(0.0, 0.3)
        if self._activity is Activity.SLEEP:
            while self._dip_end <= t:  # brief desaturations, ~4 an hour, while asleep
                self._dip_start = self._dip_end + int(self._rng_dip.expovariate(4 / 3600))
                self._dip_end = self._dip_start + self._rng_dip.randint(15, 45)
                self._dip_depth = self._rng_dip.uniform(2.0, 5.0)
            if self._dip_start <= t:
                value -= self._dip_depth
        sample = Measurement(t, _SPO2, round(min(100.0, max(70.0, value)) * 10))
        self._last[_SPO2] = sample
        return sample

    def _sync_temp(self, t: int) -> None:
        """Bring the activity part of wrist temperature (first-order lag) up to ``t``."""
        target = _KINDS[self._activity].temp_effect
        decay = math.exp(-max(0, t - self._temp_t) / _TEMP_TAU)
        self._temp_effect = target + (self._temp_effect - target) * decay
        self._temp_t = t

    def _temp_sample(self, t: int) -> Measurement:
        self._sync_temp(t)
        local = (t + self._utc_offset) % DAY
        circadian = 33.4 + 0.9 * math.cos(2 * math.pi * (local - 4 * 3600) / DAY)
        value = circadian + self._temp_effect + self._rng_temp.gauss(0.0, 0.05)
        sample = Measurement(t, _TEMP, round(value * 100))
        self._last[_TEMP] = sample
        return sample
