"""The receiver on PostgreSQL while its database goes away again and again mid-upload:
it retries, acknowledges nothing it has not committed, and ends with every sample exactly
once.

Two ways to lose the database: the shared server (which other tests use at the same
time) is never restarted, so there the test ends the receiver's backend connections
(``pg_terminate_backend``, what a restart looks like to a client); and a server of the
test's own (``postgres_server``) is really restarted (``pg_ctl restart -m fast``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from phoneagent.backoff import Backoff
from phoneagent.store.ledger import UploadConsents
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.uploader import Uploader, policy_refusal
from tests.mosquitto import Broker
from tests.postgres import PrivateServer, terminate_connections
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


@dataclass(frozen=True)
class Outage:
    url: str  # the receiver's database
    cause: Callable[[], object]  # makes the receiver lose its connection


@pytest.fixture(params=["terminate", "restart"])
def outage(request: pytest.FixtureRequest) -> Outage:
    if request.param == "terminate":
        url = str(request.getfixturevalue("postgres_url"))
        return Outage(url, lambda: terminate_connections(url))
    server: PrivateServer = request.getfixturevalue("postgres_server")
    return Outage(server.url, server.restart)


async def test_lost_database_loses_and_duplicates_nothing(
    broker: Broker, tmp_path: Path, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, SAMPLES)
    endpoint = endpoint_for(broker)
    checks = 0

    def database_goes_away(consents: UploadConsents | None, e: Endpoint) -> str | None:
        """Every 5th batch check: earlier batches are still in flight, on the wire or
        inside the receiver's transaction."""
        nonlocal checks
        checks += 1
        if checks % EVERY == 0:
            outage.cause()
        return policy_refusal(consents, e)

    uploader = Uploader(
        store, endpoint, window=4, backoff=Backoff(0.05, 0.2), refusal=database_goes_away
    )
    with caplog.at_level(logging.WARNING, logger="cloudreceiver"):
        async with receiving(endpoint, outage.url) as db:
            stats = await uploader.drain()
            assert stats.samples == SAMPLES
            await wait_for_samples(db, lambda rows: len(rows) == SAMPLES, "every sample stored")
            assert await db.samples() == expected(store, samples)  # each exactly once
    assert checks >= EVERY
    lost = [r.message for r in caplog.records if "database connection lost" in r.message]
    assert lost, "the receiver never noticed a lost connection"
    store.close()
