"""The sync engine's REPORT stream: a backlog is decoded a group at a time, in order."""

from __future__ import annotations

from phoneagent.sync.engine import NOT_ASSIGNED, _Stream
from protocol.history import MAX_PAYLOAD, pack_records
from protocol.metrics import Metric, Sample


def test_backlog_is_taken_in_bounded_groups_in_seq_order() -> None:
    samples = [Sample(seq, 1_700_000_000 + seq, Metric.HEART_RATE, 70) for seq in range(900)]
    batches = pack_records(samples, MAX_PAYLOAD)  # 84 samples each
    stream = _Stream(0, frozenset(), group_samples=200)
    for batch in batches:
        stream.add(batch)
    taken: list[Sample] = []
    groups = 0
    while stream.ready.is_set():
        group = stream.take_group()
        assert 200 <= len(group.samples) < 200 + 84 and not group.gaps
        taken += group.samples
        groups += 1
    last = stream.take(final_seq=910)  # the watch assigned up to 910: 900..910 never came
    assert groups == 3 and len(last.samples) == 900 - 3 * 252
    assert taken + last.samples == samples
    assert [(g.first_seq, g.last_seq, g.reason) for g in last.gaps] == [(900, 910, NOT_ASSIGNED)]
    assert stream.expected == 911
