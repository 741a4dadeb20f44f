"""A store whose chart is known in advance, for the report's tests: a seeded watch's two
days with one hole of each kind the report tells apart."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from phoneagent.privacy.gate import CLOUD_CATEGORIES, CLOUD_UPLOAD_PURPOSE
from phoneagent.report.collect import DELETED, QUIET
from phoneagent.store import MissingSeqs, Store, StoredSample, create_key_file, read_key_file
from phoneagent.store.ledger import NewDisclosure
from protocol.metrics import Metric, Sample

WATCH = "F0:F1:F2:F3:F4:F5"
DROPPED = "dropped on watch"  # a gap row's reason as the sync engine writes it, shown as is
T0 = 1_780_000_000 - 1_780_000_000 % 86_400  # a UTC midnight
HOURS = 48
HR_EVERY_S = 30  # dense: 5,760 heart-rate samples, more than the chart draws
OTHER_EVERY_S = 300  # sparse: drawn whole
SPIKE = 211.0  # one heart-rate sample far above the rest: down-sampling must keep it
DIP = 31.0  # and one far below


@dataclass(frozen=True)
class Hole:
    start: int  # first minute missing, from T0
    end: int  # first minute present again
    reason: str
    metrics: frozenset[Metric] = frozenset(Metric)


OFF_WRIST = frozenset({Metric.HEART_RATE, Metric.SPO2, Metric.SKIN_TEMPERATURE})
HOLES = (
    Hole(6 * 60, 8 * 60, DROPPED),  # seqs skipped, with the watch's gap row
    # Off wrist: the sensors measure nothing (no seq used), steps go on counting (zero).
    Hole(20 * 60, 23 * 60, QUIET, OFF_WRIST),
    Hole(30 * 60, 31 * 60, DELETED),  # stored once, deleted by the person
)


def holes_in(metric: Metric) -> list[Hole]:
    return [h for h in HOLES if metric in h.metrics]


def bands() -> int:
    """The holes the report finds: one in every metric, or one per metric it is in."""
    return sum(1 if h.metrics == set(Metric) else len(h.metrics) for h in HOLES)


def _timeline() -> list[tuple[int, Metric, int]]:
    """(time, metric, raw) of everything the watch measured, in time order."""
    rng = random.Random(22)
    found: list[tuple[int, Metric, int]] = []
    for t in range(T0, T0 + HOURS * 3600, HR_EVERY_S):
        found.append((t, Metric.HEART_RATE, 55 + rng.randrange(60)))
        if (t - T0) % OTHER_EVERY_S == 0:
            found.append((t, Metric.SPO2, 940 + rng.randrange(50)))
            found.append((t, Metric.SKIN_TEMPERATURE, 3300 + rng.randrange(200)))
            found.append((t, Metric.STEPS, rng.randrange(120)))
    for when, value in ((T0 + 10 * 3600 + 30, SPIKE), (T0 + 40 * 3600 + 30, DIP)):
        at = found.index(next(f for f in found if f[0] == when and f[1] is Metric.HEART_RATE))
        found[at] = (when, Metric.HEART_RATE, int(value))
    return found


def _minute(t: int) -> int:
    return (t - T0) // 60


def fill_store(data: Path) -> Path:
    """Create the store in ``data``; returns its key file."""
    data.mkdir(mode=0o700)
    key_file = data.parent / "key"
    quiet = next(h for h in HOLES if h.reason == QUIET)
    dropped = next(h for h in HOLES if h.reason == DROPPED)
    deleted = next(h for h in HOLES if h.reason == DELETED)
    samples: list[Sample] = []
    lost: list[int] = []
    seq = 0
    for t, metric, raw in _timeline():
        if quiet.start <= _minute(t) < quiet.end and metric in quiet.metrics:
            continue  # the watch measured nothing: no seq used
        if quiet.start <= _minute(t) < quiet.end:
            raw = 0  # nobody walks with the watch on its charger
        seq += 1
        if dropped.start <= _minute(t) < dropped.end:
            lost.append(seq)
        else:
            samples.append(Sample(seq, t, metric, raw))
    with Store.open(data, create_key_file(key_file)) as store:
        store.add_device(WATCH, name="Test watch")
        store.store_batch(WATCH, samples, [MissingSeqs(lost[0], lost[-1], DROPPED)])
        store.ledger.delete_samples(WATCH, None, T0 + 60 * deleted.start, T0 + 60 * deleted.end)
    return key_file


def stored_counts(key_file: Path, data: Path) -> dict[Metric, int]:
    """Samples per metric the store holds for the whole range."""
    with Store.open(data, read_key_file(key_file)) as store:
        return store.counts()[WATCH]


@dataclass(frozen=True)
class SyncAndUpload:
    uploaded_to: StoredSample  # the last sample the endpoint acknowledged
    failed_at: int  # the last failed sync session, by the phone's clock
    uploaded_at: int  # the upload session, likewise


def add_sync_and_upload(data: Path, key_file: Path) -> SyncAndUpload:
    """A failed sync session and an upload of the first day to "eu", both inside the range."""
    at = T0 + 12 * 3600
    with Store.open(data, read_key_file(key_file), clock=lambda: at) as store:
        halfway = next(s for s in store.iter_samples(WATCH, since=T0 + 24 * 3600))
        sent = NewDisclosure("cloud:eu", CLOUD_UPLOAD_PURPOSE, CLOUD_CATEGORIES, 42, at=at + 60)
        store.ledger.record_upload("eu", {WATCH: halfway.seq}, sent)
        store.set_sync_problem(WATCH, "the watch did not answer")
    return SyncAndUpload(halfway, at, at + 60)
