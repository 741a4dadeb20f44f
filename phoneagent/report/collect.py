"""What a report shows, read from the store through its public methods only: each watch's
samples per metric, the holes in its data placed on the time axis with why, how far it is
synced and uploaded, and a summary per day.

A hole is found where the samples, read in time order, skip seqs or time: skipped seqs
covered by the store's gap rows take their reason ("dropped on watch", "opted out", ...);
skipped seqs with no gap row were stored once and are gone, so "deleted". Those holes
are in every metric. A metric that is quiet for long while the others go on (off wrist,
heart rate stops and steps go on counting) has a hole of its own, "no measurements".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import groupby, pairwise
from statistics import fmean, median

from phoneagent.store import DeviceRecord, GapRecord, Store, StoredSample, UnknownDeviceError
from protocol.metrics import Metric

QUIET_S = 15 * 60
QUIET_INTERVALS = 3
"""A metric with no sample for ``QUIET_S`` and for this many of its usual intervals (the
median), in time no other hole explains, measured nothing then."""
MIN_HOLE_S = 5 * 60
"""Shorter holes are counted in the gap table but neither shaded nor break a line: at
the width of a pixel they would hide the data around them (an opted-out metric leaves a
one-record hole every few seconds)."""
DELETED = "deleted"
NOT_SYNCED = "not synced yet"
QUIET = "no measurements"  # off wrist, charging, a sensor off
RESTING_FRACTION = 0.1
"""Resting heart rate: the mean of the lowest tenth of the day's readings."""


@dataclass(slots=True)
class Series:
    """One metric's samples in time order, at full resolution."""

    metric: Metric
    times: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hole:
    """Time between two samples in which data is missing, and why."""

    start: int  # the last sample before it
    end: int  # the first sample after it
    reason: str
    missing_seqs: int  # 0 for a quiet spell
    metric: Metric | None = None  # None: a hole in every metric


@dataclass(frozen=True, slots=True)
class Span:
    """How far a position reaches on the measurement time axis (synced, uploaded)."""

    lane: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at a moment by the phone's clock (a failed sync, an upload)."""

    lane: str
    at: int
    text: str


@dataclass(frozen=True, slots=True)
class DaySummary:
    day: date  # UTC
    resting_hr: float | None
    steps: int
    min_spo2: float | None


@dataclass(slots=True)
class DeviceReport:
    device: DeviceRecord
    series: dict[Metric, Series]
    holes: list[Hole]
    gap_rows: list[GapRecord]  # every gap the store holds for this watch, in or out of range
    spans: list[Span]
    events: list[Event]
    days: list[DaySummary]

    @property
    def start(self) -> int | None:
        firsts = [s.times[0] for s in self.series.values() if s.times]
        return min(firsts) if firsts else None

    @property
    def end(self) -> int | None:
        lasts = [s.times[-1] for s in self.series.values() if s.times]
        return max(lasts) if lasts else None


def collect(
    store: Store, device: str | None, since: int | None, until: int | None
) -> list[DeviceReport]:
    """One ``DeviceReport`` per watch (or only ``device``), samples ``since <= ts < until``.

    An unknown ``device`` raises the store's ``UnknownDeviceError`` before anything is read.
    """
    devices = store.list_devices() if device is None else [_known(store, device)]
    uploads = [
        Event("upload sessions", d.at, f"{d.record_count} record(s) to {d.recipient}")
        for d in store.ledger.disclosures()
        if not d.user_request
    ]
    return [_device_report(store, record, since, until, uploads) for record in devices]


def _known(store: Store, device: str) -> DeviceRecord:
    record = store.get_device(device)
    if record is None:
        raise UnknownDeviceError.of(device)
    return record


def _device_report(
    store: Store, device: DeviceRecord, since: int | None, until: int | None, uploads: list[Event]
) -> DeviceReport:
    address = device.address
    gap_rows = store.gaps(address)
    sync_position = store.next_seq(address)
    series = {m: Series(m) for m in Metric}
    # One pass over the samples: the series fill up as the holes between them are found.
    stamps = _recorded(store.iter_samples(address, None, since, until), series)
    holes = list(_holes(stamps, gap_rows, sync_position))
    holes += [quiet for line in series.values() for quiet in _quiet(line, holes)]
    holes.sort(key=lambda h: (h.start, h.end))
    report = DeviceReport(device, series, holes, gap_rows, [], [], daily(series))
    start, end = report.start, report.end
    if start is None or end is None:
        return report
    positions = [("synced", sync_position - 1, f"sync position: seq {sync_position}")]
    for endpoint in sorted(store.ledger.upload_endpoints()):
        seq = store.ledger.get_upload_position(address, endpoint)
        if seq is not None:
            positions.append((f"uploaded ({endpoint})", seq, f"upload position: seq {seq}"))
    for lane, seq, text in positions:
        reached = store.sample_time(address, seq)
        if reached is not None and reached >= start:
            report.spans.append(Span(lane, start, min(reached, end), text))
    problem = store.sync_problem(address)
    failed = [] if problem is None else [Event("last sync failed", *problem)]
    report.events.extend(e for e in failed + uploads if start <= e.at <= end)
    return report


def _recorded(
    samples: Iterator[StoredSample], series: dict[Metric, Series]
) -> Iterator[tuple[int, int]]:
    """Append each sample to its metric's series; yield (time, seq) of every one."""
    for s in samples:
        line = series[s.metric]
        line.times.append(s.timestamp)
        line.values.append(s.value)
        yield s.timestamp, s.seq


def _holes(
    stamps: Iterable[tuple[int, int]], gap_rows: list[GapRecord], sync_position: int
) -> Iterator[Hole]:
    previous: tuple[int, int] | None = None
    for ts, seq in stamps:
        if previous is not None and ts - previous[0] >= MIN_HOLE_S:
            before_ts, before_seq = previous
            skipped = seq - before_seq - 1
            if skipped > 0:
                reason = _why(before_seq + 1, seq - 1, gap_rows, sync_position)
                yield Hole(before_ts, ts, reason, skipped)
        previous = ts, seq


def _quiet(line: Series, holes: list[Hole]) -> Iterator[Hole]:
    """The spells in which this metric measured nothing, beyond what ``holes`` explain."""
    if len(line.times) < 2:
        return
    pairs = list(pairwise(line.times))
    limit = max(QUIET_S, QUIET_INTERVALS * median(b - a for a, b in pairs))
    for a, b in pairs:
        explained = sum(max(0, min(b, h.end) - max(a, h.start)) for h in holes)
        if b - a - explained >= limit:
            yield Hole(a, b, QUIET, 0, line.metric)


def _why(first: int, last: int, gap_rows: list[GapRecord], sync_position: int) -> str:
    """The reasons of the gap rows over ``first..last``; seqs none covers were deleted (or,
    at or past the sync position, are still to come)."""
    reasons: list[str] = []
    covered = 0
    for row in gap_rows:
        low, high = max(first, row.first_seq), min(last, row.last_seq)
        if low <= high:
            covered += high - low + 1
            if row.reason not in reasons:
                reasons.append(row.reason)
    if covered < last - first + 1:
        reasons.append(DELETED if last < sync_position else NOT_SYNCED)
    return ", ".join(reasons)


def daily(series: dict[Metric, Series]) -> list[DaySummary]:
    """Resting heart rate, steps and lowest SpO2 per UTC day with any sample."""
    per_day: dict[date, dict[Metric, list[float]]] = {}
    for metric, line in series.items():
        for day, values in groupby(zip(line.times, line.values, strict=True), key=_day):
            per_day.setdefault(day, {}).setdefault(metric, []).extend(v for _, v in values)
    summaries = []
    for day in sorted(per_day):
        found = per_day[day]
        heart = sorted(found.get(Metric.HEART_RATE, []))
        lowest = heart[: max(1, round(len(heart) * RESTING_FRACTION))]
        spo2 = found.get(Metric.SPO2)
        summaries.append(
            DaySummary(
                day,
                round(fmean(lowest), 1) if heart else None,
                round(sum(found.get(Metric.STEPS, []))),
                min(spo2) if spo2 else None,
            )
        )
    return summaries


def _day(point: tuple[int, float]) -> date:
    return datetime.fromtimestamp(point[0], UTC).date()
