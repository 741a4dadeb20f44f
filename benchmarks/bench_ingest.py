"""Ingest: samples/s from an agent's store through Mosquitto into committed rows by the
reference receiver on PostgreSQL, beside raw COPY into the same PostgreSQL table and the
receiver on its embedded SQLite file, in one run; and p50/p99 from a sample's commit in the
agent's store (the watch's measurement arriving) to its committed row at the receiver.

Each store gets its own Mosquitto and agent store. Throughput: the agent's store holds
``--samples`` and one ``Uploader.drain`` sends them (100 per message, QoS 1); the clock
stops when the receiver has committed the last one. Latency: then, for ``--live-seconds``,
400 samples are stored every 0.1 s while the uploader runs live. The receiver runs in this
process (``serve``, sharing the event loop with the uploader), so both sides' CPU counts;
it notes when each ``store_batch`` returned, i.e. its transaction committed.
Needs PostgreSQL at 127.0.0.1:5432 (``WATCHSYNC_TEST_POSTGRES``, tests/postgres.py).
Run: python benchmarks/bench_ingest.py [--quick] [--samples N] [--live-seconds S]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import _common
import aiomqtt
import psycopg

from cloudreceiver.receiver import serve
from cloudreceiver.store import DeviceRow, ReceiverStore, SampleRow, open_store
from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import set_consent
from phoneagent.store import DbKey, Store
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.payload import EraseMessage, Topics, decode_batch
from phoneagent.upload.uploader import Uploader
from protocol.metrics import Metric, Sample
from protocol.settings import Sex
from tests.mosquitto import Broker
from tests.postgres import create_database, drop_database

WATCH = "F0:11:22:33:44:55"
T0 = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
LIVE_EVERY_S = 0.1
LIVE_SAMPLES = 400  # per LIVE_EVERY_S: 4,000 samples/s, a thousand watches' worth
METRICS = list(Metric)


class Timed:
    """A ``ReceiverStore`` that notes when each seq's batch was committed."""

    def __init__(self, inner: ReceiverStore) -> None:
        self.inner = inner
        self.committed: dict[int, float] = {}
        self._changed = asyncio.Event()

    async def store_batch(self, topics: Topics, device: str, payload: bytes) -> int:
        new = await self.inner.store_batch(topics, device, payload)
        now = time.perf_counter()
        for sample in decode_batch(payload).samples:
            self.committed.setdefault(sample.seq, now)
        self._changed.set()
        return new

    async def wait_for(self, seq: int) -> None:
        while seq not in self.committed:
            self._changed.clear()
            await self._changed.wait()

    async def store_info(self, topics: Topics, device: str, payload: bytes) -> None:
        await self.inner.store_info(topics, device, payload)

    async def erase(self, topics: Topics, erase: EraseMessage) -> int:
        return await self.inner.erase(topics, erase)

    async def samples(self) -> list[SampleRow]:
        return await self.inner.samples()

    async def devices(self) -> list[DeviceRow]:
        return await self.inner.devices()

    async def count(self) -> int:
        return await self.inner.count()

    async def close(self) -> None:
        await self.inner.close()


def samples(seqs: range) -> list[Sample]:
    return [Sample(s, T0 + s // 4, METRICS[s % 4], s % 200) for s in seqs]


def agent_store(directory: Path, count: int) -> Store:
    store = Store.open(directory, DbKey("5d" * 32))
    create_account(store, ProfileInput("eu", date(1990, 1, 1), Sex.MALE, 180, 800))
    set_consent(store, "cloud_sync", True)
    store.add_device(WATCH)
    for start in range(0, count, 10_000):
        store.store_batch(WATCH, samples(range(start, min(start + 10_000, count))))
    return store


async def ingest(
    database: str, directory: Path, count: int, live_s: float
) -> tuple[float, list[float]]:
    """(samples/s of a drain into committed rows, live latencies in seconds)."""
    broker = Broker(directory / "broker")
    broker.start()
    agent = agent_store(directory / "agent", count)
    endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    timed = Timed(await open_store(database))
    ready = asyncio.Event()
    receiver = asyncio.create_task(serve(endpoint, timed, group=None, ready=ready))
    try:
        await ready.wait()
        began = time.perf_counter()
        await Uploader(agent, endpoint).drain()
        await timed.wait_for(count - 1)
        rate = count / (time.perf_counter() - began)

        uploader = Uploader(agent, endpoint)
        stop = asyncio.Event()
        running = asyncio.create_task(uploader.run(stop))
        stored_at: dict[int, float] = {}
        seq = count
        for _ in range(round(live_s / LIVE_EVERY_S)):
            live = range(seq, seq + LIVE_SAMPLES)
            agent.store_batch(WATCH, samples(live))
            now = time.perf_counter()
            stored_at.update((s, now) for s in live)
            uploader.wake()
            seq += LIVE_SAMPLES
            await asyncio.sleep(LIVE_EVERY_S)  # the pace of arrivals, not synchronisation
        await timed.wait_for(seq - 1)
        stop.set()
        await running
        return rate, [timed.committed[s] - at for s, at in stored_at.items()]
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await receiver
        await timed.close()
        agent.close()
        broker.stop()


async def raw_copy(url: str, count: int) -> float:
    """Samples/s of COPY into the receiver's own table (its partition already exists)."""
    rows = [
        ("copy-device", int(s.seq), "copy-user", "eu", int(s.metric), s.timestamp, s.raw)
        for s in samples(range(count))
    ]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        began = time.perf_counter()
        async with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY samples (device, seq, account, region, metric, ts, raw) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                await copy.write_row(row)
        await conn.commit()
        return count / (time.perf_counter() - began)


def percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:,.0f} ms, p99 {cuts[98] * 1000:,.0f} ms"


async def measure(directory: Path, count: int, live_s: float) -> None:
    url = create_database("bench")
    try:
        pg_rate, pg_latency = await ingest(url, directory / "pg", count, live_s)
        copy_rate = await raw_copy(url, count)
    finally:
        drop_database(url)
    sqlite_rate, sqlite_latency = await ingest(
        str(directory / "cloud.db"), directory / "sqlite", count, live_s
    )
    _common.header(
        "ingest: agent store -> Mosquitto -> receiver -> committed rows",
        f"{count:,} samples drained, 100 per message, QoS 1; live {live_s:g} s at "
        f"{LIVE_SAMPLES / LIVE_EVERY_S:,.0f} samples/s",
    )
    _common.compare(
        _common.Rate("receiver on PostgreSQL", pg_rate, "samples"),
        _common.Rate("raw COPY into the same table", copy_rate, "samples"),
        _common.Rate("receiver on SQLite", sqlite_rate, "samples"),
    )
    print(f"   store -> committed row, PostgreSQL: {percentiles(pg_latency)}")
    print(f"   store -> committed row, SQLite:     {percentiles(sqlite_latency)}")


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--live-seconds", type=float, default=20.0)
    args = parser.parse_args()
    count, live_s = (10_000, 2.0) if args.quick else (args.samples, args.live_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o700)
        asyncio.run(measure(directory, count, live_s))


if __name__ == "__main__":
    main()
