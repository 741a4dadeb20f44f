"""The store on a disk that fills (a real small tmpfs): a write is refused whole as
``StoreFullError``, the connection stays usable, and the same write succeeds once space
is freed. Opening on a full disk is "full", never "wrong key"."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from phoneagent.store import DbKey, Store, StoreFullError
from protocol.metrics import Metric, Sample
from tests.disk import fill

KEY = DbKey("3c" * 32)
WATCH = "F0:00:00:00:00:01"


def samples(first: int, count: int) -> list[Sample]:
    rng = random.Random(first)  # incompressible enough to need pages
    return [
        Sample(seq, 1_700_000_000 + seq, Metric.HEART_RATE, rng.randrange(1 << 30))
        for seq in range(first, first + count)
    ]


def test_a_full_disk_refuses_the_whole_batch_and_the_same_batch_goes_later(
    small_disk: Path,
) -> None:
    store = Store.open(small_disk / "agent", KEY)
    try:
        store.add_device(WATCH)
        store.store_batch(WATCH, samples(0, 100))
        filler = fill(small_disk)
        batch = samples(100, 20_000)
        with pytest.raises(StoreFullError, match="is full: free some space"):
            store.store_batch(WATCH, batch)
        assert store.next_seq(WATCH) == 100  # nothing of it is half-stored
        filler.unlink()
        result = store.store_batch(WATCH, batch)  # no transaction left open
        assert (result.new, result.next_seq) == (20_000, 20_100)
    finally:
        store.close()


def test_a_live_commit_is_made_durable_on_a_full_disk(small_disk: Path) -> None:
    """The checkpoint cannot grow the database file; syncing the log is enough, so the
    engine may still acknowledge what it committed (the log, reused, had room)."""
    store = Store.open(small_disk / "agent", KEY)
    try:
        store.add_device(WATCH)
        store.store_batch(WATCH, samples(0, 20_000))
        store.make_durable()  # the log is copied out and starts again from its beginning
        store.store_batch(WATCH, samples(20_000, 100))
        filler = fill(small_disk)
        store.store_batch(WATCH, samples(20_100, 100), durable=False)
        store.make_durable()
        assert store.next_seq(WATCH) == 20_200
        filler.unlink()
    finally:
        store.close()
    with Store.open(small_disk / "agent", KEY) as again:
        assert again.next_seq(WATCH) == 20_200


def test_opening_on_a_full_disk_says_full_not_wrong_key(small_disk: Path) -> None:
    Store.open(small_disk / "agent", KEY).close()  # its shared-memory file goes with it
    filler = fill(small_disk)
    with pytest.raises(StoreFullError, match="is full"):
        Store.open(small_disk / "agent", KEY)
    filler.unlink()
    Store.open(small_disk / "agent", KEY).close()


def test_a_ledger_write_on_a_full_disk_is_refused_whole_too(small_disk: Path) -> None:
    """The privacy tables go through the same write path as the samples."""
    store = Store.open(small_disk / "agent", KEY)
    try:
        store.add_device(WATCH)
        rng = random.Random(7)  # a disclosure row of incompressible pages
        categories = [rng.randbytes(32).hex() for _ in range(4000)]
        filler = fill(small_disk)
        with pytest.raises(StoreFullError, match="is full: free some space"):
            store.ledger.record_disclosure(
                "cloud:eu", "cloud sync", categories, 1, user_request=False
            )
        assert store.ledger.disclosures() == []
        filler.unlink()
        store.ledger.record_disclosure("cloud:eu", "cloud sync", categories, 1, user_request=False)
        assert [d.categories for d in store.ledger.disclosures()] == [tuple(categories)]
    finally:
        store.close()
