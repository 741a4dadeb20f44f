"""Packed History Records batches: the wire format, the packer's limits and its use of space."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocol import errors, history
from protocol.history import (
    MIN_PAYLOAD,
    BatchPacker,
    Entry,
    Gap,
    HistoryBatch,
    decode_batch,
    pack_records,
)
from protocol.metrics import Metric, Sample, SampleColumns

T0 = 1_700_000_000  # 0x6553f100

KNOWN_ENTRIES: tuple[Entry, ...] = (
    Sample(1000, T0, Metric.HEART_RATE, 72),
    Sample(1001, T0 + 1, Metric.SPO2, 975),
    Gap(1002, 1009),
    Sample(1012, T0 + 60, Metric.SKIN_TEMPERATURE, 3350),
    Sample(1013, T0 - 10_000, Metric.STEPS, 12),  # the clock was set back: wide form
)
KNOWN_WIRE = bytes.fromhex(
    "e8030000 00f15365"  # header: base seq 1000, base timestamp T0
    "01 00 0000 4800"  # heart rate, skip 0, +0 s, 72
    "03 00 0100 cf03"  # SpO2, skip 0, +1 s, 97.5 %
    "80 00 07000000"  # gap 1002..1009
    "04 02 3b00 160d"  # skin temperature, skip 2 (1010, 1011 absent), +59 s, 33.50 degC
    "42 00 f0c95365 0c000000"  # wide steps record, absolute timestamp T0 - 10000, 12
)


def test_known_batch() -> None:
    assert HistoryBatch(KNOWN_ENTRIES).encode() == KNOWN_WIRE
    batch = decode_batch(KNOWN_WIRE)
    assert batch.entries == KNOWN_ENTRIES
    assert batch.gaps == [Gap(1002, 1009)]
    assert len(batch.samples) == 4
    assert batch.last_seq == 1013


def test_compact_form_boundaries() -> None:
    entries = (
        Sample(1, 0, Metric.HEART_RATE, 32767),
        Sample(2, 0xFFFF, Metric.HEART_RATE, -32768),  # largest compact step
        Sample(3, 0x1FFFF, Metric.HEART_RATE, 1),  # one second more: wide
        Sample(4, 0x1FFFF, Metric.HEART_RATE, 32768),  # raw beyond s16: wide
    )
    wire = bytes.fromhex(
        "01000000 00000000"
        "01 00 0000 ff7f"
        "01 00 ffff 0080"
        "41 00 ffff0100 01000000"
        "41 00 ffff0100 00800000"
    )
    assert pack_records(entries, 244) == [wire]
    assert decode_batch(wire).entries == entries


@pytest.mark.parametrize(
    ("wire", "error", "fault"),
    [
        ("e8030000 00f15365", errors.LengthError, "no entry"),
        ("e8030000 00f15365 01 00 0000", errors.LengthError, "runs past the end"),
        ("e8030000 00f15365 81 00 07000000", errors.ReservedValueError, "tag 0x81"),
        ("e8030000 00f15365 3f 00 0000 4800", errors.ReservedValueError, "metric 63"),
        ("e8030000 00f15365 01 01 0000 4800", errors.RangeError, "must not skip"),
        ("e8030000 00f15365 01 00 0100 4800", errors.RangeError, "base timestamp"),
        ("e8030000 00f15365 41 00 00f15365 48000000", errors.RangeError, "compact form"),
        ("e8030000 01000000 80 00 07000000", errors.RangeError, "base timestamp"),
        ("ffffffff 00000000 80 00 01000000", errors.RangeError, "above"),
        ("e8030000 ffffffff 01 00 0000 4800 01 00 0100 4800", errors.RangeError, "timestamp"),
        ("e8030000 00f15365" + "01 00 0000 4800" * 85, errors.LengthError, "exceeds 512"),
    ],
)
def test_malformed_batches(wire: str, error: type[errors.ProtocolError], fault: str) -> None:
    with pytest.raises(error) as caught:
        decode_batch(bytes.fromhex(wire))
    assert caught.value.characteristic == "History Records"
    assert fault in caught.value.fault


def stream(rng: random.Random, count: int) -> list[Entry]:
    """Seq-ordered samples and gaps with the irregularities a real watch produces."""
    seq, ts = rng.randint(0, 1000), rng.randint(0, 2_000_000_000)
    entries: list[Entry] = []
    for _ in range(count):
        seq += rng.choice([1, 1, 1, 1, 2, 7, rng.randint(1, 70_000)])
        if rng.random() < 0.05:
            last = seq + rng.choice([0, rng.randint(0, 1_000_000)])
            entries.append(Gap(seq, last))
            seq = last
            continue
        ts += rng.choice([0, 1, 1, 5, 60, rng.randint(-100_000, 100_000)])
        ts = min(max(ts, 0), 0xFFFF_FFFF)
        raw = rng.choice([rng.randint(-40, 4000)] * 5 + [rng.randint(-(1 << 31), (1 << 31) - 1)])
        entries.append(Sample(seq, ts, rng.choice(list(Metric)), raw))
    return entries


# Drawing each field through hypothesis is slow; a drawn seed keeps runs reproducible.
entry_streams = st.builds(stream, st.integers(0, 2**32).map(random.Random), st.integers(1, 400))


@given(entry_streams, st.integers(20, 512))
def test_packing_round_trip_within_payload(entries: list[Entry], max_payload: int) -> None:
    batches = pack_records(entries, max_payload)
    assert all(len(batch) <= max_payload for batch in batches)
    decoded = [decode_batch(batch) for batch in batches]
    assert [e for batch in decoded for e in batch.entries] == entries
    assert [batch.encode() for batch in decoded] == batches


@given(entry_streams)
def test_smallest_payload_still_carries_every_entry(entries: list[Entry]) -> None:
    batches = pack_records(entries, MIN_PAYLOAD)
    assert [e for batch in batches for e in decode_batch(batch).entries] == entries


def regular_day(count: int) -> list[Sample]:
    """Interleaved metrics every few seconds, contiguous seqs: the common backfill shape."""
    metrics = list(Metric)
    return [
        Sample(5000 + i, T0 + 3 * i, metrics[i % len(metrics)], 60 + i % 50) for i in range(count)
    ]


def test_packer_fills_a_244_byte_payload() -> None:
    samples = regular_day(10_000)
    batches = pack_records(samples, 244)
    per_batch = [len(decode_batch(batch).entries) for batch in batches]
    assert min(per_batch[:-1]) >= 39  # (244 - 8-byte header) // 6-byte entries
    assert len(batches) == -(-len(samples) // 39)


def test_incremental_packer_matches_pack_records() -> None:
    samples = regular_day(200)
    packer = BatchPacker(100)
    sent = [batch for sample in samples if (batch := packer.add(sample)) is not None]
    assert packer.pending
    last = packer.flush()
    assert last is not None
    assert not packer.pending
    assert packer.flush() is None
    assert [*sent, last] == pack_records(samples, 100)


def mostly_regular(rng: random.Random, count: int) -> list[Entry]:
    """Runs of compact samples (what ``add_columns`` packs in bulk) broken now and then by
    a skipped seq, a gap, a clock set back, a long pause or a wide value."""
    seq, ts = rng.randint(1, 1000), rng.randint(0, 2_000_000_000)
    entries: list[Entry] = []
    for _ in range(count):
        odd = rng.random() < 0.03
        seq += rng.randint(2, 300) if odd and rng.random() < 0.3 else 1
        if odd and rng.random() < 0.2:
            entries.append(Gap(seq, seq + rng.randint(0, 50)))
            seq = entries[-1].last_seq  # type: ignore[union-attr]
            continue
        ts = min(max(ts + (rng.randint(-1000, 70_000) if odd else rng.randint(0, 3)), 0), 2**32 - 1)
        raw = rng.randint(-(1 << 31), (1 << 31) - 1) if odd else rng.randint(-40, 4000)
        entries.append(Sample(seq, ts, rng.choice(list(Metric)), raw))
    return entries


def pack_in_reads(entries: list[Entry], max_payload: int, read: int) -> list[bytes]:
    """Packed as the watch's history service does: over reads of ``read`` entries, gaps
    with ``add`` and each run of samples as columns with ``add_columns``."""
    packer, batches = BatchPacker(max_payload), []
    for at in range(0, len(entries), read):
        for is_gap, run in itertools.groupby(entries[at : at + read], type):
            if is_gap is Gap:
                batches += [packer.add(gap) for gap in run]
                continue
            columns, index = SampleColumns(*zip(*run, strict=True)), 0
            while index < len(columns.seqs):
                batch, index = packer.add_columns(columns, index)
                batches.append(batch)
    return [batch for batch in [*batches, packer.flush()] if batch is not None]


@given(
    st.one_of(
        entry_streams,
        st.builds(mostly_regular, st.integers(0, 2**32).map(random.Random), st.integers(1, 600)),
    ),
    st.integers(MIN_PAYLOAD, 512),
    st.integers(1, 700),
)
def test_bulk_packing_gives_the_same_batches(
    entries: list[Entry], max_payload: int, read: int
) -> None:
    assert pack_in_reads(entries, max_payload, read) == pack_records(entries, max_payload)


@pytest.mark.parametrize(
    ("entries", "fault"),
    [
        ([Sample(5, T0, Metric.STEPS, 1), Sample(5, T0, Metric.STEPS, 1)], "does not follow 5"),
        ([Gap(5, 9), Sample(9, T0, Metric.STEPS, 1)], "does not follow 9"),
        ([Gap(9, 5)], "empty"),
        ([Sample(-1, T0, Metric.STEPS, 1)], "does not follow"),
        ([Sample(1 << 32, T0, Metric.STEPS, 1)], "above"),
        ([Sample(1, -1, Metric.STEPS, 1)], "timestamp"),
        ([Sample(1, T0, Metric.STEPS, 1 << 31)], "raw value"),
    ],
)
def test_packer_refuses_entries_the_wire_cannot_carry(entries: list[Entry], fault: str) -> None:
    with pytest.raises(errors.RangeError, match=fault):
        pack_records(entries, 244)
    with pytest.raises(errors.RangeError, match=fault):
        pack_in_reads(entries, 244, 10)


def test_refused_entry_keeps_the_open_batch() -> None:
    packer = BatchPacker(244)
    assert packer.add(Sample(1, T0, Metric.STEPS, 1)) is None
    with pytest.raises(errors.RangeError, match="timestamp"):
        packer.add(Sample(1000, -5, Metric.STEPS, 1))  # would have opened a new batch
    batch = packer.flush()
    assert batch is not None
    assert decode_batch(batch).entries == (Sample(1, T0, Metric.STEPS, 1),)


def test_payload_limits() -> None:
    with pytest.raises(errors.RangeError, match="max payload"):
        BatchPacker(MIN_PAYLOAD - 1)
    with pytest.raises(errors.RangeError, match="max payload"):
        BatchPacker(513)
    with pytest.raises(errors.RangeError, match="do not fit one batch"):
        HistoryBatch(tuple(regular_day(100))).encode()
    with pytest.raises(errors.LengthError, match="at least one entry"):
        HistoryBatch(()).encode()


def _outcome(decode: Callable[[bytes, int, int], list[Entry]], data: bytes) -> object:
    base_seq, base_ts = struct.unpack_from("<II", data)
    try:
        return decode(data, base_seq, base_ts)
    except errors.ProtocolError as error:
        return type(error), str(error)


# Compact-only bodies, hostile fields included: reserved metrics, a skip on the first
# entry, timestamps running past 32 bits, seqs past SEQ_MAX.
u32 = st.integers(0, 0xFFFF_FFFF)
compact_batches = st.builds(
    lambda seq, ts, rows: struct.pack("<II", seq, ts) + b"".join(rows),
    u32,
    u32,
    st.lists(
        st.builds(
            lambda tag, skip, delta, raw: struct.pack("<BBHh", tag, skip, delta, raw),
            st.integers(0, history.WIDE_FLAG - 1),
            st.integers(0, 0xFF),
            st.integers(0, 0xFFFF),
            st.integers(-(1 << 15), (1 << 15) - 1),
        ),
        min_size=1,
        max_size=(history.MAX_PAYLOAD - 8) // 6,
    ),
)


@given(compact_batches)
@example(struct.pack("<IIBBHhBBHh", 7, 0xFFFF_FFFE, 1, 0, 0, 60, 1, 0, 2, 61))  # ts 2**32
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 3, 0, 60, 2, 0, 2, 61))  # first entry skips
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 0, 0, 60, 9, 1, 2, 61))  # reserved metric 9
def test_compact_fast_path_decodes_as_the_general_one(data: bytes) -> None:
    """What the agent decodes most, the all-compact batch, takes its own path: same
    entries, same errors as the general decoder."""
    assert _outcome(history._decode_compact, data) == _outcome(history._decode_mixed, data)


def test_batches_past_the_last_seq_are_refused() -> None:
    compact = struct.pack("<IIBBHhBBHh", 0xFFFF_FFFF, T0, 1, 0, 0, 60, 1, 0, 1, 61)
    gap_last = struct.pack("<IIBBHhBBI", 0xFFFF_FFF0, T0, 1, 0, 0, 60, 0x80, 0, 0x20)
    for data in (compact, gap_last):
        with pytest.raises(errors.RangeError, match="above"):
            decode_batch(data)


def test_compact_fast_path_is_taken_only_for_all_compact_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unexpected(data: bytes, base_seq: int, base_ts: int) -> list[Entry]:
        raise AssertionError("wrong decoder")

    day = regular_day(80)
    (compact,) = pack_records(day, history.MAX_PAYLOAD)
    with monkeypatch.context() as patch:
        patch.setattr(history, "_decode_mixed", unexpected)
        assert decode_batch(compact).entries == tuple(day)
    with monkeypatch.context() as patch:
        patch.setattr(history, "_decode_compact", unexpected)
        assert decode_batch(KNOWN_WIRE).entries == KNOWN_ENTRIES  # gap and wide entries


def _run_outcome(data: bytes) -> tuple[Entry, ...] | None:
    """What ``decode_run`` makes of ``data``: its samples, or None for a batch it leaves
    to ``decode_batch`` (it never raises)."""
    run = history.decode_run(data)
    return None if run is None else tuple(run)


@given(compact_batches)
@example(struct.pack("<IIBBHhBBHh", 7, 0xFFFF_FFFE, 1, 0, 0, 60, 1, 0, 2, 61))  # ts 2**32
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 3, 0, 60, 2, 0, 2, 61))  # first entry skips
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 0, 0, 60, 2, 1, 2, 61))  # the second skips
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 0, 0, 60, 9, 0, 2, 61))  # reserved metric 9
@example(struct.pack("<IIBBHhBBHh", 7, T0, 1, 0, 1, 60, 2, 0, 2, 61))  # base ts not the first's
@example(struct.pack("<IIBBHhBBHh", 0xFFFF_FFFF, T0, 1, 0, 0, 60, 2, 0, 2, 61))  # past SEQ_MAX
def test_a_run_is_what_decode_batch_decodes_or_none(data: bytes) -> None:
    """``decode_run`` takes a compact batch at consecutive seqs as columns, with the same
    samples ``decode_batch`` gives; any other batch, refused or not, it leaves alone."""
    run = _run_outcome(data)
    try:
        general: tuple[Entry, ...] | None = decode_batch(data).entries
    except errors.ProtocolError:
        general = None  # refused
    if general is None or any(data[history._HEADER.size + 1 :: 6]):  # refused, or a skip
        assert run is None
    else:
        assert run == general


@given(entry_streams)
def test_runs_of_a_stream_decode_as_its_batches(entries: list[Entry]) -> None:
    for batch in pack_records(entries, history.MAX_PAYLOAD):
        run = history.decode_run(batch)
        if run is not None:
            assert tuple(run) == decode_batch(batch).entries
            assert run.seqs == range(run.first_seq, run.last_seq + 1)


def test_a_backfill_batch_is_a_run_and_any_other_is_not() -> None:
    day = regular_day(84)
    (compact,) = pack_records(day, history.MAX_PAYLOAD)
    run = history.decode_run(compact)
    assert run is not None and list(run) == day and run.first_seq == day[0].seq
    assert history.decode_run(KNOWN_WIRE) is None  # a gap, a skip and a wide record
    skipping = [*day[:10], *day[11:]]
    (with_a_skip,) = pack_records(skipping, history.MAX_PAYLOAD)
    assert history.decode_run(with_a_skip) is None
    assert list(decode_batch(with_a_skip).entries) == skipping
    for malformed in (b"", compact[:8], compact[:-1], compact + bytes(6) * 2):
        assert history.decode_run(malformed) is None
