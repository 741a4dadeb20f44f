"""The encrypted store on real SQLCipher files: batches, sync position, queries, devices,
migrations."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from phoneagent.store import (
    LATEST_VERSION,
    AsyncStore,
    MissingSeqs,
    OnLoop,
    SchemaTooNewError,
    Store,
    UnknownDeviceError,
    db,
)
from phoneagent.store.schema import migrate
from protocol.history import FIRST_SEQ
from protocol.metrics import Metric, Sample, SampleRun
from tests.integration.conftest import (
    KEY,
    checkpointed_sync_positions,
    raw_connection,
    traced_statements,
)

WATCH = "F0:F1:F2:F3:F4:F5"
OTHER = "C0:C1:C2:C3:C4:C5"
METRICS = list(Metric)


def samples(seqs: range | list[int], metric: Metric | None = None, raw: int = 0) -> list[Sample]:
    return [
        Sample(
            seq=s,
            timestamp=1_700_000_000 + s,
            metric=metric or METRICS[s % len(METRICS)],
            raw=raw + s,
        )
        for s in seqs
    ]


@pytest.fixture
def store(store: Store) -> Store:
    """The shared empty store, with WATCH in it."""
    store.add_device(WATCH, name="Test Watch")
    return store


def test_store_batch_is_idempotent_and_counts_duplicates(store: Store) -> None:
    first = store.store_batch(WATCH, samples(range(10)))
    again = store.store_batch(WATCH, samples(range(5, 15), raw=1000))
    assert (first.new, first.duplicates, first.next_seq) == (10, 0, 10)
    assert (again.new, again.duplicates, again.next_seq) == (5, 5, 15)
    stored = {s.seq: s.raw for s in store.iter_samples(WATCH)}
    assert stored == {s: s for s in range(5)} | {s: s for s in range(5, 10)} | {
        s: 1000 + s for s in range(10, 15)
    }
    # A repeat inside one batch is a duplicate too.
    inside = store.store_batch(WATCH, samples([15, 15, 16]))
    assert (inside.new, inside.duplicates) == (2, 1)


def test_sync_position_moves_only_over_contiguous_seqs_and_gaps(store: Store) -> None:
    assert store.next_seq(WATCH) == FIRST_SEQ == 1  # the watch never assigns seq 0
    assert store.store_batch(WATCH, samples(range(5, 10))).next_seq == 1
    assert store.store_batch(WATCH, samples(range(3))).next_seq == 3
    assert store.store_batch(WATCH, samples([3, 4])).next_seq == 10
    # The watch lost 10..19: recording the gap moves the sync position past it, to the next hole.
    result = store.store_batch(WATCH, samples(range(20, 25)), [MissingSeqs(10, 19, "overwritten")])
    assert (result.gaps_new, result.next_seq) == (1, 25)
    assert store.store_batch(WATCH, [], [MissingSeqs(10, 19, "overwritten")]).gaps_new == 0
    # Gaps alone (history starting late) and overlapping gaps.
    assert (
        store.store_batch(
            WATCH, samples([40]), [MissingSeqs(25, 30, "a"), MissingSeqs(28, 39, "b")]
        ).next_seq
        == 41
    )
    assert store.next_seq(WATCH) == 41
    # A gap recorded ahead, just past the run that then arrives in order: both passed.
    assert store.store_batch(WATCH, [], [MissingSeqs(44, 46, "c")]).next_seq == 41
    assert store.store_batch(WATCH, samples(range(41, 44))).next_seq == 47


def test_failed_batch_stores_nothing(store: Store) -> None:
    store.store_batch(WATCH, samples(range(3)))
    bad = [*samples(range(3, 8)), Sample(seq=8, timestamp=0, metric=Metric.STEPS, raw=2**70)]
    with pytest.raises(OverflowError):
        store.store_batch(WATCH, bad, [MissingSeqs(100, 200, "x")])
    assert [s.seq for s in store.iter_samples(WATCH)] == [0, 1, 2]
    assert store.next_seq(WATCH) == 3
    assert store.gaps(WATCH) == []


def test_a_batch_not_durable_reaches_the_database_file_at_make_durable(
    store: Store, tmp_path: Path
) -> None:
    """A live sync's commits skip the fsync; ``make_durable`` (a checkpoint: the log synced,
    copied into the database file, that synced) is the barrier before the watch is told."""
    store.store_batch(WATCH, samples(range(10)), durable=False)
    assert store.next_seq(WATCH) == 10
    assert checkpointed_sync_positions(tmp_path / "data", KEY) == {}
    store.make_durable()
    assert checkpointed_sync_positions(tmp_path / "data", KEY) == {WATCH: 10}


def test_make_durable_while_another_reader_holds_the_log_back(store: Store, tmp_path: Path) -> None:
    """A reader elsewhere (a CLI command, say) keeps the checkpoint from copying what it
    may still read: the log is synced instead, and the checkpoint catches up later."""
    reader = raw_connection(tmp_path / "data")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM samples").fetchone()  # its snapshot starts
        store.store_batch(WATCH, samples(range(5)), durable=False)
        store.make_durable()  # the checkpoint stops at the reader's snapshot
        assert store.next_seq(WATCH) == 5
    finally:
        reader.close()
    store.make_durable()
    assert checkpointed_sync_positions(tmp_path / "data", KEY) == {WATCH: 5}


def test_the_version_moves_with_every_change_but_samples(store: Store, tmp_path: Path) -> None:
    """What the uploader's copy of the ledger is checked against: this store's writes
    other than samples, and any commit of another connection (another process)."""
    start = store.version()
    store.store_batch(WATCH, samples(range(4)), durable=False)
    store.store_batch(WATCH, samples(range(4, 8)))
    assert store.version() == start
    store.ledger.record_upload("eu", {WATCH: 3}, None)
    mine = store.version()
    assert mine != start
    with Store.open(tmp_path / "data", KEY) as other:
        other.set_setting("cloud.enabled", "true")
    assert store.version() not in (start, mine)


def test_a_write_not_durable_leaves_the_next_durable_one_synced(store: Store) -> None:
    """Failed or not, a commit without the fsync never takes it away from the next durable
    write; commits without it in a row set the mode once (a live sync's, one a second)."""
    with traced_statements(store) as traced:
        store.store_batch(WATCH, samples(range(3)), durable=False)
        with pytest.raises(UnknownDeviceError):  # fails within the transaction
            store.store_batch("AA:BB:CC:DD:EE:99", samples(range(3)), durable=False)
        store.store_batch(WATCH, samples(range(3, 5)), durable=False)
        store.store_batch(WATCH, samples(range(5, 6)))
    modes = [s for s in traced if s.startswith(("PRAGMA synchronous", "COMMIT", "ROLLBACK"))]
    assert modes == [
        "PRAGMA synchronous = NORMAL",
        "COMMIT",
        "ROLLBACK",
        "COMMIT",
        "PRAGMA synchronous = FULL",
        "COMMIT",
    ]
    assert store.pragma("synchronous") == "2"  # FULL
    assert store.next_seq(WATCH) == 6


def test_an_upload_record_within_a_long_upload_skips_the_fsync(store: Store) -> None:
    """A record behind a long upload's publishing skips the fsync (a power loss takes back
    its position and disclosure row, and the data goes again); the session's last is a
    FULL commit, which syncs every commit before it too."""
    with traced_statements(store) as traced:
        store.ledger.record_upload("eu", {WATCH: 3}, None, durable=False)
        store.ledger.record_upload("eu", {WATCH: 5}, None)
    modes = [s for s in traced if s.startswith(("PRAGMA synchronous", "COMMIT"))]
    assert modes == ["PRAGMA synchronous = NORMAL", "COMMIT", "PRAGMA synchronous = FULL", "COMMIT"]
    assert store.pragma("synchronous") == "2"  # FULL
    assert store.ledger.get_upload_position(WATCH, "eu") == 5


@pytest.mark.parametrize("raw", [2**63, -(2**63) - 1])
def test_an_int_just_past_64_bits_is_refused(store: Store, raw: int) -> None:
    """The quick int64 check (one struct pack) and its exact fallback agree at the edge."""
    bad = [*samples(range(2)), Sample(seq=2, timestamp=0, metric=Metric.STEPS, raw=raw)]
    with pytest.raises(OverflowError):
        store.store_batch(WATCH, bad)
    assert list(store.iter_samples(WATCH)) == []


def test_64_bit_extremes_are_stored_exactly(store: Store) -> None:
    """The batch travels as JSON into SQLite: the extremes must come back as the same ints."""
    edges = [2**63 - 1, -(2**63), 2**53 + 1]
    store.store_batch(
        WATCH, [Sample(seq, 1_700_000_000, Metric.STEPS, raw) for seq, raw in enumerate(edges, 1)]
    )
    assert [s.raw for s in store.iter_samples(WATCH)] == edges


def _run(samples: list[Sample]) -> SampleRun:
    """``samples`` (consecutive seqs) as the columns a backfill's group is."""
    return SampleRun(
        samples[0].seq,
        [s.timestamp for s in samples],
        [s.metric for s in samples],
        [s.raw for s in samples],
    )


def _stored(store: Store, device: str) -> list[Sample]:
    kept = (Sample(s.seq, s.timestamp, s.metric, s.raw) for s in store.iter_samples(device))
    return sorted(kept, key=lambda sample: sample.seq)


# Each field at the edges of the packing a run is inserted with (timestamp << 24 |
# metric << 16 | raw + 32768), then one sample just past it: stored the general way.
_PACKED_EDGES = [
    Sample(1, 0, Metric.HEART_RATE, -(2**15)),
    Sample(2, 2**32 - 1, Metric.SKIN_TEMPERATURE, 2**15 - 1),
    Sample(3, 1_700_000_000, Metric.STEPS, 0),
    Sample(4, 1_700_000_001, Metric.SPO2, -1),
]
_PAST_PACKING = [
    Sample(5, 1_700_000_002, Metric.STEPS, 2**15),
    Sample(5, 1_700_000_002, Metric.STEPS, -(2**15) - 1),
    Sample(5, 2**32, Metric.STEPS, 0),
    Sample(5, -1, Metric.STEPS, 0),
]


@pytest.mark.parametrize("past", [None, *_PAST_PACKING])
def test_a_run_stores_what_its_samples_store(store: Store, past: Sample | None) -> None:
    """A backfill's group comes as a ``SampleRun`` and is inserted packed, one integer a
    sample, when every field fits: the rows, counts and sync position are those of the
    same samples as a list, at the packing's edges and just past them."""
    given = _PACKED_EDGES if past is None else [*_PACKED_EDGES, past]
    store.add_device(OTHER)
    with traced_statements(store) as statements:
        as_run = store.store_batch(WATCH, _run(given))
    packed = any("FROM json_each(" in statement for statement in statements)
    assert packed is (past is None)
    as_list = store.store_batch(OTHER, given)
    assert as_run == as_list and as_run.new == len(given)
    assert _stored(store, WATCH) == given == _stored(store, OTHER)
    again = store.store_batch(WATCH, _run(given))  # a REPORT repeated: duplicates only
    assert (again.new, again.duplicates) == (0, len(given))
    assert _stored(store, WATCH) == given


def test_a_run_past_64_bit_seqs_is_refused(store: Store) -> None:
    run = SampleRun(2**63 - 2, [1, 2, 3], [Metric.STEPS] * 3, [0, 0, 0])
    with pytest.raises(OverflowError):
        store.store_batch(WATCH, run)
    assert list(store.iter_samples(WATCH)) == []


def test_unknown_device_is_refused(store: Store) -> None:
    with pytest.raises(UnknownDeviceError, match="not in the store"):
        store.store_batch(OTHER, samples(range(1)))
    with pytest.raises(UnknownDeviceError):
        store.next_seq(OTHER)


def test_queries_filter_by_device_metric_and_time(store: Store) -> None:
    store.add_device(OTHER)
    store.store_batch(WATCH, samples(range(2500)))  # more than one page
    store.store_batch(OTHER, samples(range(100), Metric.SPO2, raw=900))
    everything = list(store.iter_samples())
    assert [(s.device, s.seq) for s in everything] == [(OTHER, s) for s in range(100)] + [
        (WATCH, s) for s in range(2500)
    ]
    hr = list(
        store.iter_samples(WATCH, Metric.HEART_RATE, since=1_700_001_000, until=1_700_002_001)
    )
    assert [s.seq for s in hr] == [
        s for s in range(1000, 2001) if METRICS[s % 4] is Metric.HEART_RATE
    ]
    first = list(store.iter_samples(OTHER, until=1_700_000_001))
    assert first[0].sample == Sample(0, 1_700_000_000, Metric.SPO2, 900)
    assert first[0].value == 90.0
    assert len(first) == 1
    assert store.counts() == {
        WATCH: {m: 625 for m in Metric},
        OTHER: {Metric.SPO2: 100},
    }


def test_gaps_are_listed_with_time_and_reason(store: Store) -> None:
    store.add_device(OTHER)
    store.store_batch(
        WATCH, [], [MissingSeqs(7, 9, "history full"), MissingSeqs(0, 2, "before first sync")]
    )
    store.store_batch(OTHER, [], [MissingSeqs(4, 4, "crc")])
    assert [(g.device, g.first_seq, g.last_seq, g.reason) for g in store.gaps()] == [
        (OTHER, 4, 4, "crc"),
        (WATCH, 0, 2, "before first sync"),
        (WATCH, 7, 9, "history full"),
    ]
    assert {g.recorded_at for g in store.gaps()} == {1_800_000_000}
    assert len(store.gaps(OTHER)) == 1
    with pytest.raises(ValueError, match="first_seq"):
        MissingSeqs(3, 2, "backwards")


def test_devices_keep_a_random_pseudonym__PR_DEVICE(store: Store) -> None:
    before = store.get_device(WATCH)
    assert before is not None
    after = store.add_device(WATCH, model="SW-1", serial="S123", firmware="1.2.3")
    assert (after.name, after.model, after.serial, after.firmware) == (
        "Test Watch",
        "SW-1",
        "S123",
        "1.2.3",
    )
    assert (after.pseudonym, after.added_at) == (before.pseudonym, 1_800_000_000)
    other = store.add_device(OTHER)
    assert other.pseudonym != after.pseudonym
    assert WATCH.replace(":", "").lower() not in after.pseudonym.lower()
    assert len(after.pseudonym) == 32
    assert [d.address for d in store.list_devices()] == [OTHER, WATCH]
    assert store.get_device("00:00:00:00:00:00") is None


def test_bonds_by_address(store: Store) -> None:
    assert store.get_bond(WATCH) is None
    store.put_bond(WATCH, b"\x01ltk")
    store.put_bond(OTHER, b"\x02")
    store.put_bond(WATCH, b"\x03irk")
    assert store.get_bond(WATCH) == b"\x03irk"
    assert store.list_bonds() == [OTHER, WATCH]
    store.delete_bond(OTHER)
    store.delete_bond(OTHER)
    assert store.list_bonds() == [WATCH]


def test_delete_device_removes_its_data_and_bond__PR_WITHDRAW(store: Store) -> None:
    store.add_device(OTHER)
    store.put_bond(WATCH, b"keys")
    store.store_batch(WATCH, samples(range(50)), [MissingSeqs(50, 60, "x")])
    store.store_batch(OTHER, samples(range(5)))
    assert store.delete_device(WATCH) is True
    assert store.delete_device(WATCH) is False
    assert store.get_bond(WATCH) is None
    assert store.counts() == {OTHER: {m: c for m, c in zip(METRICS, (2, 1, 1, 1), strict=True)}}
    assert store.gaps() == []
    store.add_device(WATCH)
    assert store.next_seq(WATCH) == FIRST_SEQ


@pytest.mark.parametrize("rows", [10, 5000])
def test_deleting_a_device_leaves_no_row_of_it_after_any_batch(store: Store, rows: int) -> None:
    """A batch of many rows (a backfill's group) is stored without SQLite's foreign-key
    check of each row; every other write has it on, and the device's deletion cascades
    to its samples, gaps and sync position, as read by another program."""
    (device_id,) = raw_connection(store.path.parent).execute("SELECT id FROM devices").fetchone()
    with traced_statements(store) as statements:
        store.store_batch(WATCH, samples(range(rows)), [MissingSeqs(rows, rows + 5, "x")])
    assert ("PRAGMA foreign_keys = OFF" in statements) is (rows >= 1024)
    assert store.delete_device(WATCH) is True
    assert store.pragma("foreign_keys") == "1"
    other = raw_connection(store.path.parent)
    for table in ("samples", "gaps", "sync_cursors"):
        left = other.execute(f"SELECT count(*) FROM {table} WHERE device_id = ?", (device_id,))
        assert left.fetchone() == (0,), table
    other.close()


def test_a_device_deleted_by_another_process_takes_no_more_samples(store: Store) -> None:
    """SQLite gives a deleted device's row id to the next device added. An agent that went
    on storing under the id it had for a watch another process deleted (``delete`` beside
    ``run``, then ``pair`` of a new watch) would file its samples under the new watch."""
    store.store_batch(WATCH, samples(range(5)))
    conn = db.connect(store.path, KEY)  # another process
    conn.execute("PRAGMA foreign_keys = ON")
    ids = conn.execute("SELECT id FROM devices WHERE address = ?", (WATCH,)).fetchall()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM devices WHERE address = ?", (WATCH,))
    conn.execute("INSERT INTO devices (address, pseudonym, added_at) VALUES (?, 'p', 0)", (OTHER,))
    conn.execute("COMMIT")
    assert conn.execute("SELECT id FROM devices WHERE address = ?", (OTHER,)).fetchall() == ids
    conn.close()
    with pytest.raises(UnknownDeviceError):
        store.store_batch(WATCH, samples(range(5, 10)))
    with pytest.raises(UnknownDeviceError):
        store.store_minutes(WATCH, samples(range(5, 10)))
    assert store.counts() == {}
    assert store.next_seq(OTHER) == FIRST_SEQ


def test_a_long_read_never_lends_a_deleted_watch_the_next_ones_samples(store: Store) -> None:
    """``export`` or ``data`` reads page by page; another process deletes the watch and
    pairs a new one, which gets the deleted one's row id, and stores its samples. The
    rest of the read showed them under the deleted watch's address."""
    store.store_batch(WATCH, samples(range(2500)))
    reading = store.iter_samples(WATCH)
    first = [next(reading) for _ in range(10)]  # the first page is read
    with Store.open(store.path.parent, KEY) as other_process:
        assert other_process.delete_device(WATCH)
        other_process.add_device(OTHER)
        other_process.store_batch(OTHER, samples(range(5000, 7500)))
    rest = list(reading)
    assert all(s.device == WATCH and s.seq < 2500 for s in first + rest)
    assert len(first + rest) < 2500  # the first page, then nothing: the watch is gone


def test_settings(store: Store) -> None:
    assert store.get_setting("cloud.enabled") is None
    store.set_setting("cloud.enabled", "false")
    store.set_setting("cloud.enabled", "true")
    assert store.get_setting("cloud.enabled") == "true"
    store.delete_setting("cloud.enabled")
    assert store.get_setting("cloud.enabled") is None


def test_everything_survives_reopening(tmp_path: Path) -> None:
    with Store.open(tmp_path, KEY) as store:
        store.add_device(WATCH)
        store.put_bond(WATCH, b"bond")
        store.store_batch(WATCH, samples(range(30)))
    with Store.open(tmp_path, KEY) as store:
        assert store.next_seq(WATCH) == 30
        assert store.get_bond(WATCH) == b"bond"
        assert sum(store.counts()[WATCH].values()) == 30


def _old_store(directory: Path, version: int, rows: str, values: list[tuple[Any, ...]]) -> None:
    """A store at schema ``version`` with WATCH, ``rows`` inserted and its sync position at 20."""
    conn = raw_connection(directory)
    migrate(conn, target=version)
    conn.execute("INSERT INTO devices (address, pseudonym, added_at) VALUES (?, 'p1', 5)", (WATCH,))
    conn.executemany(rows, values)
    conn.execute("INSERT INTO sync_cursors VALUES (1, 20)")
    conn.close()


def test_v1_database_is_migrated_to_latest(tmp_path: Path) -> None:
    _old_store(
        tmp_path / "data",
        1,
        "INSERT INTO samples (device_id, seq, metric, ts, raw) VALUES (1, ?, 1, ?, 60)",
        [(s, 100 + s) for s in range(20)],
    )
    assert LATEST_VERSION > 1
    with Store.open(tmp_path / "data", KEY) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.next_seq(WATCH) == 20
        assert [s.seq for s in store.iter_samples(WATCH, since=110)] == list(range(10, 20))
        assert store.store_batch(WATCH, samples(range(20, 22))).next_seq == 22
    conn = raw_connection(tmp_path / "data")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "samples_by_time" in names


def test_v3_seq_zero_gap_is_dropped_by_the_migration(tmp_path: Path) -> None:
    """Issue 16 item 7: databases synced from the old sync position (0) lose the gap it left."""
    _old_store(
        tmp_path / "data",
        3,
        "INSERT INTO gaps VALUES (1, ?, ?, ?, 5)",
        [(0, 0, "not assigned"), (10, 12, "not assigned"), (0, 2, "dropped on watch")],
    )
    with Store.open(tmp_path / "data", KEY) as store:
        kept = [(g.first_seq, g.last_seq, g.reason) for g in store.gaps(WATCH)]
        assert kept == [(0, 2, "dropped on watch"), (10, 12, "not assigned")]
        assert store.next_seq(WATCH) == 20


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = raw_connection(tmp_path / "data")
    migrate(conn)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade phoneagent"):
        Store.open(tmp_path / "data", KEY)


@pytest.mark.parametrize("on_loop", [False, True], ids=["own store thread", "on the loop"])
async def test_async_store_serves_concurrent_devices(tmp_path: Path, on_loop: bool) -> None:
    addresses = [f"D0:00:00:00:00:0{i}" for i in range(4)]
    async_store = AsyncStore(Store.open(tmp_path, KEY), OnLoop() if on_loop else None)
    # An agent fleet's calls block the loop (no hand-over); the daemon's never do.
    ran_on = await async_store.pool.run(threading.get_ident)
    assert (ran_on == threading.get_ident()) is on_loop
    for address in addresses:
        async_store.store.add_device(address)
    rng = random.Random(3)

    async def sync(address: str) -> list[int]:
        positions = []
        for start in range(0, 2000, 250):
            batch = samples(range(start, start + 250))
            rng.shuffle(batch)
            result = await async_store.store_batch(address, batch)
            positions.append(result.next_seq)
        await async_store.put_bond(address, address.encode())
        return positions

    results = await asyncio.wait_for(asyncio.gather(*(sync(a) for a in addresses)), timeout=60)
    assert results == [list(range(250, 2001, 250))] * len(addresses)
    assert [await async_store.next_seq(a) for a in addresses] == [2000] * 4
    assert await async_store.list_bonds() == addresses
    assert await async_store.get_bond(addresses[0]) == addresses[0].encode()
    await async_store.delete_bond(addresses[0])
    assert await async_store.get_device(addresses[1]) is not None
    await async_store.aclose()
