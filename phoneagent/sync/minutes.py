"""Per-minute records from a watch that keeps no history (InfiniTime): live values in,
``Sample``s out, one per (minute, metric).

Only what was heard while connected becomes a record: steps are the deltas of the
watch's cumulative daily count between two readings of one connection (the first
reading of a connection is a baseline: steps taken while disconnected cannot be placed
in a minute and are not counted), heart rate the mean of the non-zero readings (0 is
InfiniTime's "no reading"). A minute's record is made once the phone's clock is past it
(the engine asks, ``due``: the watch notifies steps only when they change, so a wearer at
rest sends nothing that would close it), when a later minute's value arrives, or when the
connection ends. Its seq is derived from the minute and the metric, so
storing a minute twice (a reconnect within it, a restarted agent) keeps one record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from protocol.metrics import Metric, Sample

# seq = minute since the Unix epoch * SLOTS + metric: a seq per (minute, metric), in
# time order, so an uploader's "seq > position" reads them as it reads a history.
SLOTS: Final = 8


def minute_seq(minute: int, metric: Metric) -> int:
    return minute * SLOTS + int(metric)


@dataclass
class StepDeltas:
    """Steps between readings of a cumulative count that restarts at 0.

    The count restarts at local midnight and when the watch reboots; a reading below the
    one before is such a restart, and the steps since it are the reading itself.
    """

    last: int | None = None

    def delta(self, count: int) -> int:
        last, self.last = self.last, count
        if last is None:
            return 0  # the baseline of a connection
        return count - last if count >= last else count


@dataclass
class _Minute:
    steps: int = 0
    step_readings: int = 0
    bpm_sum: int = 0
    bpm_readings: int = 0

    def samples(self, minute: int) -> list[Sample]:
        ts = minute * 60
        out = []
        if self.bpm_readings:
            mean = round(self.bpm_sum / self.bpm_readings)
            out.append(Sample(minute_seq(minute, Metric.HEART_RATE), ts, Metric.HEART_RATE, mean))
        if self.step_readings:
            out.append(Sample(minute_seq(minute, Metric.STEPS), ts, Metric.STEPS, self.steps))
        return out


@dataclass
class MinuteAggregator:
    """One connection's live values folded into per-minute samples.

    ``now`` is the phone's clock in Unix seconds (UTC) when a value arrived: the watch
    sends no time with its values.
    """

    opted_out: frozenset[Metric] = frozenset()
    _steps: StepDeltas = field(default_factory=StepDeltas)
    _minute: int | None = None
    _current: _Minute = field(default_factory=_Minute)

    def step_count(self, count: int, now: int) -> list[Sample]:
        done = self._advance(now)
        first = self._steps.last is None
        steps = self._steps.delta(count)
        if not first:
            self._current.steps += steps
            self._current.step_readings += 1
        return done

    def heart_rate(self, bpm: int, now: int) -> list[Sample]:
        done = self._advance(now)
        if bpm > 0:
            self._current.bpm_sum += bpm
            self._current.bpm_readings += 1
        return done

    def flush(self) -> list[Sample]:
        """The minute in progress, as far as it was heard (the connection ended)."""
        minute, current = self._minute, self._current
        self._minute, self._current = None, _Minute()
        return [] if minute is None else self._kept(current.samples(minute))

    def due(self, now: int) -> list[Sample]:
        """The minute in progress once ``now`` is past it, without waiting for a value."""
        if self._minute is None or now // 60 <= self._minute:
            return []
        return self.flush()

    def _advance(self, now: int) -> list[Sample]:
        """The minute before ``now``'s, once ``now`` is in a later one (a clock that steps
        back keeps the minute in progress)."""
        minute = now // 60
        if self._minute is not None and minute <= self._minute:
            return []
        done = self.flush()
        self._minute = minute
        return done

    def _kept(self, samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if s.metric not in self.opted_out]
