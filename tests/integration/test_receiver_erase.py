"""The receiver's erasure reaches exactly as far as the request's bounds, whatever order
a receiver group commits the request and the batches in (both stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cloudreceiver.store import ReceiverStore, open_store
from phoneagent.upload.payload import EraseMessage, Topics, encode_batch
from protocol.metrics import Metric

TOPICS = Topics("watchsync", "eu", "user-1")


def batch(first: int, count: int) -> bytes:
    rows = [
        (seq, int(Metric.HEART_RATE), 1_700_000_000 + seq, 60)
        for seq in range(first, first + count)
    ]
    return encode_batch(7, rows)


def erase(bounds: dict[str, int | None]) -> EraseMessage:
    return EraseMessage(1, "data", None, None, None, None, bounds)


@pytest.fixture
async def db(receiver_database: str) -> AsyncIterator[ReceiverStore]:
    store = await open_store(receiver_database)
    yield store
    await store.close()


async def seqs(db: ReceiverStore) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for device, seq, *_ in await db.samples():
        held.setdefault(device, []).append(seq)
    return held


async def test_a_batch_past_the_bound_committed_before_the_erasure_survives_it(
    db: ReceiverStore,
) -> None:
    await db.store_batch(TOPICS, "dev-a", batch(0, 10))
    await db.store_batch(TOPICS, "dev-b", batch(0, 10))
    # Uploaded after the request left (past its bound), committed first by another member.
    await db.store_batch(TOPICS, "dev-a", batch(10, 5))
    assert await db.erase(TOPICS, erase({"dev-a": 9, "dev-b": None})) == 20
    await db.store_batch(TOPICS, "dev-a", batch(5, 10))  # a late copy: the tombstone drops 5..9
    assert await seqs(db) == {"dev-a": list(range(10, 15))}


async def test_a_device_outside_the_bounds_keeps_its_data(db: ReceiverStore) -> None:
    await db.store_batch(TOPICS, "dev-a", batch(0, 3))
    assert await db.erase(TOPICS, erase({})) == 0
    assert await seqs(db) == {"dev-a": [0, 1, 2]}
