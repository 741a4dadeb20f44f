"""The embedded default store: one SQLite file, no server, for a single machine.

Several receiver processes on one machine may share the file (WAL). Its calls run on the
receiver's event loop, as they always have: a batch's transaction takes well under a
millisecond and the receiver handles one message at a time anyway.

The schema is versioned as PostgreSQL's is (``cloudreceiver.postgres``): SQLite's
``user_version`` counts the ``MIGRATIONS`` that ran (a file from before the count, with
its tables and 0, is version 1 once opened); a newer file is refused, as this receiver
would misread it. A path SQLite cannot open or a file that is not a database is the
operator's to fix: one line naming it, never a traceback.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from cloudreceiver.errors import SchemaTooNewError, StoreConfigError
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

# Each step's statements; IF NOT EXISTS, as files from before the version count have them.
MIGRATIONS: Final = (
    (
        """CREATE TABLE IF NOT EXISTS samples (
        device TEXT NOT NULL, seq INTEGER NOT NULL, user TEXT NOT NULL, region TEXT NOT NULL,
        metric INTEGER NOT NULL, ts INTEGER NOT NULL, raw INTEGER NOT NULL,
        PRIMARY KEY (device, seq)) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS devices (
        device TEXT PRIMARY KEY, user TEXT NOT NULL, model TEXT, firmware TEXT)""",
        """CREATE TABLE IF NOT EXISTS tombstones (
        user TEXT NOT NULL, request_id INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (user, request_id))""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


class SqliteStore:
    """The receiver's own SQLite file (``ReceiverStore``)."""

    def __init__(self, path: Path) -> None:
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                migrate(self.conn)
            except BaseException:
                self.conn.close()
                raise
        except sqlite3.Error as error:
            raise StoreConfigError(
                f"cannot use {path} as the receiver's database: {error}"
            ) from None

    async def close(self) -> None:
        self.conn.close()

    async def store_batch(self, topics: Topics, device: str, payload: bytes) -> int:
        batch = decode_batch(payload)
        # Tombstones read inside the write transaction: another receiver of the group may
        # be committing an erasure of this very range at the same moment.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            kept = samples_to_keep(batch, device, self._tombstones(topics.user))
            rows = [
                (device, s.seq, topics.user, topics.region, int(s.metric), s.timestamp, s.raw)
                for s in kept
            ]
            new = self.conn.executemany(
                "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            ).rowcount
        except OverflowError as error:  # a seq or timestamp past 64 bits: a peer's mistake
            self.conn.execute("ROLLBACK")
            raise PayloadError(f"batch out of range: {error}") from error
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return int(new)

    async def store_info(self, topics: Topics, device: str, payload: bytes) -> None:
        info = decode_json(payload)
        self.conn.execute(
            "INSERT INTO devices VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
            " model = excluded.model, firmware = excluded.firmware",
            (device, topics.user, info.get("model"), info.get("firmware")),
        )

    async def erase(self, topics: Topics, erase: EraseMessage) -> int:
        filters = erase_filters(erase)
        where = " AND ".join(["user = ?", *(f"{column} {op} ?" for column, op, _ in filters)])
        params = [topics.user, *(value for _, _, value in filters)]
        reach = erase_reach(erase)
        if reach is not None:
            where += f" AND ({' OR '.join(c for c, _ in reach) or 'FALSE'})".replace("%s", "?")
            params += [value for _, values in reach for value in values]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = self.conn.execute(f"DELETE FROM samples WHERE {where}", params).rowcount
            if erase.scope == "account":
                self.conn.execute("DELETE FROM devices WHERE user = ?", (topics.user,))
            self.conn.execute(
                "INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)",
                (topics.user, erase.request_id, erase.encode().decode()),
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return int(deleted)

    def _tombstones(self, user: str) -> list[EraseMessage]:
        rows = self.conn.execute("SELECT body FROM tombstones WHERE user = ?", (user,))
        return [EraseMessage.decode(str(body).encode()) for (body,) in rows]

    async def samples(self) -> list[SampleRow]:
        return list(
            self.conn.execute("SELECT device, seq, metric, ts, raw FROM samples ORDER BY 1, 2")
        )

    async def count(self) -> int:
        (held,) = self.conn.execute("SELECT count(*) FROM samples").fetchone()
        return int(held)

    async def devices(self) -> list[DeviceRow]:
        return list(self.conn.execute("SELECT device, model, firmware FROM devices ORDER BY 1"))


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file to ``SCHEMA_VERSION`` (receivers sharing it take turns); returns
    the version found."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        (found,) = conn.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(found, SCHEMA_VERSION)
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")  # pragmas take no parameters
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return int(found)
