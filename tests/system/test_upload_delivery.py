"""How the uploader paces its durable upload position and bounds a window's wait, on a real
Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.audit import PASS, audit
from phoneagent.privacy.consent import set_consent
from phoneagent.store import DbKey, OnLoop, Store, StoreFullError, ledger
from phoneagent.upload.client import CheckedClient
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.uploader import (
    READ_AHEAD,
    WAITING_CHUNKS,
    Uploader,
    _Session,
    policy_refusal,
)
from protocol.metrics import Metric, Sample
from protocol.settings import Sex
from tests.disk import fill
from tests.mosquitto import Broker

pytestmark = pytest.mark.system

WATCH = "F0:11:22:33:44:77"


@dataclass(frozen=True)
class QuickEndpoint(Endpoint):
    """Clients with a short operation timeout, so a frozen broker fails fast."""

    def client(
        self,
        identifier: str | None = None,
        *,
        session_expiry: int = 0,
        timeout: float = 0.5,
        kind: type[aiomqtt.Client] = CheckedClient,
    ) -> aiomqtt.Client:
        return Endpoint.client(
            self, identifier, session_expiry=session_expiry, timeout=timeout, kind=kind
        )


def filled_store(directory: Path, count: int, clock: Callable[[], float] = time.time) -> Store:
    store = Store.open(directory, DbKey("6e" * 32), clock=clock)
    create_account(store, ProfileInput("eu", date(1990, 5, 17), Sex.FEMALE, 168, 620))
    set_consent(store, "cloud_sync", True)
    store.add_device(WATCH)
    metrics = list(Metric)
    store.store_batch(
        WATCH, [Sample(s, 1_700_000_000 + s, metrics[s % 4], s % 90) for s in range(count)]
    )
    return store


def small_chunks(store: Store, broker: Broker, **options: Any) -> Uploader:
    """An uploader to ``broker`` in chunks of two batches of ten samples."""
    endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    return Uploader(store, endpoint, batch_size=10, window=2, **options)


async def test_a_long_upload_is_recorded_every_n_chunks_and_at_the_end(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each record commits an upload position with the disclosure row of what it covers:
    killed at any moment, nothing the ledger holds as uploaded lacks its disclosure."""
    store = filled_store(tmp_path / "agent", 200)
    committed: list[tuple[int | None, int, bool]] = []  # position, samples disclosed, durable
    record = store.ledger.record_upload

    def recording(
        endpoint: str,
        positions: Mapping[str, int],
        disclosure: ledger.NewDisclosure | None,
        *,
        durable: bool = True,
    ) -> None:
        record(endpoint, positions, disclosure, durable=durable)
        disclosed = sum(d.record_count for d in store.ledger.disclosures())
        committed.append((store.ledger.get_upload_position(WATCH, "eu"), disclosed, durable))

    monkeypatch.setattr(store.ledger, "record_upload", recording)
    uploader = small_chunks(store, broker, record_every_chunks=3)
    assert (await uploader.drain()).samples == 200  # 10 chunks of 20 samples
    # Every 3 chunks, the first with the fsync (it names the endpoint), the next ones
    # without, then the rest with it as the session ends.
    assert committed == [(59, 60, True), (119, 120, False), (179, 180, False), (199, 200, True)]


async def test_a_failed_record_stops_the_upload_and_nothing_is_left_undisclosed(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record behind the publishing fails (a full disk): the upload stops with its error,
    no later record commits a position past what it covered, and the next session sends
    that again and discloses it once."""
    store = filled_store(tmp_path / "agent", 200)
    record = store.ledger.record_upload
    calls = 0

    def second_fails(
        endpoint: str,
        positions: Mapping[str, int],
        disclosure: ledger.NewDisclosure | None,
        *,
        durable: bool = True,
    ) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreFullError(tmp_path / "agent")
        record(endpoint, positions, disclosure, durable=durable)

    monkeypatch.setattr(store.ledger, "record_upload", second_fails)
    uploader = small_chunks(store, broker, record_every_chunks=3)
    with pytest.raises(StoreFullError):
        await uploader.drain()
    assert store.ledger.get_upload_position(WATCH, "eu") == 59  # the first record's
    assert [d.record_count for d in store.ledger.disclosures()] == [60]
    assert (await small_chunks(store, broker).drain()).samples == 140
    assert store.ledger.get_upload_position(WATCH, "eu") == 199
    assert sum(d.record_count for d in store.ledger.disclosures()) == 200


async def test_a_record_cancelled_behind_a_slow_one_still_commits(
    broker: Broker, tmp_path: Path
) -> None:
    """What a record covers is taken when it is asked for: cancelled while the record
    before it still commits (the daemon stopping), it commits all the same, after it."""
    store = filled_store(tmp_path / "agent", 10)
    gate = asyncio.Event()

    async def slow(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return fn(*args, **kwargs)

    uploader = small_chunks(store, broker, blocking=slow)
    client = uploader.endpoint.client()
    assert isinstance(client, CheckedClient)
    session = _Session(uploader, client)
    session._unrecorded_positions, session._unrecorded_samples = {WATCH: 4}, 5
    first = asyncio.ensure_future(session.record())
    await asyncio.sleep(0)  # it has taken what it covers, and waits for the store
    session._unrecorded_positions, session._unrecorded_samples = {WATCH: 9}, 5
    second = asyncio.ensure_future(session.record())
    await asyncio.sleep(0)
    second.cancel()
    gate.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await session._settle_records()
    assert store.ledger.get_upload_position(WATCH, "eu") == 9
    assert [d.record_count for d in store.ledger.disclosures()] == [5, 5]


async def test_a_window_without_pubacks_fails_at_the_deadline(
    broker: Broker, tmp_path: Path
) -> None:
    store = filled_store(tmp_path / "agent", 100)
    checks = 0

    def freeze_broker_first(consents: ledger.UploadConsents | None, e: Endpoint) -> str | None:
        nonlocal checks
        checks += 1
        if checks == 1:
            broker.pause()  # connected, subscribed: now nothing is acknowledged
        return policy_refusal(consents, e)

    endpoint = QuickEndpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    uploader = Uploader(store, endpoint, batch_size=10, window=4, refusal=freeze_broker_first)
    try:
        with pytest.raises(aiomqtt.MqttError, match=r"not acknowledged within 0\.5 s"):
            await uploader.drain()
    finally:
        broker.resume()
    assert uploader.stats.samples == 0
    assert store.ledger.get_upload_position(WATCH, "eu") is None
    # The broker is back: the next session sends everything, nothing was skipped.
    assert (await Uploader(store, endpoint, batch_size=10).drain()).samples == 100
    assert store.ledger.get_upload_position(WATCH, "eu") == 99


async def test_a_cancelled_upload_commits_what_was_acknowledged(
    broker: Broker, tmp_path: Path
) -> None:
    """The daemon stopping mid-upload: no commit was due yet, the upload position still moves."""
    store = filled_store(tmp_path / "agent", 400)
    draining: asyncio.Task[object] | None = None

    def cancel_after_the_second_chunk(_: str, last_seq: int) -> None:
        if last_seq >= 39:  # chunks of two batches of ten samples: 1 and 2 acknowledged
            assert draining is not None
            draining.cancel()

    uploader = small_chunks(
        store, broker, record_every_chunks=100, on_acked=cancel_after_the_second_chunk
    )
    draining = asyncio.ensure_future(uploader.drain())
    with pytest.raises(asyncio.CancelledError):
        await draining
    assert uploader.stats.samples >= 40
    assert store.ledger.get_upload_position(WATCH, "eu") == uploader.stats.samples - 1


@pytest.mark.parametrize(
    "record_every_chunks", [100, 2], ids=["recorded at the end", "a record behind in flight"]
)
async def test_an_upload_cancelled_on_a_full_disk_stops_and_loses_nothing(
    broker: Broker, small_disk: Path, caplog: pytest.LogCaptureFixture, record_every_chunks: int
) -> None:
    """The daemon stopping mid-upload while the disk is full: the record of what was
    acknowledged fails (the one made on the way out, or one behind the publishing still
    committing), and the upload still ends as cancelled (a full disk's error in its place
    is one the uploader retries: it went on), saying so once. The next upload, with room
    again, sends everything from the last recorded position."""
    store = filled_store(small_disk / "agent", 400)
    draining: asyncio.Task[object] | None = None
    filler: Path | None = None

    def fill_then_cancel(_: str, last_seq: int) -> None:
        nonlocal filler
        if last_seq >= 39 and filler is None:
            filler = fill(small_disk)
            assert draining is not None
            draining.cancel()

    with store:
        uploader = small_chunks(
            store, broker, record_every_chunks=record_every_chunks, on_acked=fill_then_cancel
        )
        draining = asyncio.ensure_future(uploader.drain())
        with pytest.raises(asyncio.CancelledError):
            await draining
        assert uploader.stats.samples >= 40
        assert store.ledger.get_upload_position(WATCH, "eu") is None  # nothing recorded
        assert caplog.text.count("upload positions not recorded") == 1
        assert filler is not None
        os.remove(filler)
        assert (await small_chunks(store, broker).drain()).samples == 400
        assert store.ledger.get_upload_position(WATCH, "eu") == 399
        assert sum(d.record_count for d in store.ledger.disclosures()) == 400


async def test_an_upload_cancelled_while_the_reader_reads_commits_what_was_acknowledged(
    broker: Broker, tmp_path: Path
) -> None:
    """The daemon stopping while the reader, on its worker thread, reads ahead: what the
    broker acknowledged is committed, and the reader's trip ends with the stream."""
    store = filled_store(tmp_path / "agent", 400)
    loop = asyncio.get_running_loop()
    draining: asyncio.Task[object] | None = None
    checks = 0

    def cancel_while_reading(consents: ledger.UploadConsents | None, e: Endpoint) -> str | None:
        nonlocal checks
        checks += 1
        if checks == 29:  # about the 15th chunk of 20: the reader is at most six ahead
            assert draining is not None
            loop.call_soon_threadsafe(draining.cancel)
        return policy_refusal(consents, e)

    uploader = small_chunks(store, broker, record_every_chunks=100, refusal=cancel_while_reading)
    draining = asyncio.ensure_future(uploader.drain())
    with pytest.raises(asyncio.CancelledError):
        await draining
    assert 100 <= uploader.stats.samples < 400
    assert store.ledger.get_upload_position(WATCH, "eu") == uploader.stats.samples - 1


@pytest.mark.parametrize("on_loop", [False, True], ids=["reads on a thread", "reads on the loop"])
async def test_the_reader_stays_a_few_chunks_ahead_wherever_it_reads(
    broker: Broker, tmp_path: Path, on_loop: bool
) -> None:
    """A backlog is read a few chunks ahead of what the broker acknowledged, also when
    the reads run on the event loop (an agent fleet's ``OnLoop``): never all of it in
    memory, the loop never held up for the whole of it."""
    store = filled_store(tmp_path / "agent", 400)  # 20 chunks of two batches of ten
    checked = acked = ahead = 0

    def counting(consents: ledger.UploadConsents | None, e: Endpoint) -> str | None:
        nonlocal checked, ahead
        checked += 1  # one policy check per batch read
        ahead = max(ahead, checked - acked)
        return policy_refusal(consents, e)

    def acknowledged(_: str, last_seq: int) -> None:
        nonlocal acked
        acked = (last_seq + 1) // 10

    uploader = small_chunks(
        store,
        broker,
        refusal=counting,
        on_acked=acknowledged,
        blocking=OnLoop().run if on_loop else asyncio.to_thread,
    )
    assert (await uploader.drain()).samples == 400
    # The chunk being published, the ones waiting for it and one trip's reads, in batches.
    assert ahead <= (1 + WAITING_CHUNKS + 1 + READ_AHEAD) * 2


@contextlib.asynccontextmanager
async def running_uploader(
    store: Store, broker: Broker
) -> AsyncIterator[tuple[Uploader, asyncio.Queue[int]]]:
    """The daemon's uploader (records an hour apart), and the seqs it hears acknowledged;
    stopped (its connection's last record made) on exit."""
    acked: asyncio.Queue[int] = asyncio.Queue()
    endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    uploader = Uploader(
        store, endpoint, record_every=3600, on_acked=lambda _, seq: acked.put_nowait(seq)
    )
    stop = asyncio.Event()
    running = asyncio.ensure_future(uploader.run(stop))
    try:
        yield uploader, acked
    finally:
        stop.set()
        await running


async def test_a_running_uploader_records_its_first_upload_at_once_then_at_intervals(
    broker: Broker, tmp_path: Path
) -> None:
    """Live, one upload-position-and-disclosure commit per ``record_every``, not one per upload;
    what the connection sent since its last record is recorded when it ends."""
    store = filled_store(tmp_path / "agent", 10)
    async with running_uploader(store, broker) as (uploader, acked):
        assert await acked.get() == 9
        for first in range(10, 50, 10):
            store.store_batch(
                WATCH,
                [Sample(s, 1_700_000_000 + s, Metric.STEPS, 1) for s in range(first, first + 10)],
            )
            uploader.wake()
            assert await acked.get() == first + 9
        # The first upload's record was made before the next upload began; none since.
        assert [d.record_count for d in store.ledger.disclosures()] == [10]
        assert store.ledger.get_upload_position(WATCH, "eu") == 9
    assert [d.record_count for d in store.ledger.disclosures()] == [10, 40]
    assert store.ledger.get_upload_position(WATCH, "eu") == 49


async def test_a_late_record_is_dated_when_its_data_went__PR_CLOUD(
    broker: Broker, tmp_path: Path
) -> None:
    """Recorded after a withdrawal, what was sent before it is dated before it: the
    audit sees no upload while cloud sync was off."""
    clock = [1_800_000_000.0]
    start = int(clock[0])
    store = filled_store(tmp_path / "agent", 10, clock=lambda: clock[0])
    async with running_uploader(store, broker) as (uploader, acked):
        assert await acked.get() == 9  # recorded at once
        clock[0] += 5
        store.store_batch(WATCH, [Sample(s, start + s, Metric.STEPS, 1) for s in range(10, 20)])
        uploader.wake()
        assert await acked.get() == 19  # not recorded yet
        clock[0] += 5
        set_consent(store, "cloud_sync", False)
        clock[0] += 5
    assert [(d.at - start, d.record_count) for d in store.ledger.disclosures()] == [
        (0, 10),
        (5, 10),
    ]
    checks = {c.id: c for c in audit(store, store.path.parent, now=clock[0])}
    assert checks["PR-CLOUD"].status == PASS, checks["PR-CLOUD"].evidence


def test_a_record_for_a_deleted_device_keeps_its_disclosure(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "agent", 10)
    store.delete_device(WATCH)
    sent = ledger.NewDisclosure("cloud eu", "upload", ("steps",), 10)
    store.ledger.record_upload("eu", {WATCH: 9}, sent)
    assert [d.record_count for d in store.ledger.disclosures()] == [10]
    assert store.ledger.get_upload_position(WATCH, "eu") is None


async def test_a_lone_publish_is_written_inside_the_call_and_a_large_one_finishes_later(
    broker: Broker,
) -> None:
    """``publish_acked`` writes a lone message before it returns (paho's queue is empty
    then) and leaves several to aiomqtt's writer a loop turn later; a lone message larger
    than the socket takes at once (the broker frozen meanwhile) still goes whole, the rest
    through aiomqtt's writer; the subscriber gets every byte of each, in order."""
    endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    large = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than a loopback socket takes
    async with endpoint.client("listener") as listener, endpoint.client("sender") as sender:
        assert isinstance(sender, CheckedClient)
        await listener.subscribe("direct/#", qos=1)
        lone = sender.publish_acked("direct/lone", [b"one"])
        assert not sender._client.want_write()
        await asyncio.gather(*lone)
        chunk = sender.publish_acked("direct/chunk", [b"two", b"three"])
        assert sender._client.want_write()  # for aiomqtt's writer
        await asyncio.gather(*chunk)
        sock = sender._client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # whatever the host's
        broker.pause()
        try:
            big = sender.publish_acked("direct/large", [large])
            assert sender._client.want_write()  # the rest waits for the socket
        finally:
            broker.resume()
        async with asyncio.timeout(30):
            await asyncio.gather(*big)
            received: list[tuple[str, object]] = []
            async for message in listener.messages:
                received.append((str(message.topic), message.payload))
                if len(received) == 4:
                    break
    assert received == [
        ("direct/lone", b"one"),
        ("direct/chunk", b"two"),
        ("direct/chunk", b"three"),
        ("direct/large", large),
    ]
