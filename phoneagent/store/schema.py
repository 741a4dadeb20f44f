"""The database schema as an ordered list of migration steps.

``PRAGMA user_version`` holds the number of steps applied. A new table (consent
ledger, disclosure ledger, upload positions, account, ...) is a new step appended to
``MIGRATIONS``; existing steps are never edited, because databases in the field have
already run them. Each step runs in its own transaction together with the version bump,
so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

from typing import Any

from phoneagent.store.errors import SchemaTooNewError

# Step n (1-based) brings a database from version n-1 to version n.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: devices, bonds, samples, gaps, sync positions (table sync_cursors), settings.
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
    # 3: the privacy lifecycle and cloud upload (issue 7): account, consent and disclosure
    # ledgers, upload positions (table upload_cursors), erase requests. Times are Unix
    # seconds (UTC).
    (
        # At most one row (id = 1). guest = 1: no account, pseudonym is the random local
        # install id and nothing may ever be uploaded. guest = 0: pseudonym is the random
        # user pseudonym that stands in for the person in the cloud. No password, no e-mail.
        # Profile fields feed the watch algorithms; a guest may leave them empty.
        """CREATE TABLE account (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            guest INTEGER NOT NULL CHECK (guest IN (0, 1)),
            pseudonym TEXT NOT NULL UNIQUE,
            region TEXT,
            birth_date TEXT,
            sex INTEGER,
            height_cm INTEGER,
            weight_decikg INTEGER,
            created_at INTEGER NOT NULL,
            CHECK (guest = 1 OR (region IS NOT NULL AND birth_date IS NOT NULL
                AND sex IS NOT NULL AND height_cm IS NOT NULL AND weight_decikg IS NOT NULL))
        )""",
        # Append-only: every consent given or withdrawn. The latest row per (subject, scope)
        # is the current state. subject: 'metric:heart_rate', 'cloud_sync',
        # 'cross_border:<region>', 'log_upload', 'notifications', 'calls', 'music', 'policy';
        # scope narrows it (an app id for notifications), '' when it does not apply.
        """CREATE TABLE consent_ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            subject TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',
            granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
            policy_version TEXT NOT NULL
        )""",
        "CREATE INDEX consent_by_subject ON consent_ledger (subject, scope, id)",
        # Append-only: every time personal data left the phone (cloud endpoint, export to a
        # third party, log upload). categories: comma-separated ('samples,device_info').
        # user_request = 1 when the person asked for it explicitly.
        """CREATE TABLE disclosure_ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            recipient TEXT NOT NULL,
            purpose TEXT NOT NULL,
            categories TEXT NOT NULL,
            record_count INTEGER NOT NULL CHECK (record_count >= 0),
            user_request INTEGER NOT NULL CHECK (user_request IN (0, 1))
        )""",
        "CREATE INDEX disclosures_by_time ON disclosure_ledger (at)",
        # The uploader's position per device and endpoint (a region key such as 'eu'):
        # the highest seq the broker acknowledged. Deleting a device drops its positions.
        """CREATE TABLE upload_cursors (
            device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
            endpoint TEXT NOT NULL,
            last_seq INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (device_id, endpoint)
        ) WITHOUT ROWID""",
        # Cloud erasure the person asked for, tracked until the endpoint confirms; the
        # policy's limit is deadline_at = requested_at + 90 days. Self-contained (user and
        # device pseudonyms copied in) because the local rows are deleted at once.
        # scope 'account': everything of the user incl. the profile; 'data': the samples
        # matching the filters, where NULL means "any" (so all NULL = all data).
        """CREATE TABLE erase_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            scope TEXT NOT NULL CHECK (scope IN ('account', 'data')),
            user_pseudonym TEXT NOT NULL,
            device_pseudonym TEXT,
            metric TEXT,
            since INTEGER,
            until INTEGER,
            endpoint TEXT NOT NULL,
            requested_at INTEGER NOT NULL,
            deadline_at INTEGER NOT NULL,
            sent_at INTEGER,
            confirmed_at INTEGER
        )""",
    ),
    # 4: the sync position starts at the watch's first seq (1); before, it started at 0 and
    # every first sync recorded seq 0, which no sample ever has, as a "not assigned" gap
    # that status then showed as a loss. Those rows described nothing and go.
    ("DELETE FROM gaps WHERE first_seq = 0 AND last_seq = 0 AND reason = 'not assigned'",),
    # 5: watches of another firmware (issue 20). personality: the GATT profile the watch
    # presented when paired ('watchsim': ours, with history; 'infinitime'). live_derived = 1:
    # the watch keeps no history, so its samples are per-minute records the agent made
    # from live values (seq = minute * 8 + metric, phoneagent.sync.minutes); status, data
    # and the export say so. Existing devices are ours.
    (
        "ALTER TABLE devices ADD COLUMN personality TEXT NOT NULL DEFAULT 'watchsim'",
        "ALTER TABLE devices ADD COLUMN live_derived INTEGER NOT NULL DEFAULT 0"
        " CHECK (live_derived IN (0, 1))",
    ),
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
