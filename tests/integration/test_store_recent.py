"""Live uploads read back from memory (``phoneagent.store.recent``), on real SQLCipher
files: the same answer as the SQL read, and SQL again whenever anything else changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import pytest

from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import set_consent
from phoneagent.privacy.gate import upload_subjects
from phoneagent.store import PackedSamples, Store, StoredSample, recent
from phoneagent.store.ledger import UploadConsents
from protocol.metrics import Metric, Sample
from protocol.settings import Sex
from tests.integration.conftest import KEY, raw_connection, traced_statements

WATCH = "F0:F1:F2:F3:F4:F5"
SUBJECTS = upload_subjects("eu")
Columns = tuple[list[int], list[int], list[int], list[int]]


def samples(seqs: range | list[int]) -> list[Sample]:
    metrics = list(Metric)
    return [Sample(s, 1_700_000_000 + 7 * s, metrics[s % 4], 1000 - 3 * s) for s in seqs]


def columns(of: Sequence[Sample | StoredSample]) -> Columns:
    return (
        [s.seq for s in of],
        [int(s.metric) for s in of],
        [s.timestamp for s in of],
        [s.raw for s in of],
    )


def chunk(store: Store, after: int, limit: int = 100) -> tuple[UploadConsents | None, Columns]:
    """``upload_chunk`` as columns, whichever form it came in."""
    consents, got = store.upload_chunk(WATCH, after, limit, *SUBJECTS)
    if not isinstance(got, PackedSamples):
        return consents, got
    base, ts = got.base_seq, got.base_ts
    rows = [got.rows[i : i + 13] for i in range(0, len(got.rows), 13)]
    return consents, (
        [base + int.from_bytes(r[0:4]) for r in rows],
        [r[8] for r in rows],
        [ts + int.from_bytes(r[4:8]) - 2**31 for r in rows],
        [int.from_bytes(r[9:13]) - 2**31 for r in rows],
    )


def reads_samples(statements: list[str]) -> bool:
    return any("FROM samples" in s for s in statements)


@pytest.fixture
def store(store: Store) -> Store:
    """An account in the EU with cloud sync on, and WATCH with 10 samples, all read."""
    create_account(store, ProfileInput("eu", date(1990, 1, 1), Sex.FEMALE, 170, 700))
    set_consent(store, "cloud_sync", True)
    store.add_device(WATCH)
    store.store_batch(WATCH, samples(range(10)))
    consents, read = chunk(store, -1)
    assert read == columns(samples(range(10)))
    assert consents is not None and consents.cloud is True
    return store


def test_a_live_batch_is_read_back_from_memory_as_sql_reads_it(
    store: Store, tmp_path: Path
) -> None:
    store.store_batch(WATCH, samples(range(10, 14)), durable=False)
    store.store_batch(WATCH, samples(range(14, 16)), durable=False)
    with traced_statements(store) as statements:
        from_memory = chunk(store, 9)
        limited = chunk(store, 11, limit=3)
    assert not reads_samples(statements)
    assert limited[1] == columns(samples(range(12, 15)))
    with Store.open(tmp_path / "data", KEY) as other:  # a second connection reads SQL
        assert other.upload_chunk(WATCH, 9, 100, *SUBJECTS)[0] == from_memory[0]
    assert from_memory[1] == columns(samples(range(10, 16)))


def withdraw_cloud_sync(store: Store, tmp_path: Path) -> None:
    set_consent(store, "cloud_sync", False)


def fill_a_gap_below(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples([12, 13]), durable=False)  # 10 and 11 not there yet
    store.store_batch(WATCH, samples([10, 11]))  # a backfill fills them in


def arrive_out_of_order(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples([11, 10]), durable=False)


def repeat_a_stored_seq(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples([9, 10]), durable=False)


def erase_a_metric(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples(range(10, 14)), durable=False)
    store.ledger.delete_samples(WATCH, Metric.STEPS, None, None)


def another_process_deletes(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples(range(10, 14)), durable=False)
    conn = raw_connection(tmp_path / "data")
    try:
        conn.execute("DELETE FROM samples WHERE seq = 11")
    finally:
        conn.close()


def store_minutes(store: Store, tmp_path: Path) -> None:
    store.store_minutes(WATCH, samples([10, 11]))


def keep_more_than_kept(store: Store, tmp_path: Path) -> None:
    store.store_batch(WATCH, samples(range(10, 10 + recent.MAX_KEPT)), durable=False)
    store.store_batch(WATCH, samples([10 + recent.MAX_KEPT]), durable=False)


@pytest.mark.parametrize(
    "change",
    [
        withdraw_cloud_sync,
        fill_a_gap_below,
        arrive_out_of_order,
        repeat_a_stored_seq,
        erase_a_metric,
        another_process_deletes,
        store_minutes,
        keep_more_than_kept,
    ],
)
def test_anything_but_a_new_batch_in_order_is_read_from_sql_again(
    store: Store, tmp_path: Path, change: Callable[[Store, Path], None]
) -> None:
    change(store, tmp_path)
    with traced_statements(store) as statements:
        got = chunk(store, 9, limit=20_000)
    assert reads_samples(statements)
    with Store.open(tmp_path / "data", KEY) as other:
        assert got[0] == other.ledger.upload_consents(*SUBJECTS)
        assert got[1] == columns([s for s in other.iter_samples(WATCH) if s.seq > 9])
