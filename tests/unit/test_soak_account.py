"""The soak's per-watch account: each kind of discrepancy is counted where it belongs."""

from __future__ import annotations

from protocol.metrics import Metric, Sample
from tests.soak import account
from tests.soak_faults import account_history

GENERATED = [Sample(seq, 1000 + seq, Metric.HEART_RATE, 60 + seq) for seq in range(1, 6)]


def held(*seqs: int) -> dict[int, tuple[int, int, int]]:
    return {s.seq: (s.timestamp, int(s.metric), s.raw) for s in GENERATED if s.seq in seqs}


def test_everything_held_once_is_clean() -> None:
    report = account(GENERATED, held(1, 2, 3, 4, 5), [(0, 0)], held(1, 2, 3, 4, 5), "W")
    assert (report.generated, report.stored, report.uploaded) == (5, 5, 5)
    assert (report.lost, report.duplicated, report.gaps_explained) == (0, 0, 0)


def test_missing_without_a_gap_is_lost_and_with_one_is_explained() -> None:
    lost = account(GENERATED, held(1, 2, 4, 5), [], held(1, 2, 4, 5), "W")
    explained = account(GENERATED, held(1, 2, 4, 5), [(3, 3)], held(1, 2, 4, 5), "W")
    assert (lost.lost, lost.gaps_explained) == (1, 0)
    assert (explained.lost, explained.gaps_explained) == (0, 1)


def test_stored_but_not_uploaded_is_lost() -> None:
    report = account(GENERATED, held(1, 2, 3, 4, 5), [], held(1, 2, 3), "W")
    assert (report.stored, report.uploaded, report.lost) == (5, 3, 2)


def test_altered_or_invented_records_are_duplicates() -> None:
    stored = held(1, 2, 3, 4, 5) | {6: (1006, int(Metric.HEART_RATE), 66)}
    received = held(1, 2, 3, 4) | {5: (1005, int(Metric.HEART_RATE), 0)}
    report = account(GENERATED, stored, [], received, "W")
    assert report.duplicated == 2  # seq 6 never generated; seq 5 altered at the receiver
    assert report.lost == 1  # seq 5 is not at the receiver as generated


# The fault soak's account from a watch's own history (tests/soak_faults.py): seqs 1..5
# given out; the watch still holds 4 and 5 (freed 1-3 once acknowledged).
NEXT_SEQ = 6


def test_freed_and_missing_is_lost_still_held_and_missing_is_pending() -> None:
    report = account_history("W", NEXT_SEQ, held(4, 5), held(1, 3), [], held(1, 3))
    assert (report.generated, report.stored, report.uploaded) == (5, 2, 2)
    assert (report.lost, report.duplicated) == (1, 0)  # seq 2 freed, never stored
    explained = account_history("W", NEXT_SEQ, held(4, 5), held(1, 3), [(2, 2)], held(1, 3))
    assert (explained.lost, explained.gaps_explained) == (0, 1)


def test_history_account_counts_unuploaded_altered_and_invented_records() -> None:
    stored = held(1, 2, 3, 4, 5) | {6: (1006, int(Metric.HEART_RATE), 66)}
    stored[5] = (1005, int(Metric.HEART_RATE), 0)  # not what the watch still holds
    received = held(1, 2, 3) | {4: (1004, int(Metric.HEART_RATE), 0)}
    report = account_history("W", NEXT_SEQ, held(4, 5), stored, [], received)
    assert report.lost == 2  # 4 (altered at the receiver) and 5 not uploaded as stored
    assert report.duplicated == 3  # 6 never given, 5 altered in the store, 4 at the receiver
