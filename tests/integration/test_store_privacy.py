"""PR-ENC: nothing personal readable outside the encrypted file, and clear key errors."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from phoneagent.paths import database_path
from phoneagent.store import DbKey, NotADatabaseError, Store, UnsafeDirectoryError, WrongKeyError
from protocol.metrics import Metric, Sample

KEY = DbKey("c3" * 32)
ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "F0:F1:F2:F3:F4:F5"
SECRETS = [b"Zephyrine-Watch-Name", b"SERIAL-QX-774411", b"bond-ltk-7f3a9e", b"diary-9917"]
DISTINCT_RAW = 0x0BADC0FFEE  # SQLite stores it as these 6 big-endian bytes
SQLITE_HEADER = b"SQLite format 3"


def fill(store: Store) -> None:
    store.add_device(ADDRESS, name=SECRETS[0].decode(), serial=SECRETS[1].decode())
    store.put_bond(ADDRESS, SECRETS[2])
    store.set_setting("note", SECRETS[3].decode())
    store.store_batch(
        ADDRESS,
        [
            Sample(seq=s, timestamp=1_700_000_000 + s, metric=Metric.STEPS, raw=DISTINCT_RAW)
            for s in range(300)
        ],
    )


def scan(directory: Path) -> dict[str, list[bytes]]:
    """Every file under ``directory`` and the forbidden byte strings found in it."""
    needles = [*SECRETS, ADDRESS.encode(), DISTINCT_RAW.to_bytes(6, "big"), SQLITE_HEADER]
    found: dict[str, list[bytes]] = {}
    for path in directory.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found[path.name] = [n for n in needles if n in content]
    return found


def test_no_plaintext_in_any_file_of_the_data_dir__PR_ENC(tmp_path: Path) -> None:
    store = Store.open(tmp_path, KEY)
    fill(store)
    # While open the recent pages sit in the WAL: it must be ciphertext too.
    open_files = scan(tmp_path)
    assert {"phoneagent.db", "phoneagent.db-wal"} <= open_files.keys()
    assert all(hits == [] for hits in open_files.values()), open_files
    store.close()
    closed_files = scan(tmp_path)
    assert closed_files == {"phoneagent.db": []}


def test_store_forces_wal_and_memory_temp_store__PR_ENC(tmp_path: Path) -> None:
    with Store.open(tmp_path, KEY) as store:
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("temp_store") == "2"  # MEMORY
        assert store.pragma("cipher_version").endswith("community")
        with pytest.raises(ValueError, match="not a pragma"):
            store.pragma("key = 'x'")


def test_files_are_owner_only__PR_ENC(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "data"
    with Store.open(directory, KEY) as store:
        fill(store)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert modes["phoneagent.db"] == 0o600
    assert modes["phoneagent.db-wal"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_a_directory_others_can_read_is_refused__PR_ENC(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o755)
    with pytest.raises(UnsafeDirectoryError, match=f"run: chmod 700 {directory}"):
        Store.open(directory, KEY)
    assert list(directory.iterdir()) == []
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755


def test_plain_sqlite_cannot_read_the_store__PR_ENC(tmp_path: Path) -> None:
    with Store.open(tmp_path, KEY) as store:
        fill(store)
    conn = sqlite3.connect(database_path(tmp_path))
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    conn.close()


def test_wrong_key_is_a_clear_error_and_changes_nothing__PR_ENC(tmp_path: Path) -> None:
    with Store.open(tmp_path, KEY) as store:
        fill(store)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(WrongKeyError, match=r"key \(from environment\) does not open") as error:
        Store.open(tmp_path, DbKey("c4" * 32), key_source="environment")
    assert "was not changed" in str(error.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_wrong_key_prints_nothing_but_our_message__PR_ENC(tmp_path: Path) -> None:
    """In a fresh process, since SQLCipher's log level is process-wide."""
    with Store.open(tmp_path, KEY) as store:
        fill(store)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from phoneagent.store import DbKey, Store, WrongKeyError\n"
        "try:\n"
        f"    Store.open(Path({str(tmp_path)!r}), DbKey('00' * 32))\n"
        "except WrongKeyError as e:\n"
        "    print(e, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stderr.startswith("The key does not open the encrypted store")
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    "content",
    [b"not a database, just some notes\n" * 300, b"\x00" * 4096, b"\x17" * 100],
    ids=["text", "zeros", "truncated"],
)
def test_a_file_that_is_not_a_store_is_a_different_error__PR_ENC(
    tmp_path: Path, content: bytes
) -> None:
    path = database_path(tmp_path)
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(NotADatabaseError, match="is not a phoneagent store"):
        Store.open(tmp_path, KEY)
    assert path.read_bytes() == content


def test_an_unencrypted_sqlite_file_is_named_as_such__PR_ENC(tmp_path: Path) -> None:
    path = database_path(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotADatabaseError, match="unencrypted SQLite database"):
        Store.open(tmp_path, KEY)
    assert path.read_bytes() == before
