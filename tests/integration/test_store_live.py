"""Live-derived per-minute records in the store (issue 20): the schema step that marks
such devices, and storing a minute exactly once."""

from __future__ import annotations

from pathlib import Path

from phoneagent.store import Store
from phoneagent.store.schema import migrate
from phoneagent.sync.minutes import minute_seq
from phoneagent.upload.outbox import read_chunk
from phoneagent.upload.payload import decode_batch
from protocol.metrics import Metric, Sample
from tests.integration.conftest import KEY, raw_connection
from tests.integration.test_store import WATCH

PINETIME = "E0:E1:E2:E3:E4:E5"
MINUTE = 29_833_333


def minute(offset: int, metric: Metric, raw: int) -> Sample:
    m = MINUTE + offset
    return Sample(minute_seq(m, metric), m * 60, metric, raw)


def test_a_v4_store_opens_with_its_devices_as_ours(tmp_path: Path) -> None:
    conn = raw_connection(tmp_path / "data")
    migrate(conn, target=4)
    conn.execute("INSERT INTO devices (address, pseudonym, added_at) VALUES (?, 'p1', 5)", (WATCH,))
    conn.close()
    with Store.open(tmp_path / "data", KEY) as store:
        (device,) = store.list_devices()
        assert (device.personality, device.live_derived) == ("watchsim", False)
        marked = store.add_device(PINETIME, personality="infinitime", live_derived=True)
        assert (marked.personality, marked.live_derived) == ("infinitime", True)
        # A later update that names neither keeps them.
        assert store.add_device(PINETIME, firmware="1.15.0").live_derived


def test_a_minute_is_stored_once(store: Store) -> None:
    store.add_device(PINETIME, personality="infinitime", live_derived=True)
    first = [minute(0, Metric.HEART_RATE, 61), minute(0, Metric.STEPS, 12)]
    result = store.store_minutes(PINETIME, first)
    assert (result.new, result.duplicates) == (2, 0)
    assert result.next_seq == minute_seq(MINUTE, Metric.STEPS) + 1
    # A reconnect within the minute, and the next minute.
    again = store.store_minutes(PINETIME, [minute(0, Metric.STEPS, 3), minute(1, Metric.STEPS, 7)])
    assert (again.new, again.duplicates) == (1, 1)
    assert [(s.metric, s.raw) for s in store.iter_samples(PINETIME)] == [
        (Metric.HEART_RATE, 61),
        (Metric.STEPS, 12),
        (Metric.STEPS, 7),
    ]
    assert store.next_seq(PINETIME) == again.next_seq
    assert store.store_minutes(PINETIME, []).next_seq == again.next_seq


def test_minutes_upload_in_time_order_from_the_upload_position(store: Store) -> None:
    """The uploader reads a live-derived device as it reads a history: seq > position."""
    store.add_device(PINETIME, personality="infinitime", live_derived=True)
    stored = [minute(m, metric, 60 + m) for m in range(3) for metric in Metric if metric < 3]
    store.store_minutes(PINETIME, stored)
    device = store.get_device(PINETIME)
    assert device is not None
    chunk = read_chunk(
        store, device, stored[1].seq, batch_size=3, batches=2, region="eu", allowed=lambda _: None
    )
    sent = [s for b in chunk.batches for s in decode_batch(b.payload).samples]
    assert [(s.seq, s.timestamp, s.metric, s.raw) for s in sent] == [tuple(s) for s in stored[2:]]
