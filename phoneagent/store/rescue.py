"""Saving what is still readable from a damaged store into a fresh encrypted one.

``phoneagent store rescue``. The damaged file (with its WAL) is copied aside first and
never written to. Then every table is read in key order into a new encrypted file with
the same key; a read that meets a bad page skips forward along the key until reads work
again, so one bad page costs the rows it held, not the rest of the table. Samples the
damage took below a watch's sync position become gaps (``LOST``), so ``status`` shows the
loss and the engine does not ask the watch again for records it has freed. The new file
replaces the damaged one only when it is complete.

SQLCipher puts a connection that met a bad page into an error state for good, so every
failed read reopens the source (with a passphrase key, a key derivation each time).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlcipher3

from phoneagent.paths import database_path
from phoneagent.store.db import Store, connect, is_damage
from phoneagent.store.errors import DamagedStoreError, StoreError
from phoneagent.store.keys import DbKey
from phoneagent.store.schema import migrate, schema_version
from protocol.history import FIRST_SEQ

LOST = "lost: damaged store"  # gap reason of samples a rescue could not read
_CHUNK = 1000
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TableRescue:
    table: str
    saved: int
    lost: int | None  # None: the count itself was unreadable


@dataclass(frozen=True, slots=True)
class RescueReport:
    backup: Path  # the damaged file as it was (its WAL beside it, ``-wal`` appended)
    tables: tuple[TableRescue, ...]
    lost_ranges: dict[str, list[tuple[int, int]]]  # device address -> seq ranges now gaps

    @property
    def complete(self) -> bool:
        return all(t.lost == 0 for t in self.tables)


class _Source:
    """Reads from the damaged file; a read that meets damage answers None and reopens."""

    def __init__(self, opener: Callable[[], Any]) -> None:
        self._open = opener
        self._conn = opener()
        self.version = schema_version(self._conn)  # in the header, read with the key's proof

    def rows(self, query: str, parameters: tuple[Any, ...] = ()) -> tuple[list[Any], bool]:
        """The rows read, and whether the read ended without meeting damage (the rows
        before the damage are kept: a chunk is read row by row)."""
        found: list[Any] = []
        try:
            found.extend(self._conn.execute(query, parameters))
        except sqlcipher3.DatabaseError as error:
            if not is_damage(error):
                raise
            self._conn.close()
            self._conn = self._open()
            return found, False
        return found, True

    def close(self) -> None:
        self._conn.close()


def rescue(directory: Path, key: DbKey, *, key_source: str | None = None) -> RescueReport:
    """Back up the damaged store of ``directory``, then replace it with what is readable."""
    path = database_path(directory)
    if not path.is_file():
        raise StoreError(f"There is no store to rescue in {directory}.")
    backup = _back_up(path)
    try:
        source = _Source(lambda: connect(path, key, key_source))
    except DamagedStoreError as error:
        raise StoreError(
            f"{path}: the pages that describe its tables are damaged too, so nothing in it "
            f"can be found. The damaged file is kept as {backup}."
        ) from error
    partial = path.with_name(path.name + ".rescue-partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    target = connect(partial, key)
    try:
        migrate(target, source.version)
        target.execute("BEGIN")
        tables = tuple(_copy_table(source, target, name) for name in _tables(target))
        tables = _drop_orphans(target, tables)
        lost_ranges = _record_lost_samples(target)
        target.execute("COMMIT")
    finally:
        source.close()
        target.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(partial, path)
    Store.open(directory, key, key_source=key_source).close()  # checks and migrates it
    return RescueReport(backup, tables, lost_ranges)


def _back_up(path: Path) -> Path:
    """Owner-only byte copies of the file and its WAL (the WAL holds recent commits)."""
    stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal"):
        original = Path(f"{path}{suffix}")
        if original.exists():
            copy = Path(f"{backup}{suffix}")
            with (
                original.open("rb") as src,
                open(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
    return backup


def _tables(conn: Any) -> list[str]:
    """The schema's tables in creation order (parents before the tables pointing at them)."""
    return [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rootpage"
        )
    ]


def _copy_table(source: _Source, target: Any, table: str) -> TableRescue:
    """Copy ``table``; a table keyed under a device is read device by device, so damage
    in one watch's rows (or at the start of the table) does not cost the others'."""
    info = target.execute(f"PRAGMA table_info({table})").fetchall()
    columns = [str(c[1]) for c in info]
    key = [str(c[1]) for c in sorted((c for c in info if c[5]), key=lambda c: int(c[5]))]
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    parents = {
        str(fk[3]): (str(fk[2]), str(fk[4]))
        for fk in target.execute(f"PRAGMA foreign_key_list({table})")
    }
    scopes: list[tuple[str, Any] | None] = [None]
    if len(key) > 1 and key[0] in parents:
        parent, parent_key = parents[key[0]]
        ids = target.execute(f"SELECT {parent_key} FROM {parent} ORDER BY 1").fetchall()
        scopes = [(key[0], row[0]) for row in ids]
        key = key[1:]
    integer = len(key) == 1 and "INT" in next(str(c[2]) for c in info if c[1] == key[0]).upper()
    saved = 0
    for scope in scopes:
        reader = _Reader(source, table, columns, key, scope)
        for chunk in reader.rows((-(2**63),) if integer else None):
            target.executemany(insert, chunk)
            saved += len(chunk)
    total = _count(source, table)
    return TableRescue(table, saved, None if total is None else max(total - saved, 0))


class _Reader:
    """Every readable row of one table (or of one parent's rows), in key order."""

    def __init__(
        self,
        source: _Source,
        table: str,
        columns: list[str],
        key: list[str],
        scope: tuple[str, Any] | None,
    ) -> None:
        self._source = source
        self._key = key
        self._key_at = [columns.index(k) for k in key]
        order = ", ".join(key)
        where = [f"({order}) > ({', '.join('?' * len(key))})"]
        self._scope: tuple[Any, ...] = ()
        if scope is not None:
            where.append(f"{scope[0]} = ?")
            self._scope = (scope[1],)
        tail = f" FROM {table} WHERE {' AND '.join(where)} ORDER BY {order}"
        self._chunk_query = f"SELECT {', '.join(columns)}{tail} LIMIT {_CHUNK}"
        self._probe_query = f"SELECT 1{tail} LIMIT 1"
        self._first_query = (
            f"SELECT {', '.join(columns)} FROM {table}"
            + ("" if scope is None else f" WHERE {scope[0]} = ?")
            + f" ORDER BY {order} LIMIT {_CHUNK}"
        )

    def rows(self, position: tuple[Any, ...] | None) -> Iterator[list[Any]]:
        """Chunks from just after ``position`` (None: from the first row), skipping damage."""
        while True:
            if position is None:
                chunk, ok = self._source.rows(self._first_query, self._scope)
            else:
                chunk, ok = self._source.rows(self._chunk_query, (*position, *self._scope))
            if chunk:
                yield chunk
                position = tuple(chunk[-1][i] for i in self._key_at)
            if not ok:
                position = self._skip(position)
                if position is None:
                    return
            elif len(chunk) < _CHUNK:
                return

    def _readable(self, position: tuple[Any, ...]) -> bool:
        return self._source.rows(self._probe_query, (*position, *self._scope))[1]

    def _skip(self, position: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        """The first position past a bad page from which the key reads again.

        Probes forward on the key's last (integer) column at doubling distances, then
        narrows between the last failure and the first success. None when the key is not
        an integer or nothing further is readable.
        """
        if position is None or not isinstance(position[-1], int):
            return None
        head, low = position[:-1], position[-1]
        step = 1
        while not self._readable((*head, low + step)):
            low += step
            step *= 2
            if low + step > _INT64_MAX:
                return None
        high = low + step
        while high - low > 1:
            middle = (low + high) // 2
            if self._readable((*head, middle)):
                high = middle
            else:
                low = middle
        return (*head, high)


def _count(source: _Source, table: str) -> int | None:
    """The table's row count through any of its b-trees that is still readable."""
    indexes = source.rows(f"PRAGMA index_list({table})")[0]
    for hint in ["", *(f" INDEXED BY {row[1]}" for row in indexes)]:
        found, ok = source.rows(f"SELECT count(*) FROM {table}{hint}")
        if ok:
            return int(found[0][0])
    return None


def _drop_orphans(target: Any, tables: tuple[TableRescue, ...]) -> tuple[TableRescue, ...]:
    """Rows whose parent row was lost cannot be used (a sample of no known device)."""
    result = []
    for rescued in tables:
        dropped = 0
        for fk in target.execute(f"PRAGMA foreign_key_list({rescued.table})").fetchall():
            parent, column, parent_column = fk[2], fk[3], fk[4]
            dropped += target.execute(
                f"DELETE FROM {rescued.table} WHERE {column} NOT IN"
                f" (SELECT {parent_column} FROM {parent})"
            ).rowcount
        lost = None if rescued.lost is None else rescued.lost + dropped
        result.append(TableRescue(rescued.table, rescued.saved - dropped, lost))
    return tuple(result)


def _record_lost_samples(target: Any) -> dict[str, list[tuple[int, int]]]:
    """Seqs below a device's sync position (or its highest seq) that are neither sample nor gap."""
    lost: dict[str, list[tuple[int, int]]] = {}
    devices = target.execute(
        "SELECT d.id, d.address, c.next_seq FROM devices AS d"
        " LEFT JOIN sync_cursors AS c ON c.device_id = d.id"
    ).fetchall()
    for device_id, address, position in devices:
        covered = target.execute(
            "SELECT seq, seq FROM samples WHERE device_id = ?1 UNION ALL"
            " SELECT first_seq, last_seq FROM gaps WHERE device_id = ?1 ORDER BY 1",
            (device_id,),
        )
        expected = FIRST_SEQ
        ranges = []
        for first, last in covered:
            if first > expected:
                ranges.append((expected, first - 1))
            expected = max(expected, last + 1)
        if position is not None and position > expected:
            ranges.append((expected, position - 1))
        target.executemany(
            "INSERT INTO gaps (device_id, first_seq, last_seq, reason, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(device_id, a, b, LOST, int(time.time())) for a, b in ranges],
        )
        target.execute(
            "INSERT INTO sync_cursors (device_id, next_seq) VALUES (?, ?)"
            " ON CONFLICT (device_id) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)",
            (device_id, expected),
        )
        if ranges:
            lost[str(address)] = ranges
    return lost
