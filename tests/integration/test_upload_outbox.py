"""The uploader's reader: batches built from one aggregate query equal the per-row encoding."""

from __future__ import annotations

import json
import random

import pytest

from phoneagent.store import Store, db
from phoneagent.upload.outbox import read_chunk
from phoneagent.upload.payload import decode_batch, encode_batch
from protocol.metrics import Metric, Sample
from tests.integration.conftest import KEY

WATCH = "F0:11:22:33:44:66"
ID_END = 13  # magic, version, count, batch id: the random id differs per encoding


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


def rows_after(store: Store, after: int) -> list[tuple[int, int, int, int]]:
    return [
        (s.seq, int(s.metric), s.timestamp, s.raw)
        for s in sorted(store.iter_samples(WATCH), key=lambda s: s.seq)
        if s.seq > after
    ]


def check(store: Store, after: int, batches: int) -> None:
    device = store.get_device(WATCH)
    assert device is not None
    chunk = read_chunk(store, device, after, 64, batches, "eu", lambda _: None)
    rows = rows_after(store, after)[: 64 * batches]
    assert chunk.refusal is None
    assert len(chunk.batches) == -(-len(rows) // 64)
    for i, batch in enumerate(chunk.batches):
        part = rows[i * 64 : (i + 1) * 64]
        assert (batch.last_seq, batch.count) == (part[-1][0], len(part))
        assert batch.payload[ID_END:] == encode_batch(0, part)[ID_END:]
        samples = decode_batch(batch.payload).samples
        assert [(s.seq, int(s.metric), s.timestamp, s.raw) for s in samples] == part


def test_chunk_matches_the_row_encoding(store: Store) -> None:
    check(store, -1, 5)
    check(store, 2500, 4)
    check(store, 4990, 3)  # past the last sample: no batch


def test_rows_aggregated_out_of_order_are_put_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite does not promise group_concat's order; a reversed one changes nothing."""
    reversed_rows = db._UPLOAD_CHUNK.replace(
        " FROM samples WHERE", " FROM (SELECT * FROM samples ORDER BY seq DESC LIMIT -1) WHERE", 1
    )
    conn = db.connect(store.path, KEY)
    query = {"device": WATCH, "after": 100, "limit": 300, "cloud": "", "crossing": ""}
    aggregated = conn.execute(reversed_rows, query).fetchone()
    conn.close()
    seqs = json.loads(f"[{aggregated[4]}]")
    assert len(seqs) == 300 and seqs == sorted(seqs, reverse=True)  # the order is broken
    monkeypatch.setattr(db, "_UPLOAD_CHUNK", reversed_rows)
    _, columns = store.upload_chunk(WATCH, 100, 300, "", "")
    assert columns[0] == sorted(columns[0])
    check(store, 100, 5)


def test_refusal_stops_the_chunk_between_batches(store: Store) -> None:
    device = store.get_device(WATCH)
    assert device is not None
    answers = iter([None, None, "cloud sync is off"])
    chunk = read_chunk(store, device, -1, 64, 5, "eu", lambda _: next(answers))
    assert len(chunk.batches) == 2
    assert chunk.refusal == "cloud sync is off"
