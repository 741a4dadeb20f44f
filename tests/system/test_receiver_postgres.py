"""The receiver on PostgreSQL while its database connection is lost again and again
mid-upload: it retries, acknowledges nothing it has not committed, and ends with every
sample exactly once.

The PostgreSQL server is shared with every other test on the machine, so the test ends
the receiver's backend connections (``pg_terminate_backend``) instead of restarting it:
to the client that is what a restart is (the connection drops; the next one is new).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from phoneagent.backoff import Backoff
from phoneagent.store import Store
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.uploader import Uploader, policy_refusal
from tests.mosquitto import Broker
from tests.postgres import terminate_connections
from tests.system.test_upload import (
    endpoint_for,
    expected,
    fill,
    make_account,
    open_store,
    receiving,
    wait_for_samples,
)

pytestmark = pytest.mark.system

SAMPLES = 3000  # 30 batches
EVERY = 5  # batches between two lost connections


async def test_lost_database_connections_lose_and_duplicate_nothing(
    broker: Broker, tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, SAMPLES)
    endpoint = endpoint_for(broker)
    checks = 0
    terminated = 0

    def database_drops(s: Store, e: Endpoint) -> str | None:
        """Every 5th batch check ends the receiver's connection: earlier batches are still
        in flight, on the wire or inside a transaction."""
        nonlocal checks, terminated
        checks += 1
        if checks % EVERY == 0:
            terminated += terminate_connections(postgres_url)
        return policy_refusal(s, e)

    uploader = Uploader(
        store, endpoint, window=4, backoff=Backoff(0.05, 0.2), refusal=database_drops
    )
    with caplog.at_level(logging.WARNING, logger="cloudreceiver"):
        async with receiving(endpoint, postgres_url) as db:
            stats = await uploader.drain()
            assert stats.samples == SAMPLES
            await wait_for_samples(db, lambda rows: len(rows) == SAMPLES, "every sample stored")
            assert await db.samples() == expected(store, samples)  # each exactly once
    assert terminated >= 1
    lost = [r.message for r in caplog.records if "database connection lost" in r.message]
    assert lost, "the receiver never noticed a lost connection"
    store.close()
