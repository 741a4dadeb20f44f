"""The store for scale: PostgreSQL, shared by any number of receivers (psycopg 3, async).

- **De-duplication**: ``samples`` is keyed by (device, seq, ts) and every insert is
  ``ON CONFLICT DO NOTHING``. PostgreSQL wants the partition key in every unique key of a
  partitioned table; a sample's timestamp never changes once the watch recorded it (the
  agent resends the stored sample), so this is the (device pseudonym, seq) key of the
  SQLite store.
- **Batched**: one message's samples go in one multi-row ``INSERT ... SELECT FROM
  unnest(arrays)``: one statement and one round trip however many samples.
- **Time-partitioned**: declarative range partitions by month of ``ts``, created on
  demand (under an advisory lock, so receivers do not race), from 2000 to 2100; a
  timestamp outside that (a watch clock gone wrong) lands in ``samples_default``.
- **Erasures** as in the SQLite store: delete, keep a tombstone, drop late batches it
  covers. A batch and an erasure of the same user serialise on an advisory lock
  (batches share it, an erasure takes it alone), so a batch still in flight at another
  receiver either commits before the erasure deletes or reads its tombstone after.
- **Versioned schema**: ``schema_version`` holds how many of ``MIGRATIONS`` ran; a
  receiver applies the missing ones at start and refuses a newer database.
- **A lost connection** (server restart, ``pg_terminate_backend``, failover) is retried
  with the receiver's back-off, reconnecting; the transaction runs again whole. The
  receiver acknowledges a message to the broker only after the call returns, so nothing
  is lost; a commit whose answer was lost runs twice, which the idempotent inserts absorb
  (an erasure run twice confirms 0 deleted the second time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql

from cloudreceiver.errors import (
    SchemaTooNewError,
    StoreConfigError,
    StoreRefusedError,
    StoreUnreachableError,
)
from cloudreceiver.retry import one_line, retrying
from cloudreceiver.store import (
    DeviceRow,
    SampleRow,
    erase_filters,
    erase_reach,
    samples_to_keep,
)
from phoneagent.upload.payload import (
    EraseMessage,
    PayloadError,
    Topics,
    decode_batch,
    decode_json,
)

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[tuple[Any, ...]]
T = TypeVar("T")

CONNECT_TIMEOUT_S = 10
# Advisory lock keys of the receiver's own (the per-user ones hash the user pseudonym).
MIGRATION_LOCK: Final = 0x5753_0001
PARTITION_LOCK: Final = 0x5753_0002
MONTHLY_FROM_YEAR = 2000
MONTHLY_UNTIL_YEAR = 2100

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: samples partitioned by month, devices, tombstones
        """CREATE TABLE samples (
            device text NOT NULL, seq bigint NOT NULL, account text NOT NULL,
            region text NOT NULL, metric smallint NOT NULL, ts bigint NOT NULL,
            raw integer NOT NULL, PRIMARY KEY (device, seq, ts)) PARTITION BY RANGE (ts)""",
        "CREATE INDEX samples_account ON samples (account)",
        "CREATE TABLE samples_default PARTITION OF samples DEFAULT",
        """CREATE TABLE devices (
            device text PRIMARY KEY, account text NOT NULL, model text, firmware text)""",
        """CREATE TABLE tombstones (
            account text NOT NULL, request_id bigint NOT NULL, body text NOT NULL,
            PRIMARY KEY (account, request_id))""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_INSERT = """INSERT INTO samples (device, seq, account, region, metric, ts, raw)
    SELECT %s, u.seq, %s, %s, u.metric, u.ts, u.raw
    FROM unnest(%s::bigint[], %s::smallint[], %s::bigint[], %s::integer[])
        AS u(seq, metric, ts, raw)
    ON CONFLICT DO NOTHING"""
_USER_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))"
_USER_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


class PostgresStore:
    """The receiver's PostgreSQL database (``ReceiverStore``); ``open`` it."""

    def __init__(self, dsn: str, conn: Connection, say: Callable[[str], None]) -> None:
        self._dsn = dsn
        self._conn = conn
        self._say = say
        self._one_at_a_time = asyncio.Lock()  # one connection: one transaction at a time
        self._partitions: set[tuple[int, int] | None] = {None}  # None: the default one

    @classmethod
    async def open(cls, dsn: str, *, say: Callable[[str], None] | None = None) -> PostgresStore:
        """Connect and migrate; a database that is down or wrong is an error at once."""
        conn = await connect(dsn)
        try:
            await migrate(conn)
        except psycopg.Error as error:  # e.g. no privilege to create the tables
            await conn.close()
            raise StoreConfigError(f"PostgreSQL refused the schema: {one_line(error)}") from None
        except BaseException:
            await conn.close()
            raise
        return cls(dsn, conn, say or log.warning)

    async def close(self) -> None:
        await self._conn.close()

    async def store_batch(self, topics: Topics, device: str, payload: bytes) -> int:
        def month_of(ts: int) -> tuple[int, int] | None:
            if not _MONTHLY_FROM <= ts < _MONTHLY_UNTIL:
                return None
            when = datetime.fromtimestamp(ts, UTC)
            return when.year, when.month

        async def insert(conn: Connection) -> int:
            await conn.execute(_USER_LOCK_SHARED, (topics.user,))
            rows = await conn.execute(
                "SELECT body FROM tombstones WHERE account = %s", (topics.user,)
            )
            erased = [EraseMessage.decode(str(body).encode()) for (body,) in await rows.fetchall()]
            kept = samples_to_keep(batch, device, erased)
            cursor = await conn.execute(
                _INSERT,
                (
                    device,
                    topics.user,
                    topics.region,
                    [s.seq for s in kept],
                    [int(s.metric) for s in kept],
                    [s.timestamp for s in kept],
                    [s.raw for s in kept],
                ),
            )
            return cursor.rowcount

        batch = decode_batch(payload)  # a malformed batch fails here, before any transaction
        await self._create_partitions({month_of(s.timestamp) for s in batch.samples})
        return await self._transaction(insert)

    async def store_info(self, topics: Topics, device: str, payload: bytes) -> None:
        info = decode_json(payload)

        async def upsert(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO devices VALUES (%s, %s, %s, %s) ON CONFLICT (device) DO UPDATE"
                " SET model = excluded.model, firmware = excluded.firmware",
                (device, topics.user, info.get("model"), info.get("firmware")),
            )

        await self._transaction(upsert)

    async def erase(self, topics: Topics, erase: EraseMessage) -> int:
        filters = erase_filters(erase)
        clauses = [
            sql.SQL("{} {} %s").format(sql.Identifier(c), sql.SQL(op)) for c, op, _ in filters
        ]
        params = [topics.user, *(value for _, _, value in filters)]
        reach = erase_reach(erase)
        if reach is not None:
            either = [sql.SQL(condition) for condition, _ in reach] or [sql.SQL("FALSE")]
            clauses.append(sql.SQL("({})").format(sql.SQL(" OR ").join(either)))
            params += [value for _, values in reach for value in values]
        where = sql.SQL(" AND ").join([sql.SQL("account = %s"), *clauses])

        async def delete(conn: Connection) -> int:
            await conn.execute(_USER_LOCK, (topics.user,))
            cursor = await conn.execute(
                sql.SQL("DELETE FROM samples WHERE {}").format(where), params
            )
            if erase.scope == "account":
                await conn.execute("DELETE FROM devices WHERE account = %s", (topics.user,))
            await conn.execute(
                "INSERT INTO tombstones VALUES (%s, %s, %s) ON CONFLICT (account, request_id)"
                " DO UPDATE SET body = excluded.body",
                (topics.user, erase.request_id, erase.encode().decode()),
            )
            return cursor.rowcount

        return await self._transaction(delete)

    async def samples(self) -> list[SampleRow]:
        async def read(conn: Connection) -> list[SampleRow]:
            cursor = await conn.execute(
                "SELECT device, seq, metric, ts, raw FROM samples ORDER BY device, seq"
            )
            return await cursor.fetchall()

        return await self._transaction(read)

    async def count(self) -> int:
        async def read(conn: Connection) -> int:
            row = await (await conn.execute("SELECT count(*) FROM samples")).fetchone()
            return 0 if row is None else int(row[0])

        return await self._transaction(read)

    async def devices(self) -> list[DeviceRow]:
        async def read(conn: Connection) -> list[DeviceRow]:
            cursor = await conn.execute("SELECT device, model, firmware FROM devices ORDER BY 1")
            return await cursor.fetchall()

        return await self._transaction(read)

    async def _create_partitions(self, months: set[tuple[int, int] | None]) -> None:
        missing = months - self._partitions
        if not missing:
            return

        async def create(conn: Connection) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            for month in sorted(m for m in missing if m is not None):
                await conn.execute(_partition_ddl(*month))

        await self._transaction(create)
        self._partitions |= missing

    async def _transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` in one transaction, run again whole on a new connection if the old
        one is lost, for as long as the database stays away. A value out of range (a seq
        past 64 bits) is the message's fault, ``PayloadError``: the receiver drops it.
        Any other refusal is the operator's to cure, ``StoreRefusedError``."""

        async def attempt() -> T:
            async with self._one_at_a_time:
                if self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                    )
                    self._say("database connection restored")
                async with self._conn.transaction():
                    return await work(self._conn)

        retry = retrying(psycopg.OperationalError, "database connection lost", self._say)
        try:
            result: T = await retry(attempt)
        except psycopg.DataError as error:
            raise PayloadError(f"value out of range: {one_line(error)}") from error
        except psycopg.Error as error:
            raise StoreRefusedError(f"PostgreSQL refused: {one_line(error)}") from error
        return result


def _epoch(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


_MONTHLY_FROM: Final = _epoch(MONTHLY_FROM_YEAR, 1)
_MONTHLY_UNTIL: Final = _epoch(MONTHLY_UNTIL_YEAR, 1)


def _partition_ddl(year: int, month: int) -> sql.Composed:
    following = (year + month // 12, month % 12 + 1)
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} PARTITION OF samples FOR VALUES FROM ({}) TO ({})"
    ).format(
        sql.Identifier(f"samples_{year:04d}_{month:02d}"),
        sql.Literal(_epoch(year, month)),
        sql.Literal(_epoch(*following)),
    )


async def connect(dsn: str) -> Connection:
    """A connection, or a one-line error saying whether the server is away (exit 4) or
    the URL is wrong (exit 2); the URL itself is never echoed (it may hold a password)."""
    try:
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
    except psycopg.Error as error:
        message = one_line(error).replace(dsn, "<database URL>")
        if isinstance(error, psycopg.OperationalError) and _unreachable(message):
            raise StoreUnreachableError(f"cannot reach PostgreSQL: {message}") from None
        raise StoreConfigError(f"PostgreSQL refused the database URL: {message}") from None


def _unreachable(message: str) -> bool:
    """libpq says "connection failed" for a server that did not answer and for one that
    answered no (FATAL: unknown database, role, password); only the first is away."""
    return message.startswith("connection failed") and "FATAL:" not in message


async def migrate(conn: Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` (one receiver at a time); returns the
    version found. A newer schema is refused: this receiver would misread it."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        found = 0 if row is None else int(row[0])
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(found, SCHEMA_VERSION)
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                await conn.execute(statement)
        if row is None:
            await conn.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
        else:
            await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))
    return found
