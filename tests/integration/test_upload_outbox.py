"""The uploader's reader: batches built from one aggregate query (packed by SQLite, or as
columns when a value does not fit the packing) carry exactly the stored rows."""

from __future__ import annotations

import json
import random

import pytest

from phoneagent.store import PackedSamples, Store, db
from phoneagent.upload.outbox import read_chunk
from phoneagent.upload.payload import SAMPLE_SIZE, PayloadError, decode_batch, encode_batch
from protocol.metrics import Metric, Sample
from tests.integration.conftest import KEY

WATCH = "F0:11:22:33:44:66"
OTHER = "F0:11:22:33:44:77"


@pytest.fixture
def store(store: Store) -> Store:
    """The shared store with seq holes (opted-out or erased samples) and timestamps that go
    back as well."""
    store.add_device(WATCH)
    rng = random.Random(5)
    seqs = sorted(rng.sample(range(10, 5000), 1000))
    store.store_batch(
        WATCH,
        [
            Sample(seq, 1_700_000_000 + rng.randrange(-900, 900), rng.choice(list(Metric)), raw)
            for seq, raw in zip(seqs, rng.choices(range(-(2**31), 2**31), k=1000), strict=True)
        ],
    )
    return store


def rows_after(store: Store, after: int, device: str = WATCH) -> list[tuple[int, int, int, int]]:
    return [
        (s.seq, int(s.metric), s.timestamp, s.raw)
        for s in sorted(store.iter_samples(device), key=lambda s: s.seq)
        if s.seq > after
    ]


def check(store: Store, after: int, batches: int, device: str = WATCH) -> None:
    record = store.get_device(device)
    assert record is not None
    chunk = read_chunk(store, record, after, 64, batches, "eu", lambda _: None)
    rows = rows_after(store, after, device)[: 64 * batches]
    assert chunk.refusal is None
    assert len(chunk.batches) == -(-len(rows) // 64)
    for i, batch in enumerate(chunk.batches):
        part = rows[i * 64 : (i + 1) * 64]
        assert (batch.last_seq, batch.count) == (part[-1][0], len(part))
        assert len(batch.payload) == len(encode_batch(0, part))
        samples = decode_batch(batch.payload).samples
        assert [(s.seq, int(s.metric), s.timestamp, s.raw) for s in samples] == part


def test_chunk_matches_the_row_encoding(store: Store) -> None:
    check(store, -1, 5)
    check(store, 2500, 4)
    check(store, 4990, 3)  # past the last sample: no batch


def test_the_common_chunk_is_packed_by_sqlite(store: Store) -> None:
    """Seq holes, timestamps that go back and raw values at both ends of 32 bits fit the
    packing: no Python code per sample reads them."""
    _, samples = store.upload_chunk(WATCH, 100, 300, "", "")
    assert isinstance(samples, PackedSamples)
    assert len(samples.rows) == 300 * SAMPLE_SIZE


def test_the_packing_carries_every_edge_value(store: Store) -> None:
    """Offsets at both ends of their fields: ts from -2**31 to 2**31 - 1 around the first
    sample's, raw at both ends of i32, a seq 2**32 - 1 past the first, the largest metric."""
    store.add_device(OTHER)
    base = 1_700_000_000
    edges = [
        Sample(10, base, Metric.STEPS, -(2**31)),
        Sample(11, base + 2**31 - 1, max(Metric), 2**31 - 1),
        Sample(12, base - 2**31, Metric.HEART_RATE, 0),
        Sample(10 + 2**32 - 1, base + 1, Metric.STEPS, -1),
    ]
    store.store_batch(OTHER, edges)
    _, samples = store.upload_chunk(OTHER, -1, 64, "", "")
    assert isinstance(samples, PackedSamples)
    check(store, -1, 1, OTHER)


def test_values_beyond_the_packing_are_read_as_columns(store: Store) -> None:
    """A timestamp 3e9 s after the chunk's first (the watch's clock was set) does not fit
    a 32-bit offset from it, but does from its own batch's base, and so do 0 and 2**32 - 1
    in one batch (a hostile watch's u32 stamps: they ended the uploader with PayloadError);
    a raw value beyond 32 bits fits no batch, and the encoder says so."""
    store.add_device(OTHER)
    jump = [
        Sample(seq, 1_000 + seq + (3_000_000_000 if seq >= 64 else 0), Metric.STEPS, seq)
        for seq in range(128)
    ]
    jump += [Sample(128, 0, Metric.STEPS, 1), Sample(129, 2**32 - 1, Metric.STEPS, 2)]
    store.store_batch(OTHER, jump)
    _, samples = store.upload_chunk(OTHER, -1, 130, "", "")
    assert not isinstance(samples, PackedSamples)
    check(store, -1, 3, OTHER)
    store.store_batch(OTHER, [Sample(200, 5_000, Metric.STEPS, 2**31)])
    record = store.get_device(OTHER)
    assert record is not None
    with pytest.raises(PayloadError, match="does not fit"):
        read_chunk(store, record, 129, 64, 1, "eu", lambda _: None)


@pytest.mark.parametrize("reverse", ["packed", "both"])
def test_rows_aggregated_out_of_order_are_read_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch, reverse: str
) -> None:
    """SQLite does not promise group_concat's order: a packed chunk out of order is read
    again as columns ("packed"), and columns out of order are sorted ("both")."""
    conn = db.connect(store.path, KEY)
    query = {"device": WATCH, "after": 100, "limit": 300, "cloud": "", "crossing": ""}
    names = ["_UPLOAD_PACKED", "_UPLOAD_COLUMNS"] if reverse == "both" else ["_UPLOAD_PACKED"]
    for name in names:
        reversed_rows = getattr(db, name).replace(
            " samples AS s WHERE", " (SELECT * FROM samples ORDER BY seq DESC LIMIT -1) AS s WHERE"
        )
        assert reversed_rows != getattr(db, name)
        if name == "_UPLOAD_COLUMNS":
            seqs = json.loads(f"[{conn.execute(reversed_rows, query).fetchone()[4]}]")
            assert len(seqs) == 300 and seqs == sorted(seqs, reverse=True)  # the order is broken
        monkeypatch.setattr(db, name, reversed_rows)
    conn.close()
    _, columns = store.upload_chunk(WATCH, 100, 300, "", "")
    assert not isinstance(columns, PackedSamples)
    assert list(columns[0]) == sorted(columns[0])
    check(store, 100, 5)


def test_refusal_stops_the_chunk_between_batches(store: Store) -> None:
    device = store.get_device(WATCH)
    assert device is not None
    answers = iter([None, None, "cloud sync is off"])
    chunk = read_chunk(store, device, -1, 64, 5, "eu", lambda _: next(answers))
    assert len(chunk.batches) == 2
    assert chunk.refusal == "cloud sync is off"
