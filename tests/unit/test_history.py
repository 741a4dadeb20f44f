"""On-watch history: durable, bounded, gap-reporting, and seqs that never go back."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from protocol.history import Gap
from protocol.metrics import Metric, Sample
from watchsim.history import RECORD_SIZE, History, HistoryCorruptError

T0 = 1_700_000_000
METRICS = list(Metric)


def batch(n: int, offset: int = 0) -> list[tuple[int, Metric, int]]:
    return [(T0 + offset + i, METRICS[(offset + i) % 4], (offset + i) * 7 - 50) for i in range(n)]


def expected(first_seq: int, n: int, offset: int = 0) -> list[Sample]:
    return [Sample(first_seq + i, t, m, raw) for i, (t, m, raw) in enumerate(batch(n, offset))]


def everything(history: History, from_seq: int = 1) -> list[Gap | Sample]:
    return list(history.iter_from(from_seq, chunk=7))


def segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("seg-*.log"))


def test_append_read_and_reopen(tmp_path: Path) -> None:
    with History(tmp_path, segment_records=16) as history:
        assert history.append(batch(40)) == range(1, 41)
        assert history.append(batch(10, 40)) == range(41, 51)
        assert (history.oldest_seq, history.newest_seq, history.count) == (1, 50, 50)
    assert len(segment_files(tmp_path)) == 4
    with History(tmp_path, segment_records=16) as reopened:
        assert everything(reopened) == expected(1, 50)
        assert reopened.count_from(45) == 6
        assert reopened.count_from(99) == 0
        result = reopened.read(20, 5)
        assert (result.gap, result.samples, result.next_seq) == (None, expected(1, 50)[19:24], 25)
        assert reopened.append(batch(1, 50)) == range(51, 52)


def test_live_reads_of_the_newest_segment_see_each_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live REPORT reads each append back at once (from memory, the last small append;
    else through the append handle), across segment boundaries, in reads that also take
    older records, and after acknowledged records were freed; the file agrees."""
    file_reads = 0

    def counted(fd: int, size: int, offset: int) -> bytes:
        nonlocal file_reads
        file_reads += 1
        return pread(fd, size, offset)

    pread = os.pread
    monkeypatch.setattr(os, "pread", counted)
    with History(tmp_path, segment_records=8) as history:
        offset = 0
        for size in (1, 3, 4, 5, 8, 2, 9, 70, 3):
            seqs = history.append(batch(size, offset))
            reads_before = file_reads
            result = history.read(seqs[0], size)
            assert result.samples == expected(seqs[0], size, offset)
            assert file_reads == reads_before + (size > 64)  # a live second's: from memory
            if seqs[0] > (history.oldest_seq or 1) + 1:  # this append and the record before
                before = history.read(seqs[0] - 1, size + 1).samples
                assert before == expected(seqs[0] - 1, size + 1, offset - 1)
            with History(tmp_path, segment_records=8) as from_file:
                assert from_file.read(seqs[0], size).samples == result.samples
            offset += size
            history.delete_up_to(seqs[0] - 1)
        assert everything(history, history.oldest_seq or 1) == expected(
            history.oldest_seq or 1, history.count, (history.oldest_seq or 1) - 1
        )


def test_torn_tail_is_cut_and_earlier_records_survive(tmp_path: Path) -> None:
    with History(tmp_path, segment_records=16) as history:
        history.append(batch(20))
    newest = segment_files(tmp_path)[-1]
    size = newest.stat().st_size
    with open(newest, "r+b") as f:  # the last record only half written
        f.truncate(size - RECORD_SIZE // 2)
    with History(tmp_path, segment_records=16) as history:
        assert everything(history) == expected(1, 19)
        assert newest.stat().st_size == 3 * RECORD_SIZE
        history.append(batch(2, 19))  # the torn seq was never acknowledged to anyone
        assert everything(history) == expected(1, 21)


def test_garbled_tail_is_cut_at_the_first_bad_record(tmp_path: Path) -> None:
    with History(tmp_path) as history:
        history.append(batch(10))
    (path,) = segment_files(tmp_path)
    data = bytearray(path.read_bytes())
    data[7 * RECORD_SIZE + 12] ^= 0xFF  # record 8 damaged, 9 and 10 after it
    path.write_bytes(bytes(data))
    with History(tmp_path) as history:
        assert everything(history) == expected(1, 7)
        assert history.next_seq == 8


def test_damage_in_an_older_segment_is_reported_not_skipped(tmp_path: Path) -> None:
    with History(tmp_path, segment_records=4) as history:
        history.append(batch(12))
    oldest = segment_files(tmp_path)[0]
    data = bytearray(oldest.read_bytes())
    data[RECORD_SIZE + 9] ^= 0x01
    oldest.write_bytes(bytes(data))
    with (
        History(tmp_path, segment_records=4) as history,
        pytest.raises(HistoryCorruptError, match="seq 2 is damaged"),
    ):
        everything(history)


def test_overflow_drops_the_oldest_and_reports_a_gap(tmp_path: Path) -> None:
    with History(tmp_path, capacity=100, segment_records=16) as history:
        history.append(batch(150))
        history.append(batch(100, 150))
        assert (history.oldest_seq, history.newest_seq, history.count) == (151, 250, 100)
        assert everything(history) == [Gap(1, 150), *expected(151, 100, 150)]
        assert everything(history, 200)[0] == Sample(200, *batch(1, 199)[0])
        assert len(segment_files(tmp_path)) <= 100 // 16 + 2  # space really freed
    with History(tmp_path, capacity=100, segment_records=16) as reopened:
        assert reopened.gap_before(10) == Gap(10, 150)
        assert reopened.append(batch(1, 250)) == range(251, 252)


def test_delete_up_to_frees_and_later_readers_see_the_gap(tmp_path: Path) -> None:
    with History(tmp_path, segment_records=8) as history:
        history.append(batch(30))
        assert history.delete_up_to(20) == 20
        assert history.delete_up_to(5) == 0
        assert history.read(21, 100).gap is None  # the agent that acked sees no gap
        assert everything(history, 1)[0] == Gap(1, 20)
        assert len(segment_files(tmp_path)) == 2  # seqs 17..24 and 25..30
    with History(tmp_path, segment_records=8) as history:
        assert history.oldest_seq == 21
        assert history.delete_up_to(10_000) == 10
        assert (history.count, history.next_seq) == (0, 31)
        assert history.oldest_seq is None
        assert history.append(batch(1)) == range(31, 32)


def test_an_acknowledgement_of_everything_keeps_the_segment_being_filled(
    tmp_path: Path,
) -> None:
    """A live agent acknowledges all the watch holds once a minute: the file the next
    second's records go to stays (no delete and create each time) until it is full and a
    newer one holds records; what it keeps below the floor is never read again."""
    with History(tmp_path, segment_records=8) as history:
        history.append(batch(5))
        (kept,) = segment_files(tmp_path)
        assert history.delete_up_to(5) == 5
        assert segment_files(tmp_path) == [kept]
        assert (history.count, history.oldest_seq) == (0, None)
        assert everything(history, 1) == [Gap(1, 5)]
        assert history.append(batch(2, 5)) == range(6, 8)
        assert segment_files(tmp_path) == [kept]  # the same file goes on filling
        assert kept.stat().st_size == 7 * RECORD_SIZE
        assert everything(history, 1) == [Gap(1, 5), *expected(6, 2, 5)]
        history.delete_up_to(7)
        history.append(batch(3, 7))  # fills seqs 8, then 9..10 go to a new segment
        assert len(segment_files(tmp_path)) == 2
        history.delete_up_to(10)
        assert [f.name for f in segment_files(tmp_path)] == [f"seg-{9:020d}.log"]
    with History(tmp_path, segment_records=8) as reopened:  # at start nothing below is kept
        assert segment_files(tmp_path) == []
        assert (reopened.count, reopened.next_seq) == (0, 11)
        assert everything(reopened, 1) == [Gap(1, 10)]


def test_a_wipe_frees_the_segment_being_filled_too(tmp_path: Path) -> None:
    with History(tmp_path, segment_records=8) as history:
        history.append(batch(3))
        history.delete_up_to(3)
        assert len(segment_files(tmp_path)) == 1  # kept for the next append
        history.wipe()
        assert segment_files(tmp_path) == []
        assert history.append(batch(1, 3)) == range(4, 5)


def test_seqs_never_reused_after_wipe_and_reopen(tmp_path: Path) -> None:
    with History(tmp_path) as history:
        history.append(batch(10))
        history.wipe()
        assert (history.count, history.next_seq) == (0, 11)
        assert everything(history) == [Gap(1, 10)]
    assert segment_files(tmp_path) == []
    with History(tmp_path) as history:
        assert history.next_seq == 11
        assert history.append(batch(3)) == range(11, 14)
        assert everything(history) == [Gap(1, 10), *expected(11, 3)]


def test_the_newest_timestamp_outlives_its_record(tmp_path: Path) -> None:
    """A restarted watch starts its clock after it, even when every record was freed."""
    with History(tmp_path) as history:
        assert history.newest_timestamp is None
        history.append(batch(10))
        history.delete_up_to(10)
        assert history.count == 0
        assert history.newest_timestamp == T0 + 9
    with History(tmp_path) as history:
        assert history.newest_timestamp == T0 + 9
        history.append(batch(2, 20))
    with History(tmp_path) as history:  # from the newest record, not from meta
        assert history.newest_timestamp == T0 + 21


def test_a_history_from_before_the_newest_timestamp_was_kept_opens(tmp_path: Path) -> None:
    with History(tmp_path) as history:
        history.append(batch(10))
        history.delete_up_to(4)
    body = struct.pack("<8sQQ", b"WSHIST01", 5, 11)
    (tmp_path / "meta").write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    with History(tmp_path) as history:
        assert (history.oldest_seq, history.next_seq) == (5, 11)
        assert history.newest_timestamp == T0 + 9
        history.delete_up_to(10)
        assert history.newest_timestamp == T0 + 9
    with History(tmp_path) as history:
        assert history.newest_timestamp == T0 + 9


def test_a_bad_sample_writes_nothing(tmp_path: Path) -> None:
    with History(tmp_path) as history:
        history.append(batch(3))
        with pytest.raises(ValueError, match="sample #1"):
            history.append([(T0, Metric.STEPS, 1), (T0, Metric.STEPS, 2**40)])
        assert history.next_seq == 4
    with History(tmp_path) as history:
        assert everything(history) == expected(1, 3)


def test_listeners_hear_about_durable_appends(tmp_path: Path) -> None:
    heard: list[tuple[int, int]] = []
    with History(tmp_path) as history:
        stop = history.subscribe(lambda first, last: heard.append((first, last)))
        history.append(batch(5))
        history.append([])
        history.append(batch(2, 5))
        stop()
        history.append(batch(1, 7))
    assert heard == [(1, 5), (6, 7)]
