"""What the integration tests share: a running loopback watch on the test's air, and an
encrypted store on real SQLCipher files whose clock the test sets."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import sqlcipher3
from bumble.link import LocalLink

from phoneagent.paths import database_path
from phoneagent.store import DbKey, Store
from watchsim.testing import LoopbackWatch, start_loopback_watch

KEY: Final = DbKey("5e" * 32)
NOW: Final = 1_800_000_000


class Clock:
    """The store's clock, moved by the test: what the store records carries a known time."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def raw_connection(directory: Path, key: DbKey = KEY) -> sqlcipher3.Connection:
    """The store's file in ``directory`` opened with sqlcipher3 alone, as another program
    (or another process) would: none of ``Store``'s checks or pragmas."""
    directory.mkdir(mode=0o700, exist_ok=True)
    conn = sqlcipher3.connect(str(database_path(directory)), isolation_level=None)
    conn.execute(f"PRAGMA key = {key.pragma_value()}")
    return conn


@contextlib.contextmanager
def traced_statements(store: Store) -> Iterator[list[str]]:
    """Every statement ``store`` runs meanwhile, as SQLite traces it: the only way to see
    how a commit is synced (``PRAGMA synchronous`` before it). It reaches for the store's
    private connection, which nothing outside ``phoneagent.store`` otherwise gets."""
    statements: list[str] = []
    connection: Any = store._conn
    connection.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        connection.set_trace_callback(None)


def checkpointed_sync_positions(directory: Path, key: DbKey) -> dict[str, int]:
    """Each device's sync position as the store's database file holds it without its
    write-ahead log: what checkpoints (``Store.make_durable``) put there, not what only the
    log holds yet."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copyfile(database_path(directory), database_path(Path(scratch)))
        conn = raw_connection(Path(scratch), key)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if "sync_cursors" not in {name for (name,) in tables}:
                return {}  # not even the schema has been checkpointed yet
            rows = conn.execute(
                "SELECT address, next_seq FROM sync_cursors JOIN devices ON id = device_id"
            ).fetchall()
        finally:
            conn.close()
    return {str(address): int(seq) for address, seq in rows}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    """Empty, opened with ``KEY`` under ``tmp_path / "data"``, closed after the test."""
    with Store.open(tmp_path / "data", KEY, clock=clock) as opened:
        yield opened


@pytest.fixture
async def watch(link: LocalLink, tmp_path: Path) -> AsyncIterator[LoopbackWatch]:
    """The simulated watch at 60 times real speed: a simulated minute passes in a second."""
    running = await start_loopback_watch(link, tmp_path / "watch", speed=60.0)
    yield running
    await running.stop()
