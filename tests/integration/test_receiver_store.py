"""The receiver's stores, each on its real engine: the SQLite file and PostgreSQL (a
database of the test's own). What the receiver promises about storage holds on both:
duplicates absorbed, erasures honoured before and after the data arrives; PostgreSQL's
own parts (partitions, schema versions, a lost connection, its errors) on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from cloudreceiver.errors import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    SchemaTooNewError,
    StoreConfigError,
    StoreRefusedError,
    StoreUnreachableError,
)
from cloudreceiver.postgres import SCHEMA_VERSION
from cloudreceiver.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from cloudreceiver.store import ReceiverStore, open_store
from phoneagent.cli import main
from phoneagent.upload.payload import EraseMessage, PayloadError, Topics, encode_batch
from protocol.metrics import Metric
from tests.postgres import database_url, terminate_connections

USER = Topics("watchsync", "eu", "user-a")
OTHER = Topics("watchsync", "eu", "user-b")
DEV = "device-a"
T0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def batch(seqs: range, metric: Metric = Metric.HEART_RATE, t0: int = T0) -> bytes:
    return encode_batch(1, [(s, int(metric), t0 + s, s % 200) for s in seqs])


def erase_data(request_id: int, bound: int | None, metric: str | None = None) -> EraseMessage:
    return EraseMessage(request_id, "data", DEV, metric, None, None, {DEV: bound})


@pytest.fixture
async def store(receiver_database: str) -> AsyncIterator[ReceiverStore]:
    opened = await open_store(receiver_database)
    yield opened
    await opened.close()


async def seqs(store: ReceiverStore) -> list[int]:
    return [seq for _device, seq, *_ in await store.samples()]


async def test_duplicates_and_overlaps_are_stored_once(store: ReceiverStore) -> None:
    assert await store.store_batch(USER, DEV, batch(range(100))) == 100
    assert await store.store_batch(USER, DEV, batch(range(100))) == 0
    assert await store.store_batch(USER, DEV, batch(range(50, 150))) == 50
    assert await seqs(store) == list(range(150))
    assert await store.count() == 150
    assert (await store.samples())[7] == (DEV, 7, int(Metric.HEART_RATE), T0 + 7, 7)


async def test_erasure_after_arrival_deletes_and_keeps_late_batches_out(
    store: ReceiverStore,
) -> None:
    await store.store_batch(USER, DEV, batch(range(100)))
    await store.store_batch(OTHER, "device-b", batch(range(10)))
    assert await store.erase(USER, erase_data(1, 99)) == 100
    # A batch of the erased range still in flight (redelivered, or at another receiver).
    assert await store.store_batch(USER, DEV, batch(range(100))) == 0
    # Past the bound is new data; another user's data was never touched.
    assert await store.store_batch(USER, DEV, batch(range(100, 110))) == 10
    assert [(d, s) for d, s, *_ in await store.samples()] == [
        *((DEV, s) for s in range(100, 110)),
        *(("device-b", s) for s in range(10)),
    ]


async def test_erasure_before_arrival_drops_what_it_covers(store: ReceiverStore) -> None:
    assert await store.erase(USER, erase_data(1, 49, metric="heart_rate")) == 0
    assert await store.store_batch(USER, DEV, batch(range(100))) == 50
    assert await store.store_batch(USER, DEV, batch(range(100, 120), Metric.STEPS)) == 20
    # Steps were not asked to be erased: the same seqs with another metric are kept.
    assert await store.store_batch(USER, DEV, batch(range(10), Metric.STEPS)) == 10
    assert await seqs(store) == [*range(10), *range(50, 120)]


async def test_account_erasure_removes_devices_and_all_later_data(store: ReceiverStore) -> None:
    await store.store_info(USER, DEV, b'{"model": "WS-1", "firmware": "1.2"}')
    await store.store_info(OTHER, "device-b", b'{"model": "WS-2", "firmware": "2.0"}')
    await store.store_batch(USER, DEV, batch(range(30)))
    account = EraseMessage(2, "account", None, None, None, None, {DEV: None})
    assert await store.erase(USER, account) == 30
    assert await store.store_batch(USER, "device-new", batch(range(5))) == 0
    assert await store.samples() == []
    assert await store.devices() == [("device-b", "WS-2", "2.0")]


async def test_a_malformed_batch_is_refused_and_stores_nothing(store: ReceiverStore) -> None:
    """The receiver drops (and acknowledges) a ``PayloadError``; anything else would end it."""
    past_64_bits = encode_batch(1, [(2**63 - 1, 1, T0, 1), (2**63 + 4, 1, T0 + 1, 1)])
    for payload in (past_64_bits, b"not a batch"):
        with pytest.raises(PayloadError):
            await store.store_batch(USER, DEV, payload)
    assert await store.store_batch(USER, DEV, batch(range(3))) == 3  # and goes on
    assert await seqs(store) == [0, 1, 2]


async def partitions(url: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT c.relname, (SELECT count(*) FROM samples s WHERE s.tableoid = c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'samples'::regclass"
        )
        return {str(name): int(count) for name, count in await cursor.fetchall()}


async def test_postgres_partitions_by_month_on_demand(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    try:
        assert await partitions(postgres_url) == {"samples_default": 0}
        end_of_march = int(datetime(2026, 3, 31, 23, 59, tzinfo=UTC).timestamp())
        await store.store_batch(USER, DEV, batch(range(100), t0=end_of_march))  # into April
        await store.store_batch(USER, DEV, batch(range(100, 110), t0=86_400))  # 1970: a bad clock
        assert await partitions(postgres_url) == {
            "samples_default": 10,
            "samples_2026_03": 60,
            "samples_2026_04": 40,
        }
        # A second receiver knows nothing of them yet and finds them there.
        again = await open_store(postgres_url)
        assert await again.store_batch(USER, DEV, batch(range(200, 210), t0=end_of_march)) == 10
        await again.close()
    finally:
        await store.close()


async def test_postgres_schema_is_versioned_and_a_newer_one_refused(postgres_url: str) -> None:
    await (await open_store(postgres_url)).close()
    await (await open_store(postgres_url)).close()  # a second start migrates nothing
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        rows = await (await conn.execute("SELECT version FROM schema_version")).fetchall()
        assert rows == [(SCHEMA_VERSION,)]
        await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNewError) as refused:
        await open_store(postgres_url)
    assert refused.value.exit_code == EXIT_USAGE
    assert str(refused.value) == (
        f"the receiver database has schema version {SCHEMA_VERSION + 1}, newer than this"
        f" receiver's {SCHEMA_VERSION}: upgrade the receiver"
    )


async def test_sqlite_schema_is_versioned_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "receiver.db"
    store = await open_store(path)
    await store.store_batch(USER, DEV, batch(range(3)))
    await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SQLITE_SCHEMA_VERSION,)
        conn.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNewError) as refused:
        await open_store(path)
    assert refused.value.exit_code == EXIT_USAGE
    assert "newer than this receiver's" in str(refused.value)


async def test_sqlite_file_from_before_the_version_count_opens_with_its_data(
    tmp_path: Path,
) -> None:
    """A file written before ``user_version`` was kept (its tables, version 0)."""
    path = tmp_path / "receiver.db"
    store = await open_store(path)
    await store.store_batch(USER, DEV, batch(range(5)))
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 0")
    store = await open_store(path)
    try:
        assert await seqs(store) == [0, 1, 2, 3, 4]
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["not a database", "no such directory"])
def test_cloud_receiver_unusable_sqlite_file_is_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "receiver.db"
    if kind == "not a database":
        path.write_bytes(b"these are not the pages of an SQLite file" * 100)
    else:
        path = tmp_path / "missing" / "receiver.db"
    result = CliRunner().invoke(
        main, ["cloud-receiver", "--broker", "127.0.0.1", "--port", "1", "--database", str(path)]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.startswith(f"Error: cannot use {path} as the receiver's database: ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


async def test_postgres_batch_waits_for_an_erasure_in_progress_at_another_receiver(
    postgres_url: str,
) -> None:
    """Another receiver's erasure holds the user's lock until it commits its tombstone: a
    batch arriving meanwhile must wait and then drop what the tombstone covers. Without
    the lock it would read the tombstones before that commit and bring erased data back."""
    store = await open_store(postgres_url)
    other = await psycopg.AsyncConnection.connect(postgres_url, autocommit=True)
    try:
        async with other.transaction():
            await other.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("user-a",)
            )
            arriving = asyncio.create_task(store.store_batch(USER, DEV, batch(range(100))))
            while not arriving.done() and not await lock_waiters(other):  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the batch is another connection's, on the server
            await other.execute(
                "INSERT INTO tombstones VALUES (%s, %s, %s)",
                ("user-a", 1, erase_data(1, 99).encode().decode()),
            )
        assert await arriving == 0
        assert await store.samples() == []
    finally:
        await other.close()
        await store.close()


async def lock_waiters(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    row = await cursor.fetchone()
    return int(str(row[0])) if row else 0


async def test_postgres_refusal_the_operator_must_cure_is_a_receiver_error(
    postgres_url: str,
) -> None:
    store = await open_store(postgres_url)
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
            await conn.execute("DROP TABLE tombstones")
        with pytest.raises(StoreRefusedError) as refused:
            await store.store_batch(USER, DEV, batch(range(10)))
        assert str(refused.value).startswith('PostgreSQL refused: relation "tombstones"')
        assert refused.value.exit_code == 1
    finally:
        await store.close()


async def test_postgres_lost_connection_is_retried_and_loses_nothing(postgres_url: str) -> None:
    said: list[str] = []
    store = await open_store(postgres_url, say=said.append)
    try:
        await store.store_batch(USER, DEV, batch(range(100)))
        assert terminate_connections(postgres_url) == 1  # what a server restart looks like
        assert await store.store_batch(USER, DEV, batch(range(100, 200))) == 100
        assert await seqs(store) == list(range(200))
        assert said[0].startswith("database connection lost (")
        assert said[-1] == "database connection restored"
    finally:
        await store.close()


async def test_postgres_errors_name_the_cause_and_never_the_password() -> None:
    with pytest.raises(StoreUnreachableError) as away:
        await open_store("postgresql://postgres:s3cret@127.0.0.1:1/receiver")
    assert away.value.exit_code == EXIT_UNREACHABLE
    assert "Connection refused" in str(away.value)
    with pytest.raises(StoreConfigError) as unknown:
        await open_store(database_url("watchsync_no_such_database"))
    assert 'database "watchsync_no_such_database" does not exist' in str(unknown.value)
    with pytest.raises(StoreConfigError) as malformed:
        await open_store("postgresql://postgres:s3cret@[::1/receiver")
    for error in (away.value, unknown.value, malformed.value):
        assert "s3cret" not in str(error) and "\n" not in str(error)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("postgresql://postgres@127.0.0.1:1/receiver", EXIT_UNREACHABLE),
        ("postgresql://postgres@127.0.0.1:5432/watchsync_no_such_database", EXIT_USAGE),
    ],
)
def test_cloud_receiver_database_errors_are_one_line(url: str, code: int) -> None:
    """The broker is never reached: the database is checked first."""
    result = CliRunner().invoke(
        main, ["cloud-receiver", "--broker", "127.0.0.1", "--port", "1", "--database", url]
    )
    assert result.exit_code == code, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert "Traceback" not in result.output
