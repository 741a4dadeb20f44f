"""The agent's view of one REPORT: batches in any order, holes held until the end.

BlueZ can deliver a REPORT's notifications out of order and after its response
(docs/bluez.md); the stream must still account for every seq exactly once.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phoneagent.store import MissingSeqs
from phoneagent.sync.stream import DROPPED, NOT_ASSIGNED, OPTED_OUT, ReportStream
from protocol.history import MAX_PAYLOAD, Gap, pack_records
from protocol.metrics import Metric, Sample, SampleRun

SAMPLES = [
    Sample(seq, 1_700_000_000 + seq, Metric.HEART_RATE, 60 + seq % 40) for seq in range(1, 201)
]
BATCHES = pack_records(SAMPLES, 44)  # 6 samples a batch: 34 batches


def _stream(from_seq: int = 1) -> ReportStream:
    return ReportStream(from_seq, frozenset(), group_samples=1_000_000)


@given(st.permutations(BATCHES))
def test_reordered_batches_come_out_in_seq_order(order: list[bytes]) -> None:
    stream = _stream()
    for raw in order:
        stream.add(raw)
    group = stream.take()
    assert list(group.samples) == SAMPLES and group.gaps == []
    assert stream.expected == SAMPLES[-1].seq + 1


def test_a_batch_beyond_a_hole_waits_for_the_hole_to_fill() -> None:
    stream = _stream()
    stream.add(BATCHES[0])
    stream.add(BATCHES[2])
    first = stream.take()
    assert list(first.samples) == SAMPLES[:6] and first.gaps == []
    stream.add(BATCHES[1])
    second = stream.take()
    assert list(second.samples) == SAMPLES[6:18] and second.gaps == []


def test_the_reports_end_closes_a_hole_that_never_filled() -> None:
    stream = _stream()
    stream.add(BATCHES[0])
    stream.add(BATCHES[2])
    assert list(stream.take().samples) == SAMPLES[:6]
    last = stream.take(final_seq=SAMPLES[-1].seq)
    assert list(last.samples) == SAMPLES[12:18]
    assert last.gaps == [MissingSeqs(7, 12, NOT_ASSIGNED), MissingSeqs(19, 200, NOT_ASSIGNED)]


def test_every_batch_wakes_the_late_records_wait() -> None:
    stream = _stream()
    assert not stream.arrived.is_set()
    stream.add(BATCHES[0])
    assert stream.arrived.is_set() and not stream.ready.is_set()


def test_backlog_is_taken_in_bounded_groups_in_seq_order() -> None:
    samples = [Sample(seq, 1_700_000_000 + seq, Metric.HEART_RATE, 70) for seq in range(1, 901)]
    batches = pack_records(samples, MAX_PAYLOAD)  # 84 samples each
    stream = ReportStream(1, frozenset(), group_samples=200)
    for batch in batches:
        stream.add(batch)
    taken: list[Sample] = []
    groups = 0
    while stream.ready.is_set():
        group = stream.take_group()
        assert 200 <= len(group.samples) < 200 + 84 and not group.gaps
        taken += group.samples
        groups += 1
    last = stream.take(final_seq=910)  # the watch assigned up to 910: 901..910 never came
    assert groups == 3 and len(last.samples) == 900 - 3 * 252
    assert taken + list(last.samples) == samples
    assert [(g.first_seq, g.last_seq, g.reason) for g in last.gaps] == [(901, 910, NOT_ASSIGNED)]
    assert stream.expected == 911


def test_records_of_an_opted_out_metric_become_gaps_in_a_plain_batch() -> None:
    """A contiguous batch of samples takes the stream's fast path; an opted-out metric in
    it must still be dropped before storage, its seqs accounted for as opted out."""
    metrics = [Metric.HEART_RATE, Metric.STEPS]
    mixed = [s._replace(metric=metrics[s.seq % 2]) for s in SAMPLES[:12]]
    stream = ReportStream(1, frozenset({Metric.STEPS}), group_samples=1_000_000)
    for raw in pack_records(mixed, 44):
        stream.add(raw)
    group = stream.take()
    assert list(group.samples) == [s for s in mixed if s.metric is Metric.HEART_RATE]
    assert group.gaps == [MissingSeqs(seq, seq, OPTED_OUT) for seq in range(1, 13, 2)]


def test_a_backfills_group_is_one_run() -> None:
    """Plain batches at consecutive seqs (all a backfill sends) make one ``SampleRun``,
    which the store writes without building a Sample per record."""
    stream = _stream()
    for raw in BATCHES:
        stream.add(raw)
    group = stream.take()
    assert isinstance(group.samples, SampleRun) and group.samples.first_seq == 1
    assert list(group.samples) == SAMPLES and group.gaps == []


def test_a_run_after_a_reported_gap_keeps_every_seq_in_order() -> None:
    """Runs, then a batch with a gap (not a run), then runs again: one group, its samples
    in seq order, the gap accounted for."""
    entries: list[Sample | Gap] = [*SAMPLES[:30], Gap(31, 40), *SAMPLES[40:]]
    stream = _stream()
    for raw in pack_records(entries, 44):
        stream.add(raw)
    group = stream.take()
    assert list(group.samples) == SAMPLES[:30] + SAMPLES[40:]
    assert group.gaps == [MissingSeqs(31, 40, DROPPED)]
    assert stream.expected == SAMPLES[-1].seq + 1


def test_a_run_repeated_or_overlapping_is_counted_not_stored_again() -> None:
    """A plain run that starts below the seqs accounted for (a batch sent twice, or a
    REPORT restarted) takes the general path: its known seqs are counted as repeated,
    its new ones stored once."""
    stream = _stream()
    for raw in BATCHES[:3]:
        stream.add(raw)
    first = stream.take()
    stream.add(BATCHES[2])  # again
    stream.add(BATCHES[3])
    second = stream.take()
    assert list(first.samples) == SAMPLES[:18] and first.repeated == 0
    assert list(second.samples) == SAMPLES[18:24] and second.repeated == 6
