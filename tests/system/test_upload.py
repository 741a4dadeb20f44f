"""Uploader -> real Mosquitto -> reference receiver, with an independent mosquitto_sub capture."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import aiomqtt
import pytest
from click.testing import CliRunner, Result

from cloudreceiver.receiver import serve
from cloudreceiver.store import ReceiverStore, SampleRow
from cloudreceiver.store import open_store as open_receiver_store
from phoneagent.backoff import Backoff
from phoneagent.cli import main
from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.audit import FAIL, PASS, audit
from phoneagent.privacy.consent import set_consent
from phoneagent.privacy.erase import request_cloud_erasure
from phoneagent.relays.permissions import Feature, set_permission
from phoneagent.services.upload import HomeUploader
from phoneagent.store import DbKey, Store
from phoneagent.store.ledger import UploadConsents
from phoneagent.upload.client import PublishRefusedError
from phoneagent.upload.endpoints import Endpoint, PlaintextRefusedError
from phoneagent.upload.uploader import Uploader, policy_refusal
from protocol.metrics import Metric, Sample
from protocol.settings import Sex
from tests.fleetrun import cloud_toml
from tests.mosquitto import Broker, Capture, make_tls
from tests.natscluster import NatsCluster

pytestmark = pytest.mark.system

KEY = DbKey("7a" * 32)
WATCH = "F0:11:22:33:44:55"
EMAIL = "jane.doe@example.com"
NAME = "Jane Doe"
PHONE = "+44 7700 900123"
SECRET_APP = "org.example.privatechat"
TIMEOUT = 30.0


def open_store(directory: Path) -> Store:
    return Store.open(directory, KEY)


def make_account(store: Store, region: str = "eu", cloud: bool = True) -> None:
    create_account(
        store,
        ProfileInput(region, date(1990, 5, 17), Sex.FEMALE, 168, 620),
        today=date(2026, 1, 1),
    )
    if cloud:
        set_consent(store, "cloud_sync", True)


def fill(store: Store, count: int, start: int = 0, seed: int = 1) -> list[Sample]:
    """The device name carries identifiers on purpose: they must never leave the phone."""
    rng = random.Random(seed)
    store.add_device(WATCH, name=f"{NAME}'s watch {PHONE} {EMAIL}", model="WS-1", firmware="1.2")
    samples = [
        Sample(seq, 1_700_000_000 + seq * 5, rng.choice(list(Metric)), rng.randrange(0, 2000))
        for seq in range(start, start + count)
    ]
    store.store_batch(WATCH, samples)
    return samples


def endpoint_for(b: Broker, region: str = "eu") -> Endpoint:
    return Endpoint(region=region, host="127.0.0.1", port=b.port, tls=False)


@contextlib.asynccontextmanager
async def receiving(
    endpoint: Endpoint, database: str | Path, group: str | None = "receivers"
) -> AsyncIterator[ReceiverStore]:
    """The reference receiver on ``database`` (a SQLite path or a PostgreSQL URL)."""
    db = await open_receiver_store(database)
    ready = asyncio.Event()
    task = asyncio.create_task(serve(endpoint, db, group=group, ready=ready))
    await asyncio.wait_for(ready.wait(), TIMEOUT)
    try:
        yield db
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task
        await db.close()


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], what: str, within: float = TIMEOUT
) -> None:
    try:
        async with asyncio.timeout(within):
            while not await _holds(predicate):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for: {what}") from None


async def _holds(predicate: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = predicate()
    return await result if inspect.isawaitable(result) else result


async def wait_for_samples(
    db: ReceiverStore, done: Callable[[list[SampleRow]], bool], what: str
) -> list[SampleRow]:
    """Until the receiver's samples are ``done``; returns them."""
    rows: list[SampleRow] = []

    async def ready() -> bool:
        nonlocal rows
        rows = await db.samples()
        return done(rows)

    await wait_until(ready, what)
    return rows


def expected(store: Store, samples: list[Sample]) -> list[SampleRow]:
    device = store.get_device(WATCH)
    assert device is not None
    return [(device.pseudonym, s.seq, int(s.metric), s.timestamp, s.raw) for s in samples]


@pytest.fixture
def capture(broker: Broker, tmp_path: Path) -> Iterator[Capture]:
    recording = Capture(broker, tmp_path)
    recording.start()
    yield recording


async def test_upload_end_to_end_into_receiver__PR_CLOUD(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, 1234)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        stats = await Uploader(store, endpoint).drain()
        assert stats.samples == 1234
        await wait_for_samples(db, lambda rows: len(rows) == 1234, "all samples received")
        assert await db.samples() == expected(store, samples)
        assert [info for _device, *info in await db.devices()] == [["WS-1", "1.2"]]
    assert store.ledger.get_upload_position(WATCH, "eu") == 1233
    assert store.ledger.disclosures()[-1].record_count == 1234
    # Nothing new: a second drain publishes nothing.
    assert (await Uploader(store, endpoint).drain()).batches == 0
    # The audit reads the uploader's own disclosure entries as home-region uploads.
    checks = {c.id: c for c in audit(store, store.path.parent)}
    assert [c for c in checks.values() if c.status == FAIL] == []
    assert (checks["PR-REGION"].status, checks["PR-DEVICE"].status) == (PASS, PASS)


async def test_a_watch_clock_that_spans_u32_uploads_as_stamped(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    """A watch (broken or hostile) may stamp 0 beside 2**32 - 1 s: no i32 offset from the
    batch's earliest reaches, and the uploader ended with PayloadError at every start."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    store.add_device(WATCH)
    samples = [Sample(1, 0, Metric.STEPS, 1), Sample(2, 2**32 - 1, Metric.STEPS, 2)]
    store.store_batch(WATCH, samples)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        assert (await Uploader(store, endpoint).drain()).samples == 2
        rows = await wait_for_samples(db, lambda rows: len(rows) == 2, "both samples received")
        assert rows == expected(store, samples)


async def test_broker_outage_loses_nothing_and_no_duplicates(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, 3000)
    endpoint = endpoint_for(broker)
    checks = 0
    down = threading.Event()

    def broker_dies_mid_upload(consents: UploadConsents | None, e: Endpoint) -> str | None:
        """The 10th batch check kills the broker: earlier batches are still in flight."""
        nonlocal checks
        checks += 1
        if checks == 10:
            broker.stop()
            down.set()
        return policy_refusal(consents, e)

    uploader = Uploader(
        store,
        endpoint,
        window=4,
        backoff=Backoff(0.05, 0.2),
        refusal=broker_dies_mid_upload,
    )
    stop = asyncio.Event()
    # Not shared: Mosquitto restores only a session's plain subscriptions after a restart,
    # so the receiver's queue fills even before it is back (docs/upload.md).
    async with receiving(endpoint, receiver_database, group=None):
        running = asyncio.create_task(uploader.run(stop))
        assert await asyncio.to_thread(down.wait, TIMEOUT), "the broker was not stopped"
        more = fill(store, 2000, start=3000, seed=2)  # stored during the outage
        broker.start()
    assert uploader.stats.samples < 5000
    # The receiver's connection died with the broker: a fresh one resumes its session.
    async with receiving(endpoint, receiver_database, group=None) as db:
        uploader.wake()
        await wait_until(
            lambda: store.ledger.get_upload_position(WATCH, "eu") == 4999,
            "upload position at the end",
        )
        await wait_for_samples(db, lambda rows: len(rows) == 5000, "every sample stored")
        stop.set()
        await asyncio.wait_for(running, TIMEOUT)
        assert await db.samples() == expected(store, samples + more)  # primary key: no duplicates


async def test_restart_resumes_from_durable_upload_position(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    directory = tmp_path / "agent"
    store = open_store(directory)
    make_account(store)
    fill(store, 500)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        await Uploader(store, endpoint).drain()
        store.close()
        reopened = open_store(directory)
        fill(reopened, 250, start=500, seed=3)
        stats = await Uploader(reopened, endpoint).drain()
        assert stats.samples == 250  # only what the broker had not acknowledged yet
        await wait_for_samples(db, lambda rows: len(rows) == 750, "all stored")
        reopened.close()


# Subscribing is allowed, publishing anything but device info is not.
INFO_ONLY = ["topic read watchsync/#", "topic write watchsync/+/+/+/info"]


async def test_refused_publish_moves_no_upload_position_and_loses_nothing(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    """A broker that refuses samples by ACL (PUBACK reason 0x87) is a failure, not an upload."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, 500)
    strict = Broker(tmp_path / "strict", acl=INFO_ONLY)
    strict.start()
    try:
        with pytest.raises(PublishRefusedError, match=r"/samples: Not authorized \(0x87\)"):
            await Uploader(store, endpoint_for(strict)).drain()
    finally:
        strict.stop()
    assert store.ledger.get_upload_position(WATCH, "eu") is None
    assert store.ledger.disclosures() == []  # nothing was disclosed
    # With the rules fixed, everything goes.
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        assert (await Uploader(store, endpoint).drain()).samples == 500
        await wait_for_samples(db, lambda rows: len(rows) == 500, "all samples received")
        assert await db.samples() == expected(store, samples)


async def cloud_clear(data: Path, *, wait_s: int) -> Result:
    """``phoneagent cloud clear --wait`` on ``data``, off the event loop."""
    return await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["--data-dir", str(data), "cloud", "clear", "--wait", str(wait_s)],
        env={"PHONEAGENT_DB_KEY": KEY.material},
    )


async def test_refused_erase_request_stays_pending_with_a_clear_error(
    broker: Broker, tmp_path: Path
) -> None:
    data = tmp_path / "agent"
    with open_store(data) as store:
        make_account(store)
        fill(store, 10)
        await Uploader(store, endpoint_for(broker)).drain()
    strict = Broker(tmp_path / "strict", acl=INFO_ONLY)
    cloud_toml(data / "cloud.toml", strict.port)
    strict.start()
    try:
        result = await cloud_clear(data, wait_s=5)
    finally:
        strict.stop()
    assert result.exit_code == 1, result.output
    assert "refused a publish" in result.output and "/erase: Not authorized" in result.output
    assert "stay pending" in result.output and "Traceback" not in result.output
    with open_store(data) as store:
        (request,) = store.ledger.erase_requests(pending_only=True)
        assert request.sent_at is None  # so the next ``cloud clear`` or ``run`` sends it


# A NATS user that may publish anywhere but subscribe to none of the agent's topics:
# NATS answers such a SUBACK with 0x80 (Mosquitto grants it and delivers nothing).
NO_SUBSCRIBE = """no_auth_user: agent
authorization { users = [ { user: agent, password: agent, permissions: {
  publish: ">", subscribe: { deny: "watchsync.>" } } } ] }
"""


async def test_refused_subscription_is_an_error_not_a_silent_wait(tmp_path: Path) -> None:
    """``cloud clear --wait`` whose confirmation subscription the broker refused says so
    at once; the erase request stays pending (it was sent) and nothing waits for nothing."""
    data = tmp_path / "agent"
    with open_store(data) as store:
        make_account(store)
        fill(store, 10)
    nats = NatsCluster(tmp_path / "nats", size=1, settings=NO_SUBSCRIBE)
    cloud_toml(data / "cloud.toml", nats.mqtt_ports[0], mqtt="3.1.1")
    nats.start()
    try:
        result = await cloud_clear(data, wait_s=600)
    finally:
        nats.stop()
    assert result.exit_code == 1, result.output
    assert "refused a subscription" in result.output and "(0x80)" in result.output
    assert "stay pending" in result.output and "Traceback" not in result.output
    with open_store(data) as store:
        assert len(store.ledger.erase_requests(pending_only=True)) == 1


async def test_capture_has_no_identifiers__PR_ANON__PR_DEVICE__PR_APPLIST(
    broker: Broker, capture: Capture, tmp_path: Path, receiver_database: str
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 300)
    # PR-APPLIST: the apps named in notification rules stay on the phone.
    set_permission(store, Feature.NOTIFICATIONS, True)
    set_permission(store, Feature.NOTIFICATIONS, False, app=SECRET_APP)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        await Uploader(store, endpoint).drain()
        await wait_for_samples(db, lambda rows: len(rows) == 300, "received")
    traffic = capture.stop()
    device = store.get_device(WATCH)
    account = store.ledger.get_account()
    assert device is not None and account is not None
    assert f"/eu/{account.pseudonym}/{device.pseudonym}/samples".encode() in traffic
    assert b'"model":"WS-1"' in traffic  # device info goes up, under the pseudonym only
    for secret in (EMAIL, NAME, PHONE, WATCH, WATCH.replace(":", ""), "Jane", SECRET_APP):
        assert secret.encode() not in traffic, secret
        assert secret.lower().encode() not in traffic.lower(), secret


async def test_guest_never_uploads__PR_GUEST(
    broker: Broker, capture: Capture, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "agent")
    guest = store.ledger.ensure_guest()
    fill(store, 200)
    # Even a forged consent row (bypassing set_consent's guard) must not open the gate.
    store.ledger.append_consent("cloud_sync", "", True, "forged")
    stats = await Uploader(store, endpoint_for(broker)).drain()
    assert stats.batches == 0
    traffic = capture.stop()
    device = store.get_device(WATCH)
    assert device is not None
    assert guest.pseudonym.encode() not in traffic
    assert device.pseudonym.encode() not in traffic
    assert all(line.startswith(b"capture/") for line in traffic.strip().splitlines())


async def test_cloud_disabled_zero_publishes__PR_CLOUD(
    broker: Broker, capture: Capture, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store, cloud=False)
    fill(store, 200)
    assert (await Uploader(store, endpoint_for(broker)).drain()).batches == 0
    set_consent(store, "cloud_sync", True)
    set_consent(store, "cloud_sync", False)  # withdrawn again
    assert (await Uploader(store, endpoint_for(broker)).drain()).batches == 0
    lines = capture.stop().strip().splitlines()
    assert all(line.startswith(b"capture/") for line in lines)


async def test_disabling_stops_the_next_chunk__PR_CLOUD(broker: Broker, tmp_path: Path) -> None:
    """Cloud sync withdrawn by another process (``phoneagent consent``, its own connection)
    while the uploader decides a chunk's batches: that chunk was read, samples and policy
    in one snapshot, before the withdrawal and goes whole; the next one, read after it,
    not at all."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 1000)
    checks = 0

    def withdraw_after_the_first_chunk(
        consents: UploadConsents | None, endpoint: Endpoint
    ) -> str | None:
        nonlocal checks
        checks += 1
        if checks == 3:  # the first chunk's last batch
            with open_store(tmp_path / "agent") as other:
                set_consent(other, "cloud_sync", False)
        return policy_refusal(consents, endpoint)

    uploader = Uploader(
        store, endpoint_for(broker), window=3, refusal=withdraw_after_the_first_chunk
    )
    stats = await uploader.drain()
    assert stats.samples == 300
    assert store.ledger.get_upload_position(WATCH, "eu") == 299
    assert checks == 4  # the second chunk's first batch was refused


class CountedRefusals:
    """The policy's decisions, counting its refusals (one per batch decision)."""

    def __init__(self) -> None:
        self.refused = 0

    def __call__(self, consents: UploadConsents | None, endpoint: Endpoint) -> str | None:
        why = policy_refusal(consents, endpoint)
        self.refused += why is not None
        return why


@contextlib.asynccontextmanager
async def running(uploader: Uploader | HomeUploader, store: Store) -> AsyncIterator[None]:
    """``run`` until the block ends, where it must stop cleanly; the store closed after."""
    stop = asyncio.Event()
    task = asyncio.create_task(uploader.run(stop))
    try:
        yield
        stop.set()
        await asyncio.wait_for(task, TIMEOUT)
    finally:
        stop.set()
        task.cancel()
        store.close()


async def refused_as_records_land(
    store: Store, uploader: Uploader, counted: CountedRefusals, seqs: range
) -> None:
    """Live records land one by one while cloud sync is off: each wake-up is refused."""
    for seq in seqs:
        before = counted.refused
        fill(store, 1, start=seq)
        uploader.wake()
        await wait_until(lambda: counted.refused > before, f"seq {seq} refused")  # noqa: B023


async def test_a_refusal_is_logged_once_not_per_commit(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cloud sync withdrawn while ``run``'s connection is up: every commit (each second,
    live) met the refusal and logged "upload stopped" again, 86,400 lines a day kept for 7
    days. Once per device, until an upload goes through again."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 100)
    counted = CountedRefusals()
    caplog.set_level(logging.INFO, logger="phoneagent.upload.uploader")
    uploader = Uploader(store, endpoint_for(broker), refusal=counted)
    async with running(uploader, store):
        await wait_until(lambda: store.ledger.get_upload_position(WATCH, "eu") == 99, "sent")
        set_consent(store, "cloud_sync", False)
        await refused_as_records_land(store, uploader, counted, range(100, 105))
        stopped = [m for r in caplog.records if (m := r.getMessage()).startswith("upload stop")]
        assert stopped == [
            "upload stopped: cloud sync is off (phoneagent consent grant cloud_sync)"
        ]
        set_consent(store, "cloud_sync", True)
        uploader.wake()
        await wait_until(lambda: uploader.stats.samples == 105, "the rest sent")


def broker_clients(broker: Broker) -> set[str]:
    """The clients connected to ``broker`` now, as its log tells them."""
    log = broker.log.read_text()
    came = set(re.findall(r"New client connected from \S+ as (\S+) ", log))
    left = set(re.findall(r"Client (\S+) (?:disconnected|closed its connection)", log))
    return came - left


async def test_withdrawing_cloud_sync_ends_the_connection__PR_WITHDRAW(
    broker: Broker, tmp_path: Path
) -> None:
    """``consent withdraw cloud_sync`` while ``run``'s uploader is connected: it stayed
    connected to the broker for as long as the agent ran. Now it records what it sent and
    disconnects, stays away while woken by new samples, and connects again once cloud
    sync is granted again."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 100)
    counted = CountedRefusals()
    uploader = Uploader(store, endpoint_for(broker), refusal=counted)
    async with running(uploader, store):
        await wait_until(lambda: store.ledger.get_upload_position(WATCH, "eu") == 99, "sent")
        (client,) = broker_clients(broker)
        set_consent(store, "cloud_sync", False)
        uploader.wake()
        await wait_until(lambda: not broker_clients(broker), f"the broker sees {client} leave")
        (sent,) = store.ledger.disclosures()
        assert sent.record_count == 100  # recorded before it left
        # Live records land: each is refused, and no connection is made for them.
        await refused_as_records_land(store, uploader, counted, range(100, 103))
        set_consent(store, "cloud_sync", True)
        uploader.wake()
        await wait_until(lambda: uploader.stats.samples == 103, "the rest sent")
        assert broker.log.read_text().count("New client connected") == 2


async def test_a_withdrawal_told_by_reload_ends_the_connection__PR_WITHDRAW(
    broker: Broker, tmp_path: Path
) -> None:
    """What ``consent withdraw cloud_sync`` does to a running agent: the ledger changes in
    another process, then the agent's reload. The reload woke no uploader, so with no
    watch storing samples the connection stayed up for as long as the agent ran."""
    data_dir = tmp_path / "agent"
    store = open_store(data_dir)
    make_account(store)
    fill(store, 100)
    cloud_toml(data_dir / "cloud.toml", broker.port)
    uploads = HomeUploader(data_dir, store)
    uploads.choose()
    async with running(uploads, store):
        await wait_until(lambda: store.ledger.get_upload_position(WATCH, "eu") == 99, "sent")
        (client,) = broker_clients(broker)
        with open_store(data_dir) as other_process:
            set_consent(other_process, "cloud_sync", False)
        await uploads.reload()
        await wait_until(lambda: not broker_clients(broker), f"the broker sees {client} leave")


async def test_with_cloud_sync_off_an_erasure_connects_until_it_is_confirmed__PR_RETAIN(
    broker: Broker, tmp_path: Path
) -> None:
    """Cloud sync withdrawn, then ``cloud clear`` while ``run`` runs: the erasure is owed to
    the cloud, so the uploader connects to send it, stays until the receiver confirms it
    (the confirmation comes over that connection) and then leaves."""
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 100)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, tmp_path / "cloud.db") as db:
        receivers = broker_clients(broker)  # connected and subscribed: in the log
        assert len(receivers) == 1
        await Uploader(store, endpoint).drain()
        await wait_for_samples(db, lambda rows: len(rows) == 100, "received")
        set_consent(store, "cloud_sync", False)
        uploader = Uploader(store, endpoint)
        async with running(uploader, store):
            request_cloud_erasure(store, "data")
            uploader.wake()
            await wait_until(lambda: uploader.stats.erase_sent == 1, "the erasure sent")
            await wait_until(lambda: broker_clients(broker) == receivers, "the uploader left")
            (done,) = store.ledger.erase_requests()
            assert done.confirmed_at is not None  # recorded before the connection closed
            assert await db.samples() == []


async def test_region_mismatch_refused__PR_REGION(
    broker: Broker, capture: Capture, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store, region="eu")
    fill(store, 100)
    us = endpoint_for(broker, region="us")
    assert (await Uploader(store, us).drain()).batches == 0
    assert capture.stop().count(b"/samples") == 0
    set_consent(store, "cross_border:us", True)
    assert (await Uploader(store, us).drain()).samples == 100


def test_plaintext_to_non_loopback_refused__PR_TLS() -> None:
    remote = Endpoint(region="eu", host="192.0.2.10", port=1883, tls=False)
    with pytest.raises(PlaintextRefusedError, match="allow_plaintext"):
        remote.client()
    replace(remote, allow_plaintext=True).check_transport()
    replace(remote, host="::1").check_transport()


async def test_tls_with_auth_uploads_and_wrong_ca_refused__PR_TLS(
    tls_broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    assert tls_broker.tls is not None
    tls = tls_broker.tls
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 250)
    good = Endpoint(
        region="eu",
        host="localhost",
        port=tls_broker.port,
        ca_file=tls.ca_file,
        username=tls.username,
        password=tls.password,
    )
    async with receiving(good, receiver_database) as db:
        assert (await Uploader(store, good).drain()).samples == 250
        await wait_for_samples(db, lambda rows: len(rows) == 250, "received over TLS")
    other_ca = make_tls(tmp_path / "other").ca_file
    with pytest.raises(aiomqtt.MqttError, match=r"certificate|CERTIFICATE"):
        await Uploader(store, replace(good, ca_file=other_ca)).drain()
    with pytest.raises(aiomqtt.MqttError):
        await Uploader(store, replace(good, password="wrong")).drain()


async def test_clear_erases_in_cloud_and_is_confirmed__PR_CLOUD__PR_RETAIN(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    store = open_store(tmp_path / "agent")
    make_account(store)
    fill(store, 400)
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        await Uploader(store, endpoint).drain()
        await wait_for_samples(db, lambda rows: len(rows) == 400, "received")
        (request,) = request_cloud_erasure(store, "data")
        assert request.deadline_at - request.requested_at == 90 * 86400
        stats = await Uploader(store, endpoint).drain(confirm_timeout=TIMEOUT)
        assert (stats.erase_sent, stats.erase_confirmed) == (1, 1)
        assert await db.samples() == []
        (done,) = store.ledger.erase_requests()
        assert done.confirmed_at is not None and not done.pending
        # Samples of the erased range arriving late (another receiver's backlog) stay erased,
        # new data after the request is stored.
        fill(store, 10, start=400, seed=9)
        await Uploader(store, endpoint).drain()
        await wait_for_samples(db, lambda rows: len(rows) == 10, "new data stored")


async def test_account_deletion_sends_its_erasure_at_once__PR_RETAIN(
    broker: Broker, tmp_path: Path, receiver_database: str
) -> None:
    """PR-RETAIN: ``account delete`` (the real CLI) erases the cloud copy before it returns."""
    data = tmp_path / "agent"
    store = open_store(data)
    make_account(store)
    fill(store, 300)
    (data / "cloud.toml").write_text(
        f'[regions.eu]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = false\n'
    )
    endpoint = endpoint_for(broker)
    async with receiving(endpoint, receiver_database) as db:
        await Uploader(store, endpoint).drain()
        await wait_for_samples(db, lambda rows: len(rows) == 300, "received")
        store.close()
        result = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["--data-dir", str(data), "account", "delete", "--yes"],
            env={"PHONEAGENT_DB_KEY": KEY.material},
        )
        assert result.exit_code == 0, result.output
        assert "0 erase request(s) pending confirmation" in result.output
        assert await db.samples() == []
    with open_store(data) as reopened:
        (request,) = reopened.ledger.erase_requests()
        assert request.scope == "account" and request.confirmed_at is not None
        assert reopened.ledger.get_account() is None
