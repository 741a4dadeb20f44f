"""The database schema as an ordered list of migration steps.

``PRAGMA user_version`` holds the number of steps applied. A new table (consent
ledger, disclosure ledger, upload cursors, account, ...) is a new step appended to
``MIGRATIONS``; existing steps are never edited, because databases in the field have
already run them. Each step runs in its own transaction together with the version bump,
so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

from typing import Any

from phoneagent.store.errors import SchemaTooNewError

# Step n (1-based) brings a database from version n-1 to version n.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: devices, bonds, samples, gaps, sync cursors, settings.
    (
        """CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL UNIQUE,
            pseudonym TEXT NOT NULL UNIQUE,
            name TEXT,
            model TEXT,
            serial TEXT,
            firmware TEXT,
            added_at INTEGER NOT NULL
        )""",
        # Keyed by the peer's identity address, independent of devices: a bond can be
        # made before the device is recorded, and transport code owns the blob's format.
        """CREATE TABLE bonds (
            address TEXT PRIMARY KEY,
            blob BLOB NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        # WITHOUT ROWID: the primary key is the table, so the idempotent insert costs one
        # B-tree lookup and no second index.
        """CREATE TABLE samples (
            device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            metric INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            raw INTEGER NOT NULL,
            PRIMARY KEY (device_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE gaps (
            device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            reason TEXT NOT NULL,
            recorded_at INTEGER NOT NULL,
            PRIMARY KEY (device_id, first_seq, last_seq),
            CHECK (first_seq <= last_seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE sync_cursors (
            device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
            next_seq INTEGER NOT NULL
        )""",
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 2: time-range queries (exports, charts, deleting a range) seek instead of scanning
    # a device's whole history; seq rides along as the table's key.
    ("CREATE INDEX samples_by_time ON samples (device_id, ts)",),
)

LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: Any) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: Any, target: int = LATEST_VERSION) -> int:
    """Apply the missing steps up to ``target``; returns the version found before.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the
    transactions here are the only ones.
    """
    found = schema_version(conn)
    if found > LATEST_VERSION:
        raise SchemaTooNewError(
            f"The store has schema version {found}, newer than this phoneagent understands "
            f"({LATEST_VERSION}); upgrade phoneagent before opening it."
        )
    for version in range(found + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found
