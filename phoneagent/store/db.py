"""The encrypted store: one SQLCipher database per data directory.

Every SQL statement of the agent is a method here or of the store's ``Ledger``
(``store.ledger``, the privacy tables); no connection leaves the package.

Threading rule: a ``Store`` owns one connection and one lock; every public method (its
ledger's too) takes the lock, so a ``Store`` may be shared between threads. From asyncio use
``AsyncStore`` (one worker thread); only an agent fleet's worker, whose loop drives stores
alone, calls them on its loop (``OnLoop``).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice, repeat
from operator import add, ge, lshift
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import msgspec
import sqlcipher3

from phoneagent.paths import database_path, ensure_private_dir
from phoneagent.store.errors import (
    DamagedStoreError,
    NotADatabaseError,
    StoreError,
    StoreFullError,
    UnknownDeviceError,
    UnsafeDirectoryError,
    WrongKeyError,
)
from phoneagent.store.keys import DbKey
from phoneagent.store.ledger import (
    UPLOAD_CONSENT_COLUMNS,
    Ledger,
    UploadConsents,
    upload_consents_of,
)
from phoneagent.store.recent import RecentSamples, UploadColumns
from phoneagent.store.schema import migrate, schema_version
from phoneagent.store.sql import Connection
from protocol.history import FIRST_SEQ
from protocol.metrics import Metric, Sample, SampleRun

_SQLITE_HEADER = b"SQLite format 3\x00"
_MIN_PAGE = 512
_CIPHER_PAGE = 4096  # SQLCipher 4's page size, which every store is created with
_PAGE_SIZE = 1000
_SEQ_MIN = -(2**63)
# Every commit is on disk before it returns, unless its writer says the source still holds
# what it wrote (``_write(durable=False)``, then ``Store.make_durable``).
_SYNCHRONOUS = "FULL"
# A device's samples: read from the watch's history, or made by the agent per minute
# from the live values of a watch that keeps none (InfiniTime; phoneagent.sync.minutes).
HISTORY, LIVE_PER_MINUTE = "history", "live per minute"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# What ``_INSERT_RUN``'s packing of a sample in one integer holds (``_packs``).
_TIMESTAMP_PACKED_MAX = 2**32 - 1
_METRIC_PACKED_MAX = 255
_RAW_PACKED_MIN, _RAW_PACKED_MAX = -(2**15), 2**15 - 1
# A batch of samples from this many rows on is stored without SQLite's foreign-key check
# of each row (a tenth of a backfill group's insert): ``store_batch`` looks the device up
# inside its own transaction, so every row refers to a device that exists. A live
# commit's few rows keep it, since turning it off and on recompiles every statement.
_UNCHECKED_ROWS = 1024
# Every sample of a batch in one statement, from one JSON array of [seq, ts, metric, raw]:
# SQLite runs the whole insert in C in a single step. ``executemany`` binds and steps row
# by row, giving up the GIL at each step; with the event loop busy (a backfill: the radio
# on the loop, the store on its thread) each step then waits for the GIL, and inserts fell
# from ~460k to under 40k rows/s while the whole backfill piled up in memory.
# ``jsonb_each`` (SQLite 3.45) hands each sample's array over as JSONB, which ``->>``
# reads without parsing it again as ``json_each``'s text: the insert is ~30% cheaper.
_INSERT_SAMPLES = (
    "INSERT OR IGNORE INTO samples (device_id, seq, metric, ts, raw)"
    " SELECT ?1, value ->> 0, value ->> 2, value ->> 1, value ->> 3 FROM jsonb_each(?2)"
)
# A run of seqs from ?3 (``SampleRun``), each sample one integer (``sample_rows``): a
# third less of the store thread's time than four ``->>`` lookups per sample.
_INSERT_RUN = (
    "INSERT OR IGNORE INTO samples (device_id, seq, metric, ts, raw)"
    " SELECT ?1, ?3 + key, (value >> 16) & 255, value >> 24, (value & 65535) - 32768"
    " FROM json_each(?2)"
)
# The uploader's chunk: the upload decision's columns and the samples in one statement, so
# one snapshot and one trip into SQLite. The samples are one range scan of the primary
# key, up to the seq ``:limit`` places past ``:after`` (found on the key alone): a
# ``LIMIT`` subquery's rows pass through a co-routine, 17% more CPU per chunk.
# Fetched row by row, each sample cost a tuple of four ints and one SQLite step, and every
# step hands the GIL to the uploader's publisher on the event loop and waits to get it
# back: the reader then cost as much CPU as publishing (benchmarks/RESULTS.md). So SQLite
# packs the whole chunk in C, in one step with the GIL released (``PackedSamples``): per
# sample 26 hex digits, which ``bytes.fromhex`` turns into 13 bytes. printf's widths are
# exact for values in range and any value out of range prints more digits, so 26 digits a
# row prove that every field fits; else ``_UPLOAD_COLUMNS`` reads the columns as numbers.
_DEVICE_ID = "(SELECT id FROM devices WHERE address = :device)"
_CHUNK_RANGE = (
    f"samples AS s WHERE s.device_id = {_DEVICE_ID} AND s.seq > :after AND s.seq <= coalesce("
    f"(SELECT seq FROM samples WHERE device_id = {_DEVICE_ID} AND seq > :after"
    " ORDER BY seq LIMIT 1 OFFSET :limit - 1), 9223372036854775807)"
)

# A chunk's one row beside the upload decision's columns, in one statement.
_WITH_CONSENTS = (
    f"SELECT {UPLOAD_CONSENT_COLUMNS}, c.* FROM ({{chunk}}) AS c LEFT JOIN account AS a ON a.id = 1"
)
_UPLOAD_PACKED = _WITH_CONSENTS.format(
    chunk="SELECT count(*), f.seq, f.ts, group_concat(printf('%08x%08x%02x%08x', s.seq - f.seq,"
    f" s.ts - f.ts + {2**31}, s.metric, s.raw + {2**31}), '')"
    f" FROM (SELECT seq, ts FROM samples WHERE device_id = {_DEVICE_ID} AND seq > :after"
    f" ORDER BY seq LIMIT 1) AS f, {_CHUNK_RANGE}"
)
# The same chunk as four comma-separated columns (msgspec makes each a list of ints in C),
# for a chunk whose values do not fit the packing: each batch then takes bases of its own,
# and the encoder names a value that no batch can carry.
_UPLOAD_COLUMNS = _WITH_CONSENTS.format(
    chunk="SELECT group_concat(seq), group_concat(metric), group_concat(ts), group_concat(raw)"
    f" FROM {_CHUNK_RANGE}"
)
_PACKED_DIGITS = 26  # hex digits per sample in _UPLOAD_PACKED
# What lies at a sync position: the end of a gap covering it, and the top and number of
# the samples from it on (all stored up to the top when the number says so).
_RUN_AT = (
    "SELECT (SELECT max(last_seq) FROM gaps"
    " WHERE device_id = ?1 AND first_seq <= ?2 AND last_seq >= ?2), max(seq), count(*)"
    " FROM samples WHERE device_id = ?1 AND seq >= ?2"
)
# The sync position (?2 where none is stored), ``_RUN_AT`` there, and the end of a gap
# covering the seq past the top: a batch that arrived in order needs nothing more, so a
# live commit asks one statement where the loop in ``_advance_sync_position`` asks three.
_POSITION_RUN = (
    "SELECT start, covered, top, present, (SELECT max(last_seq) FROM gaps"
    " WHERE device_id = ?1 AND first_seq <= top + 1 AND last_seq >= top + 1)"
    " FROM (SELECT start, (SELECT max(last_seq) FROM gaps"
    " WHERE device_id = ?1 AND first_seq <= start AND last_seq >= start) AS covered,"
    " (SELECT max(seq) FROM samples WHERE device_id = ?1 AND seq >= start) AS top,"
    " (SELECT count(*) FROM samples WHERE device_id = ?1 AND seq >= start) AS present"
    " FROM (SELECT coalesce((SELECT next_seq FROM sync_cursors WHERE device_id = ?1), ?2)"
    " AS start))"
)
_INT_LIST = msgspec.json.Decoder(list[int])
# A batch of samples as the JSON array ``_INSERT_SAMPLES`` reads (7x faster than json.dumps).
_SAMPLE_ARRAY = msgspec.json.Encoder()
_T = TypeVar("_T")
# What SQLite answers when a page fails SQLCipher's HMAC or its own b-tree checks.
_DAMAGE_CODES = (sqlcipher3.SQLITE_CORRUPT, sqlcipher3.SQLITE_NOTADB)


@dataclass(frozen=True, slots=True)
class PackedSamples:
    """A chunk of samples as SQLite packed them (``Store.upload_chunk``), in seq order.

    ``rows`` holds 13 bytes per sample, big-endian: seq - ``base_seq`` (u32), ts -
    ``base_ts`` + 2**31 (u32), metric (u8), raw + 2**31 (u32). ``seq_offsets`` are the
    first field as numbers (seq - ``base_seq``), ascending.
    """

    base_seq: int
    base_ts: int
    seq_offsets: tuple[int, ...]
    rows: bytes


def chunk_seqs(samples: PackedSamples | UploadColumns) -> tuple[int, Sequence[int]]:
    """An ``upload_chunk``'s seqs as (base, ascending offsets from it): packed ones as they
    are, columns from 0."""
    if isinstance(samples, PackedSamples):
        return samples.base_seq, samples.seq_offsets
    return 0, samples[0]


@dataclass(frozen=True, slots=True)
class MissingSeqs:
    """Sequence numbers the watch no longer has (or never had); they will never arrive.

    What ``store_batch`` records as one row of ``gaps``, with why (read back as a
    ``GapRecord``); the watch's own lost range on the air is ``protocol.history.Gap``.
    """

    first_seq: int
    last_seq: int
    reason: str

    def __post_init__(self) -> None:
        if self.first_seq > self.last_seq:
            raise ValueError(f"gap first_seq {self.first_seq} > last_seq {self.last_seq}")


@dataclass(frozen=True, slots=True)
class GapRecord:
    device: str
    first_seq: int
    last_seq: int
    reason: str
    recorded_at: int


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one ``store_batch`` committed; ``next_seq`` is the next REPORT's from_seq."""

    new: int
    duplicates: int
    gaps_new: int
    next_seq: int


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    address: str
    pseudonym: str  # random, stands in for the address anywhere outside this database
    name: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    added_at: int
    # The GATT profile it presented when paired (``phoneagent.sync.personality``).
    personality: str = "watchsim"
    # Its samples are per-minute records made from live values (it keeps no history).
    live_derived: bool = False

    @property
    def source(self) -> str:
        """Where its samples come from, as ``status``, ``data`` and the export say it."""
        return LIVE_PER_MINUTE if self.live_derived else HISTORY


@dataclass(frozen=True, slots=True)
class StoredSample:
    device: str
    seq: int
    timestamp: int
    metric: Metric
    raw: int

    @property
    def value(self) -> float:
        return self.raw / self.metric.scale

    @property
    def sample(self) -> Sample:
        return Sample(seq=self.seq, timestamp=self.timestamp, metric=self.metric, raw=self.raw)


_DEVICE_COLUMNS = (
    "address, pseudonym, name, model, serial, firmware, added_at, personality, live_derived"
)


def _device(
    row: tuple[str, str, str | None, str | None, str | None, str | None, int, str, int],
) -> DeviceRecord:
    return DeviceRecord(*row[:-1], live_derived=bool(row[-1]))


def _diagnose(path: Path) -> NotADatabaseError | None:
    """Tell a file that is not ours apart from an encrypted one opened with the wrong key.

    An SQLCipher file is whole pages of ciphertext, so it has a page-multiple size and
    does not compress; a plain SQLite file starts with its header in clear.
    """
    with path.open("rb") as f:
        head = f.read(4096)
        size = os.fstat(f.fileno()).st_size
    if head.startswith(_SQLITE_HEADER):
        return NotADatabaseError(
            f"{path} is an unencrypted SQLite database, not a phoneagent store. "
            "Move it away or choose another --data-dir."
        )
    if size < _MIN_PAGE or size % _MIN_PAGE or len(zlib.compress(head)) < len(head) * 0.95:
        return NotADatabaseError(
            f"{path} is not a phoneagent store (not an encrypted database; damaged or "
            "some other file). Move it away or choose another --data-dir."
        )
    return None


# Less free space than this, and an I/O error is the disk being full: SQLite reports a
# shared-memory file that cannot grow as SQLITE_IOERR, not SQLITE_FULL.
_ROOM_BYTES = 256 * 1024


def _out_of_space(error: Exception, path: Path) -> StoreFullError | None:
    """``error`` as ``StoreFullError`` when it means the disk holding ``path`` is full."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code != sqlcipher3.SQLITE_FULL:
        if code != sqlcipher3.SQLITE_IOERR:
            return None
        disk = os.statvfs(path.parent)
        if disk.f_bavail * disk.f_frsize >= _ROOM_BYTES:
            return None
    return _full(path)


def _full(path: Path) -> StoreFullError:
    return StoreFullError(
        f"the disk holding {path} is full: free some space there; nothing unstored was"
        " acknowledged to a watch, which keeps it until then"
    )


def _create_private_file(path: Path) -> None:
    """Create the database file 0600 up front; SQLite gives its WAL and journal the same mode."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)


def is_damage(error: BaseException) -> bool:
    """Whether ``error`` is SQLite reporting a damaged file ("database disk image is
    malformed"), as opposed to a busy lock, a full disk or a bug."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlcipher3.DatabaseError)
        and code is not None
        and ((code & 0xFF) in _DAMAGE_CODES)
    )


def private_dir(directory: Path) -> None:
    """Create ``directory`` owner-only if missing; ``UnsafeDirectoryError``, before anything
    is written into it, when other users can read it."""
    mode = ensure_private_dir(directory)
    if mode & 0o077:
        raise UnsafeDirectoryError(
            f"The data directory {directory} is accessible by other users (mode "
            f"{mode:04o}); run: chmod 700 {directory}"
        )


def connect(path: Path, key: DbKey, key_source: str | None = None) -> Connection:
    """A connection to the encrypted file at ``path``, its key proven, nothing written.

    Raises ``WrongKeyError`` or ``NotADatabaseError`` (the connection closed).
    """
    conn: Connection = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        # SQLCipher logs "hmac check failed" to stderr on a wrong key; we raise instead.
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {key.pragma_value()}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as e:
            not_ours = _out_of_space(e, path) or _diagnose(path)
            if not_ours is not None:
                raise not_ours from e
            damaged = damaged_pages(conn)
            if len(damaged) < path.stat().st_size // _CIPHER_PAGE:
                # A wrong key fails every page's HMAC; damage, only some (the schema's).
                raise DamagedStoreError(path, f"{len(damaged)} bad page(s): {damaged[0]}") from e
            given = f" (from {key_source})" if key_source else ""
            raise WrongKeyError(
                f"The key{given} does not open the encrypted store {path}. Give the key "
                "it was created with (--key-file, PHONEAGENT_DB_KEY, keyring or passphrase); "
                "the file was not changed, and without its key it cannot be read."
            ) from e
    except BaseException:
        conn.close()
        raise
    return conn


def damaged_pages(conn: Connection) -> list[str]:
    """SQLCipher's check of every page's HMAC: one line per page that fails, [] if none.

    It reads the whole file but walks no b-tree: 0.09 s for a week of one watch (600k
    samples, 23 MB) against 0.29 s for ``PRAGMA quick_check`` (docs/architecture.md). It
    reads the file directly, without SQLite's locks, so a page that a running agent's
    checkpoint is writing at that moment can read torn: only a page that fails a second
    pass too counts (damage stays, a torn read does not).
    """
    first = [str(row[0]) for row in conn.execute("PRAGMA cipher_integrity_check")]
    if not first:
        return []
    again = {str(row[0]) for row in conn.execute("PRAGMA cipher_integrity_check")}
    return [line for line in first if line in again]


@contextmanager
def damage_reported(path: Path) -> Iterator[None]:
    """Turn SQLite's "malformed" into ``DamagedStoreError``, whenever a read meets it."""
    try:
        yield
    except sqlcipher3.DatabaseError as error:
        if is_damage(error):
            raise DamagedStoreError(path, str(error)) from error
        raise


class _Locked:
    """A store's lock, with ``damage_reported``'s translation: a class rather than two
    generator context managers, as every store call takes it (the uploader's policy gate
    ~30 times a chunk; it was a fifth of each check)."""

    __slots__ = ("_lock", "_path")

    def __init__(self, lock: threading.Lock, path: Path) -> None:
        self._lock = lock
        self._path = path

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()
        if isinstance(exc, sqlcipher3.DatabaseError) and is_damage(exc):
            raise DamagedStoreError(self._path, str(exc)) from exc


class Store:
    """Devices, bonds, samples, gaps, sync positions and settings in one encrypted file."""

    def __init__(self, conn: Connection, path: Path, clock: Callable[[], float]) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._guard = _Locked(self._lock, path)
        self._clock = clock
        self.path = path
        self.ledger = Ledger(self._transact, self._snapshot)
        self._writes = 0  # this connection's commits that changed more than samples
        # The pragmas ``_write`` sets per transaction, as last set (``open`` set these).
        self._pragmas: dict[str, str | None] = {
            "synchronous": _SYNCHRONOUS,
            "foreign_keys": "ON",
        }
        self._recent = RecentSamples()  # what live uploads read back (``upload_chunk``)
        """The privacy tables: account, consent and disclosure ledgers, upload positions,
        erase requests."""

    @classmethod
    def open(
        cls,
        directory: Path,
        key: DbKey,
        *,
        key_source: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Store:
        """Open (creating if needed) the store in ``directory`` and migrate it to the latest schema.

        Raises ``WrongKeyError`` or ``NotADatabaseError`` without writing to the file, and
        ``UnsafeDirectoryError`` for a directory that other users can read, and
        ``StoreFullError`` when the disk has no room even to open it (not a wrong key).
        """
        private_dir(directory)
        path = database_path(directory)
        _create_private_file(path)
        conn = connect(path, key, key_source)
        try:
            with damage_reported(path):
                # Every page, before anything relies on one: a damaged page otherwise
                # shows only when a query meets it, and some answers look complete.
                damaged = damaged_pages(conn)
                if damaged:
                    raise DamagedStoreError(path, f"{len(damaged)} bad page(s): {damaged[0]}")
                # Only now, with the key proven, may anything be written.
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA temp_store = MEMORY")
                conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS}")
                journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(journal).lower() != "wal":
                    raise StoreError(f"{path}: cannot switch to WAL journaling (got {journal}).")
                migrate(conn)
        except BaseException as error:
            conn.close()
            if isinstance(error, sqlcipher3.OperationalError) and (
                full := _out_of_space(error, path)
            ):
                raise full from error
            raise
        return cls(conn, path, clock)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _locked(self) -> _Locked:
        """The lock, and damage reported as such by whatever statement meets it."""
        return self._guard

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def integrity_problems(self) -> list[str]:
        """SQLite's full check of every b-tree and index (``PRAGMA integrity_check``); []
        when sound. Slower than the page check on open (0.5 s for a week of samples), so
        only on request (``phoneagent store check``)."""
        with self._locked():
            found = [str(row[0]) for row in self._conn.execute("PRAGMA integrity_check")]
        return [] if found == ["ok"] else found

    @property
    def schema_version(self) -> int:
        with self._locked():
            return schema_version(self._conn)

    def pragma(self, name: str) -> str:
        """A pragma's current value, for the privacy audit (journal_mode, temp_store, ...)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a pragma name: {name!r}")
        with self._locked():
            return str(self._conn.execute(f"PRAGMA {name}").fetchone()[0])

    # -- transactions -------------------------------------------------------------

    def _write(
        self,
        work: Callable[[], _T],
        *,
        durable: bool = True,
        only_samples: bool = False,
        check_references: bool = True,
    ) -> _T:
        """Run ``work`` in one IMMEDIATE transaction; the caller holds the lock.

        Every write goes through here: a full disk (at any statement or at the COMMIT) is
        rolled back whole and raised as ``StoreFullError``, and the connection is left out
        of any transaction, so the same write succeeds once space is freed. Not
        ``durable``: the COMMIT writes the WAL without an fsync (``make_durable`` later);
        only for what a power loss may take back because its source still holds it.
        ``only_samples``: it changes samples, gaps and sync positions alone, which
        ``version`` leaves out. Not ``check_references``: SQLite's foreign-key check
        is off, for a write whose rows refer only to what it read in its own transaction
        (``store_batch``, a batch of ``_UNCHECKED_ROWS`` or more).
        """
        if not only_samples:
            self._writes += 1
        self._set_pragma("synchronous", _SYNCHRONOUS if durable else "NORMAL")
        self._set_pragma("foreign_keys", "ON" if check_references else "OFF")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work()
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # a failed COMMIT may leave it open
                    self._conn.execute("ROLLBACK")
                raise
        except sqlcipher3.OperationalError as error:
            if (full := _out_of_space(error, self.path)) is None:
                raise
            raise full from error
        return result

    def _set_pragma(self, name: str, value: str) -> None:
        """Set a per-transaction pragma when it changes (outside a transaction, where
        these take effect): a live sync's commits, one a second, then run without two
        statements each. Setting ``foreign_keys`` makes SQLite compile every statement
        again, so it changes only around a backfill's groups."""
        if self._pragmas[name] != value:
            self._pragmas[name] = None  # unknown until the pragma has run
            self._conn.execute(f"PRAGMA {name} = {value}")
            self._pragmas[name] = value

    def version(self) -> tuple[int, int]:
        """Changes whenever a commit changed more than samples: another connection's
        (SQLite's ``data_version``; it may have changed samples only) or this store's. What
        the uploader's copy of the account, consents, erase requests, devices and upload
        positions is checked against before each drain, instead of reading them again."""
        with self._locked():
            return self._version()

    def _version(self) -> tuple[int, int]:
        """``version``, the caller holding the lock."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._writes

    def make_durable(self) -> None:
        """Every commit so far survives a power loss once this returns: the barrier behind
        ``store_batch(durable=False)``. A checkpoint syncs the log before it copies it into
        the database file, and syncs that; where a reader in another process holds frames
        back, the log is synced as a FULL commit would have."""
        with self._locked():
            try:
                busy, logged, copied = self._conn.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
                if not busy and copied >= logged:
                    return
            except sqlcipher3.OperationalError as error:
                if _out_of_space(error, self.path) is None:
                    raise
                # The database file cannot grow: the log it was to be copied from will do.
            self._sync_log()

    def _sync_log(self) -> None:
        """What a FULL commit does: the log on disk; a full disk is ``StoreFullError``."""
        try:
            log_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            try:
                os.fsync(log_fd)
            finally:
                os.close(log_fd)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise _full(self.path) from error

    def now(self) -> int:
        """The store's clock, in whole seconds: every time it records (ledgers, positions)."""
        return int(self._clock())

    def _transact(self, work: Callable[[Connection, int], _T], *, durable: bool = True) -> _T:
        """Run ``work(connection, now)`` in one IMMEDIATE transaction under the lock.

        How ``Ledger`` writes the tables of later schema steps.
        """
        with self._locked():
            result: _T = self._write(lambda: work(self._conn, self.now()), durable=durable)
            return result

    def _snapshot(self, work: Callable[[Connection, int], _T]) -> _T:
        """Run ``work(connection, now)``, one SELECT, under the lock but outside a
        transaction: a single statement reads one consistent snapshot by itself, without
        a BEGIN and COMMIT or the write lock."""
        with self._locked():
            return work(self._conn, self.now())

    # -- devices ------------------------------------------------------------------

    def add_device(
        self,
        address: str,
        *,
        name: str | None = None,
        model: str | None = None,
        serial: str | None = None,
        firmware: str | None = None,
        personality: str | None = None,
        live_derived: bool | None = None,
    ) -> DeviceRecord:
        """Record a device, or update the given (non-None) fields of a known one.

        The pseudonym and added time are set once and never change.
        """
        derived = None if live_derived is None else int(live_derived)
        with self._locked():
            self._write(
                lambda: self._conn.execute(
                    "INSERT INTO devices (address, pseudonym, name, model, serial, firmware,"
                    " added_at, personality, live_derived)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, coalesce(?, 'watchsim'), coalesce(?, 0))"
                    " ON CONFLICT (address) DO UPDATE SET"
                    " name = coalesce(excluded.name, name),"
                    " model = coalesce(excluded.model, model),"
                    " serial = coalesce(excluded.serial, serial),"
                    " firmware = coalesce(excluded.firmware, firmware),"
                    " personality = coalesce(?, personality),"
                    " live_derived = coalesce(?, live_derived)",
                    (
                        *(address, secrets.token_hex(16), name, model, serial, firmware),
                        *(self.now(), personality, derived, personality, derived),
                    ),
                )
            )
            record = self._get_device(address)
        assert record is not None  # just written under the lock
        return record

    def _get_device(self, address: str) -> DeviceRecord | None:
        row = self._conn.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE address = ?", (address,)
        ).fetchone()
        return None if row is None else _device(row)

    def get_device(self, address: str) -> DeviceRecord | None:
        with self._locked():
            return self._get_device(address)

    def list_devices(self) -> list[DeviceRecord]:
        with self._locked():
            rows = self._conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY address"
            ).fetchall()
        return [_device(row) for row in rows]

    def delete_device(self, address: str) -> bool:
        """Remove a device with its samples, gaps, sync position and bond; False if unknown."""

        def work() -> bool:
            self._conn.execute("DELETE FROM bonds WHERE address = ?", (address,))
            self._conn.execute("DELETE FROM settings WHERE key = ?", (_PROBLEM + address,))
            gone = self._conn.execute("DELETE FROM devices WHERE address = ?", (address,))
            return bool(gone.rowcount)

        with self._locked():
            return bool(self._write(work))

    def _device_id(self, address: str) -> int:
        """The row id of ``address``, read afresh: SQLite gives a deleted device's id to the
        next device added (by any process), so a remembered id could name another watch.
        A write looks it up inside its own transaction."""
        row = self._conn.execute("SELECT id FROM devices WHERE address = ?", (address,)).fetchone()
        if row is None:
            raise UnknownDeviceError.of(address)
        return int(row[0])

    # -- bonds (the transport's BondStore keeps its keys here) ---------------------

    def get_bond(self, address: str) -> bytes | None:
        with self._locked():
            row = self._conn.execute(
                "SELECT blob FROM bonds WHERE address = ?", (address,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def put_bond(self, address: str, blob: bytes) -> None:
        with self._locked():
            self._write(
                lambda: self._conn.execute(
                    "INSERT INTO bonds (address, blob, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (address) DO UPDATE SET blob = excluded.blob,"
                    " updated_at = excluded.updated_at",
                    (address, bytes(blob), self.now()),
                )
            )

    def delete_bond(self, address: str) -> None:
        with self._locked():
            self._write(
                lambda: self._conn.execute("DELETE FROM bonds WHERE address = ?", (address,))
            )

    def list_bonds(self) -> list[str]:
        with self._locked():
            rows = self._conn.execute("SELECT address FROM bonds ORDER BY address").fetchall()
        return [str(row[0]) for row in rows]

    # -- samples, gaps and the sync position ---------------------------------------

    def store_batch(
        self,
        device: str,
        samples: Sequence[Sample] | SampleRows,
        gaps: Iterable[MissingSeqs] = (),
        *,
        durable: bool = True,
    ) -> StoreResult:
        """Store samples and gaps idempotently by (device, seq) and advance the sync position.

        Everything is one transaction, committed before this returns. ``durable``: on disk
        too; without it (a live sync, whose watch keeps every record until acknowledged) a
        power loss may take the commit back, so the engine calls ``make_durable`` before it
        acknowledges. A repeated seq is counted as a duplicate and the stored row is kept as
        it was. ``samples`` may come as ``SampleRows`` already.
        """
        rows = sample_rows(samples)
        with self._locked():
            now = self.now()

            def work() -> StoreResult:
                device_id = self._device_id(device)
                gap_rows = [(device_id, g.first_seq, g.last_seq, g.reason, now) for g in gaps]
                new = rows.insert(self._conn, device_id)
                gaps_new = 0
                if gap_rows:  # seldom: not a statement for every live commit
                    gaps_new = self._conn.executemany(
                        "INSERT OR IGNORE INTO gaps (device_id, first_seq, last_seq, reason,"
                        " recorded_at) VALUES (?, ?, ?, ?, ?)",
                        gap_rows,
                    ).rowcount
                next_seq = self._advance_sync_position(device_id)
                return StoreResult(new, rows.count - new, gaps_new, next_seq)

            result: StoreResult = self._write(
                work,
                durable=durable,
                only_samples=True,
                check_references=rows.count < _UNCHECKED_ROWS,
            )
            self._recent.stored(device, rows.samples)
            return result

    def store_minutes(self, device: str, samples: Sequence[Sample] | SampleRows) -> StoreResult:
        """Store a live-derived device's per-minute records, idempotently by (device, seq)
        (a seq names a minute and a metric: a minute stored twice keeps its first record).

        Such a device has no history to sync from: its sync position is one past its
        newest record, and nothing is ever missing below it.
        """
        rows = sample_rows(samples)
        with self._locked():

            def work() -> StoreResult:
                device_id = self._device_id(device)
                new = rows.insert(self._conn, device_id)
                self._conn.execute(
                    "INSERT INTO sync_cursors (device_id, next_seq)"
                    " SELECT ?1, max(seq) + 1 FROM samples WHERE device_id = ?1"
                    " HAVING count(*) > 0 ON CONFLICT (device_id) DO UPDATE"
                    " SET next_seq = max(next_seq, excluded.next_seq)",
                    (device_id,),
                )
                row = self._conn.execute(
                    "SELECT next_seq FROM sync_cursors WHERE device_id = ?", (device_id,)
                ).fetchone()
                next_seq = FIRST_SEQ if row is None else int(row[0])
                return StoreResult(new, rows.count - new, 0, next_seq)

            result: StoreResult = self._write(work, only_samples=True)
            self._recent.forget(device)
            return result

    def _advance_sync_position(self, device_id: int) -> int:
        """Move the sync position past every seq that is stored or covered by a gap, in order."""
        start, covered, top, present, past_top = self._conn.execute(
            _POSITION_RUN, (device_id, FIRST_SEQ)
        ).fetchone()
        # In-order delivery: no gap at the start, everything from it to the top stored,
        # and no gap just past the top (nothing is stored past it).
        if covered is None and top is not None and present == top - start + 1 and past_top is None:
            next_seq = int(top) + 1
        else:
            next_seq = self._walk_sync_position(device_id, start)
        if next_seq != start:
            self._conn.execute(
                "INSERT INTO sync_cursors (device_id, next_seq) VALUES (?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET next_seq = excluded.next_seq",
                (device_id, next_seq),
            )
        return next_seq

    def _walk_sync_position(self, device_id: int, start: int) -> int:
        """Past gaps and runs of stored seqs from ``start``, one step at a time."""
        next_seq = start
        while True:
            covered, top, present = self._conn.execute(_RUN_AT, (device_id, next_seq)).fetchone()
            if covered is not None:
                next_seq = int(covered) + 1
                continue
            if top is None:
                return next_seq  # nothing stored at or past next_seq
            if present == top - next_seq + 1:  # everything from next_seq to the top is stored
                next_seq = int(top) + 1
                continue
            run_start = next_seq
            stored = self._conn.execute(
                "SELECT seq FROM samples WHERE device_id = ? AND seq >= ? ORDER BY seq",
                (device_id, next_seq),
            )
            for (seq,) in stored:
                if seq != next_seq:
                    break
                next_seq += 1
            stored.close()
            if next_seq == run_start:
                return next_seq

    def next_seq(self, device: str) -> int:
        """The next REPORT's from_seq: one past the highest seq with nothing missing below it.

        Starts at the watch's first seq (``FIRST_SEQ``: no sample ever has seq 0, so a
        sync position starting below it recorded a "not assigned" gap after every first sync).
        When the watch's history begins later, the sync engine records the missing start
        as a ``MissingSeqs`` (so the loss is visible) and the sync position moves past it.
        """
        with self._locked():
            device_id = self._device_id(device)
            row = self._conn.execute(
                "SELECT next_seq FROM sync_cursors WHERE device_id = ?", (device_id,)
            ).fetchone()
        return FIRST_SEQ if row is None else int(row[0])

    def iter_samples(
        self,
        device: str | None = None,
        metric: Metric | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> Iterator[StoredSample]:
        """Samples in (device address, timestamp, seq) order, ``since <= ts < until``.

        An unknown ``device`` raises ``UnknownDeviceError`` here, before anything is read,
        so a caller that streams what it reads has printed nothing yet. The samples are
        read page by page, taking the lock per page only, so a long export does not hold
        up the sync engine's writes and memory stays one page whatever the range.
        """
        with self._locked():
            if device is None:
                addresses = [
                    str(a)
                    for (a,) in self._conn.execute("SELECT address FROM devices ORDER BY address")
                ]
            else:
                self._device_id(device)  # known, or UnknownDeviceError now
                addresses = [device]
        return self._pages(addresses, metric, since, until)

    def _pages(
        self,
        addresses: list[str],
        metric: Metric | None,
        since: int | None,
        until: int | None,
    ) -> Iterator[StoredSample]:
        """Each page names its device by address, not by a row id read before it: SQLite
        gives a deleted device's id to the next one added, so a watch deleted and another
        paired (by another process) during a long export must not lend it its samples."""
        metric_filter = "" if metric is None else f" AND metric = {int(metric)}"
        query = (
            "SELECT seq, metric, ts, raw FROM samples"
            " WHERE device_id = (SELECT id FROM devices WHERE address = ?) AND (ts, seq) > (?, ?)"
            f" AND ts < ?{metric_filter} ORDER BY ts, seq LIMIT {_PAGE_SIZE}"
        )
        upper = 2**63 - 1 if until is None else until
        for address in addresses:
            position = (_SEQ_MIN if since is None else since - 1, 2**63 - 1)
            while True:
                with self._locked():
                    page = self._conn.execute(query, (address, *position, upper)).fetchall()
                for seq, metric_value, ts, raw in page:
                    yield StoredSample(address, seq, ts, Metric(metric_value), raw)
                if len(page) < _PAGE_SIZE:
                    break
                position = (page[-1][2], page[-1][0])

    def sample_time(self, device: str, seq: int) -> int | None:
        """Measurement time of the newest stored sample of ``device`` at or below ``seq``:
        where a position (sync, upload) stands on a time axis; None when none is."""
        with self._locked():
            row = self._conn.execute(
                "SELECT ts FROM samples WHERE device_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
                (self._device_id(device), seq),
            ).fetchone()
        return None if row is None else int(row[0])

    def upload_chunk(
        self, device: str, after_seq: int, limit: int, cloud: str, crossing: str
    ) -> tuple[UploadConsents | None, PackedSamples | UploadColumns]:
        """What the uploader's policy gate reads (``Ledger.upload_consents`` of ``cloud``
        and ``crossing``) and up to ``limit`` samples of ``device`` with seq >
        ``after_seq``, in seq order, from one statement (one snapshot, without BEGIN and
        COMMIT): packed, or, when a value does not fit the packing, as the columns seqs,
        metrics, timestamps and raw values.

        Or from memory, as columns (``RecentSamples``): when only this store's own sample
        writes happened since a read of ``device`` found nothing past its last sample,
        what they added past ``after_seq`` and the policy state that read returned.
        """
        subjects = (cloud, crossing)
        with self._locked():
            self._recent.at_version(self._version())
            kept = self._recent.read(device, after_seq, limit, subjects)
            if kept is not None:
                return kept
            consents, samples = self._read_chunk(
                {
                    "device": device,
                    "after": after_seq,
                    "limit": limit,
                    "cloud": cloud,
                    "crossing": crossing,
                }
            )
            base, seqs = chunk_seqs(samples)
            if len(seqs) < limit:  # the device's newest sample read
                top = base + seqs[-1] if seqs else after_seq
                self._recent.read_to_end(device, top, subjects, consents)
            return consents, samples

    def _read_chunk(
        self, query: dict[str, str | int]
    ) -> tuple[UploadConsents | None, PackedSamples | UploadColumns]:
        """``upload_chunk``'s statement, the caller holding the lock."""
        row = self._conn.execute(_UPLOAD_PACKED, query).fetchone()
        consents, (count, base_seq, base_ts, digits) = upload_consents_of(row), row[4:]
        if not count:
            return consents, PackedSamples(0, 0, (), b"")
        if len(digits) == _PACKED_DIGITS * count:
            rows = bytes.fromhex(digits)
            seq_bytes = bytearray(4 * count)
            for byte in range(4):
                seq_bytes[byte::4] = rows[byte :: _PACKED_DIGITS // 2]
            offsets = struct.unpack(f">{count}I", seq_bytes)
            # SQLite does not promise the aggregate's order: in any other, read the columns.
            if not any(map(ge, offsets, islice(offsets, 1, None))):
                return consents, PackedSamples(base_seq, base_ts, offsets, rows)
        row = self._conn.execute(_UPLOAD_COLUMNS, query).fetchone()
        columns = row[4:]
        if columns[0] is None:
            return upload_consents_of(row), ([], [], [], [])
        seqs, metrics, stamps, raws = (_INT_LIST.decode(f"[{column}]") for column in columns)
        if any(map(ge, seqs, islice(seqs, 1, None))):
            ordered = sorted(zip(seqs, metrics, stamps, raws, strict=True))
            seqs, metrics, stamps, raws = (list(column) for column in zip(*ordered, strict=True))
        return upload_consents_of(row), (seqs, metrics, stamps, raws)

    def counts(self) -> dict[str, dict[Metric, int]]:
        """Number of stored samples per device address and metric."""
        with self._locked():
            rows = self._conn.execute(
                "SELECT d.address, s.metric, count(*) FROM samples AS s"
                " JOIN devices AS d ON d.id = s.device_id GROUP BY s.device_id, s.metric"
            ).fetchall()
        result: dict[str, dict[Metric, int]] = {}
        for address, metric_value, count in rows:
            result.setdefault(str(address), {})[Metric(metric_value)] = int(count)
        return result

    def gaps(self, device: str | None = None) -> list[GapRecord]:
        with self._locked():
            query = (
                "SELECT d.address, g.first_seq, g.last_seq, g.reason, g.recorded_at"
                " FROM gaps AS g JOIN devices AS d ON d.id = g.device_id"
            )
            if device is None:
                rows = self._conn.execute(query + " ORDER BY d.address, g.first_seq").fetchall()
            else:
                rows = self._conn.execute(
                    query + " WHERE g.device_id = ? ORDER BY g.first_seq",
                    (self._device_id(device),),
                ).fetchall()
        return [GapRecord(*row) for row in rows]

    # -- settings -----------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._locked():
            row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self._locked():
            self._write(
                lambda: self._conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            )

    def delete_setting(self, key: str) -> None:
        with self._locked():
            self._write(lambda: self._conn.execute("DELETE FROM settings WHERE key = ?", (key,)))

    def set_sync_problem(self, address: str, problem: str | None) -> None:
        """Why the device's last sync session failed (None: it succeeded), for ``status``;
        deleted with the device."""
        if problem is None:
            self.delete_setting(_PROBLEM + address)
        else:
            self.set_setting(_PROBLEM + address, f"{self.now()} {problem}")

    def sync_problem(self, address: str) -> tuple[int, str] | None:
        """(Unix time, text) of the device's last failed session, if it has not synced since."""
        value = self.get_setting(_PROBLEM + address)
        if value is None:
            return None
        at, _, text = value.partition(" ")
        return int(at), text


# Settings row per device: why its last sync session failed ("<unix time> <text>").
_PROBLEM = "sync_problem:"


@dataclass(frozen=True, slots=True)
class SampleRows:
    """Samples checked and encoded for the insert (``sample_rows``): the part of storing
    them that needs no connection, done by whoever holds them. ``AsyncStore`` does it on
    the event loop, so that the store thread's time is SQLite's alone: in a backfill that
    thread is what the last record waits for."""

    count: int
    # Each Sample as an array (``_INSERT_SAMPLES``), or with ``run_from`` each one packed
    # in an integer, their seqs a run from there (``_INSERT_RUN``).
    array: str
    samples: Sequence[Sample]  # as given: what ``RecentSamples`` keeps
    run_from: int | None = None

    def insert(self, conn: Connection, device_id: int) -> int:
        """Insert the rows for ``device_id``; how many were new (the rest were stored)."""
        if self.run_from is None:
            return conn.execute(_INSERT_SAMPLES, (device_id, self.array)).rowcount
        return conn.execute(_INSERT_RUN, (device_id, self.array, self.run_from)).rowcount


def sample_rows(samples: Sequence[Sample] | SampleRows) -> SampleRows:
    """``samples`` for ``store_batch`` or ``store_minutes`` (as they are when already
    ``SampleRows``); ``OverflowError`` for a value that SQLite cannot store as an integer.
    Text, as SQLite reads a blob as JSONB."""
    if isinstance(samples, SampleRows):
        return samples
    if isinstance(samples, SampleRun) and _packs(samples):
        packed = map(
            add,
            map(lshift, samples.timestamps, repeat(24)),
            map(
                add,
                map(lshift, samples.metrics, repeat(16)),
                map(add, samples.raws, repeat(-_RAW_PACKED_MIN)),
            ),
        )
        array = _SAMPLE_ARRAY.encode(list(packed)).decode()
        return SampleRows(len(samples), array, samples, samples.first_seq)
    if isinstance(samples, SampleRun):
        samples = list(samples)  # one that does not pack: as Samples, the general way
    _check_int64(samples)
    return SampleRows(len(samples), _SAMPLE_ARRAY.encode(samples).decode(), samples)


def _packs(run: SampleRun) -> bool:
    """Whether ``_INSERT_RUN``'s packing holds every sample of ``run`` (timestamp << 24 |
    metric << 16 | raw + 32768): unsigned 32-bit timestamps, metrics below 256 and raws
    of 16 bits, as compact history records carry them; seqs within SQLite's integers."""
    return bool(run) and (
        run.first_seq >= _INT64_MIN
        and run.last_seq <= _INT64_MAX
        and min(run.timestamps) >= 0
        and max(run.timestamps) <= _TIMESTAMP_PACKED_MAX
        and min(run.metrics) >= 0
        and max(run.metrics) <= _METRIC_PACKED_MAX
        and min(run.raws) >= _RAW_PACKED_MIN
        and max(run.raws) <= _RAW_PACKED_MAX
    )


def _check_int64(samples: Sequence[Sample]) -> None:
    """What ``executemany`` refused (JSON would store an oversized int as a float).

    Packing every field as a signed 64-bit int is the quick test (one pass in C, half the
    time of ``min`` and ``max``); only when it fails (out of range, or not an int at all)
    does the exact comparison decide.
    """
    try:
        struct.pack(f"{len(samples) * len(Sample._fields)}q", *chain.from_iterable(samples))
    except struct.error:
        if (
            min(chain.from_iterable(samples)) < _INT64_MIN
            or max(chain.from_iterable(samples)) > _INT64_MAX
        ):
            raise OverflowError("Python int too large to convert to SQLite INTEGER") from None


def store_exists(directory: Path) -> bool:
    """Whether a store was created there already (the CLI asks for a new passphrase twice)."""
    path = database_path(directory)
    return path.is_file() and path.stat().st_size > 0
