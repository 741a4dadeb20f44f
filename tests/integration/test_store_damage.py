"""A real SQLCipher file with one page overwritten (issue 16 item 3): every command says the
store is damaged, with its exit code and no traceback, and ``store rescue`` keeps a copy of
the damaged file and saves everything that is still readable."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from datetime import date
from pathlib import Path

import pytest
import sqlcipher3
from click.testing import CliRunner, Result

from phoneagent.cli import main
from phoneagent.control import ControlServer
from phoneagent.errors import EXIT_DAMAGED, EXIT_KEY
from phoneagent.paths import database_path
from phoneagent.privacy import ProfileInput, create_account, set_consent
from phoneagent.store import DamagedStoreError, DbKey, Store
from phoneagent.store.db import connect, damage_reported
from phoneagent.store.rescue import LOST
from protocol.metrics import Metric, Sample
from protocol.settings import Sex

KEY = "4d" * 32
WATCH = "F0:F1:F2:F3:F4:F5"
SAMPLES = 30_000  # about 300 pages of samples: the file's middle page is one of theirs
PAGE = 4096  # SQLCipher 4's default page size


def damage(path: Path, page: int) -> None:
    """Overwrite bytes inside one page, as a failing disk sector would."""
    with path.open("r+b") as f:
        f.seek(page * PAGE + 64)
        f.write(random.Random(page).randbytes(1024))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    with Store.open(directory, DbKey(KEY)) as store:
        store.add_device(WATCH, name="Wrist")
        metrics = list(Metric)
        store.store_batch(
            WATCH,
            [Sample(s, 1_780_000_000 + s, metrics[s % 4], s % 90) for s in range(1, SAMPLES + 1)],
        )
        create_account(store, ProfileInput("eu", date(1990, 3, 1), Sex.FEMALE, 168, 612))
        set_consent(store, "cloud_sync", True)
    path = database_path(directory)
    damage(path, path.stat().st_size // PAGE // 2)
    return directory


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["--data-dir", str(data), *args], env={"PHONEAGENT_DB_KEY": KEY}
    )


def digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("devices",),
        ("data", "--limit", "5"),
        ("export", "--format", "json"),
        ("privacy", "audit"),
        ("store", "check"),
    ],
)
def test_every_command_reports_the_damage_with_its_exit_code(
    data: Path, command: tuple[str, ...]
) -> None:
    before = digest(data)
    result = run(data, *command)
    assert result.exit_code == EXIT_DAMAGED == 6, result.output
    assert "is damaged" in result.stderr and "phoneagent store rescue" in result.stderr
    assert result.stdout == "" and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert digest(data) == before  # the refusal changed nothing


def test_a_damaged_schema_page_is_damage_not_a_wrong_key(data: Path, tmp_path: Path) -> None:
    """SQLite cannot read its schema then, which looked exactly like a wrong key (exit 3)."""
    path = database_path(data)
    damage(path, 0)
    result = run(data, "status")
    assert result.exit_code == EXIT_DAMAGED and "is damaged" in result.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_text("5a" * 32)
    wrong.chmod(0o600)
    result = run(data, "--key-file", str(wrong), "status")
    assert result.exit_code == EXIT_KEY and "does not open" in result.stderr
    result = run(data, "store", "rescue", "--yes")
    assert result.exit_code == 1 and "nothing in it can be found" in result.stderr
    (backup,) = data.glob("phoneagent.db.damaged-*")
    assert backup.read_bytes() == path.read_bytes()  # kept, and the original untouched


def test_damage_met_by_a_query_after_opening_is_reported_as_such(data: Path) -> None:
    """The check on open is one defence; any read that meets a bad page says so too."""
    path = database_path(data)
    conn = connect(path, DbKey(KEY))
    try:
        with pytest.raises(DamagedStoreError, match="malformed"), damage_reported(path):
            conn.execute("SELECT count(*), sum(raw) FROM samples").fetchone()
        conn.close()
        conn = connect(path, DbKey(KEY))
        with pytest.raises(sqlcipher3.OperationalError), damage_reported(path):
            conn.execute("SELECT nonsense FROM samples")  # a bug stays a bug
    finally:
        conn.close()


def test_rescue_backs_up_then_saves_what_is_readable(data: Path) -> None:
    damaged = database_path(data).read_bytes()
    result = run(data, "store", "rescue", "--yes")
    assert result.exit_code == 0, result.output
    (backup,) = data.glob("phoneagent.db.damaged-*")
    assert backup.read_bytes() == damaged and (backup.stat().st_mode & 0o777) == 0o600
    assert f"kept as {backup}" in result.stdout

    status = json.loads(run(data, "status", "--json").stdout)
    (device,) = status["devices"]
    lost = device["gap_seqs"]
    assert 0 < lost < 1000  # a page or so, not the rest of the table
    assert device["samples"] == SAMPLES - lost and device["next_seq"] == SAMPLES + 1
    assert (
        f"samples {SAMPLES - lost:,}" in result.stdout
        and f"Lost: samples {lost:,}" in result.stdout
    )
    assert LOST in result.stdout

    assert run(data, "store", "check").exit_code == 0
    rows = json.loads(run(data, "data", "--format", "json").stdout)
    assert len(rows) == SAMPLES - lost
    exported = json.loads(run(data, "export", "--format", "json").stdout)["tables"]
    assert exported["account"][0]["region"] == "eu"  # the other tables came through whole
    assert [c["subject"] for c in exported["consent_ledger"]] == ["policy", "cloud_sync"]
    again = run(data, "store", "rescue", "--yes")
    assert "not damaged; nothing to rescue" in again.stdout
    assert len(list(data.glob("phoneagent.db.damaged-*"))) == 1


async def test_rescue_waits_for_a_running_agent_to_stop(data: Path) -> None:
    """The agent would go on writing to the damaged file, which the rescue replaces."""

    async def status(request: dict[str, object]) -> dict[str, object]:
        return {}

    server = ControlServer(data, {"status": status})
    await server.start()
    try:
        before = digest(data)
        result = await asyncio.to_thread(run, data, "store", "rescue", "--yes")
    finally:
        await server.close()
    assert result.exit_code == 1 and "stop it first" in result.stderr
    assert {k: v for k, v in digest(data).items() if k != "relays.sock"} == before
    stopped = await asyncio.to_thread(run, data, "store", "rescue", "--yes")
    assert stopped.exit_code == 0, stopped.output


def test_damage_where_reading_starts_is_probed_past(tmp_path: Path) -> None:
    """A bad page on the way to a table's first rows: the reader probes forward past it
    instead of giving up the table, and the seqs it could not read become one gap."""
    directory = tmp_path / "data"
    with Store.open(directory, DbKey(KEY)) as store:
        store.add_device(WATCH)
        store.store_batch(
            WATCH, [Sample(s, 1_780_000_000 + s, Metric.STEPS, 1) for s in range(1, 5001)]
        )
    path = database_path(directory)
    damage(path, _page_on_the_way_to_the_start(path, tmp_path / "probe"))
    assert run(directory, "store", "rescue", "--yes").exit_code == 0
    with Store.open(directory, DbKey(KEY)) as store:
        seqs = [s.seq for s in store.iter_samples()]
        (gap,) = store.gaps()
    assert seqs[0] > 1 and seqs[-1] == 5000
    assert (gap.first_seq, gap.reason) == (1, LOST)
    assert sorted([*seqs, *range(gap.first_seq, gap.last_seq + 1)]) == list(range(1, 5001))


def _page_on_the_way_to_the_start(path: Path, probe: Path) -> int:
    """A page whose damage fails the read of the first samples but not of the last one,
    found by damaging each page of a copy in turn."""
    original = path.read_bytes()
    probe.mkdir()
    copy = probe / path.name
    first = "SELECT seq FROM samples WHERE device_id = 1 AND seq > 0 ORDER BY seq LIMIT 100"
    last = "SELECT raw FROM samples WHERE device_id = 1 AND seq = 5000"
    for page in range(1, len(original) // PAGE):  # page 1 holds the schema
        copy.write_bytes(original)
        damage(copy, page)
        try:
            found = [_readable(copy, query) for query in (first, last)]
        except DamagedStoreError:
            continue  # a page of the schema
        if found == [False, True]:
            return page
    raise AssertionError("no page hides the first samples alone")


def _readable(path: Path, query: str) -> bool:
    """On a connection of its own: SQLCipher fails every read after one meets damage."""
    conn = connect(path, DbKey(KEY))
    try:
        conn.execute(query).fetchall()
    except sqlcipher3.DatabaseError:
        return False
    finally:
        conn.close()
    return True
