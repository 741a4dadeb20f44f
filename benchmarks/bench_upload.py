"""Upload throughput: samples/s acknowledged by Mosquitto through the uploader vs raw aiomqtt.

Both publish the same payloads (100 samples per message, QoS 1) to the same broker in
the same run; the baselines publish pre-encoded messages with the same number in
flight. The first is plain ``client.publish`` (the issue's baseline); the second passes
``timeout=math.inf`` (one deadline per window instead of aiomqtt's ``wait_for`` per
message); the third publishes as the uploader does, ``CheckedClient.publish_acked`` (paho's
publish and a future per PUBACK, no task per message), so the ratio to it is the
uploader's own cost (store reads, policy checks, encoding, durable upload position).
Medians of 7 interleaved rounds of 400k samples (the broker and the machine are shared:
rounds of 200k, a third of a second each, swung between 0.36 and 0.71 at load 4). The
process CPU time (all threads; not the broker's) of the uploader and of plain aiomqtt is
printed too: at high load the rates swing, the CPU-seconds much less.
Run: python benchmarks/bench_upload.py [--quick] [--samples N]
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import _common
import aiomqtt

from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import set_consent
from phoneagent.store import DbKey, Store
from phoneagent.upload.client import CheckedClient
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.outbox import read_chunk
from phoneagent.upload.uploader import Uploader, UploadStats
from protocol.metrics import Metric, Sample
from protocol.settings import Sex
from tests.mosquitto import Broker

WATCH = "F0:11:22:33:44:55"


async def measure(
    directory: Path, count: int, rounds: int = 7
) -> tuple[tuple[float, ...], tuple[float, float]]:
    broker = Broker(directory)
    broker.start()
    try:
        store = Store.open(directory / "agent", DbKey("3c" * 32))
        create_account(store, ProfileInput("eu", date(1990, 1, 1), Sex.MALE, 180, 800))
        set_consent(store, "cloud_sync", True)
        device = store.add_device(WATCH)
        metrics = list(Metric)
        for start in range(0, count, 10_000):
            store.store_batch(
                WATCH,
                [
                    Sample(s, 1_700_000_000 + s, metrics[s % 4], s % 200)
                    for s in range(start, min(start + 10_000, count))
                ],
            )
        endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
        uploader = Uploader(store, endpoint)
        chunk = read_chunk(store, device, -1, 100, count // 100 + 1, "eu", lambda _: None)
        payloads = [b.payload for b in chunk.batches]
        topic = f"bench/eu/user/{device.pseudonym}/samples"
        ours: list[float] = []
        raw: list[float] = []
        untimed: list[float] = []
        acked: list[float] = []
        ours_cpu: list[float] = []
        raw_cpu: list[float] = []
        for _ in range(rounds):  # interleaved: all see the same machine load
            timeouts: tuple[tuple[list[float], float | None], ...] = (
                (raw, None),
                (untimed, math.inf),
            )
            for rates, timeout in timeouts:
                async with endpoint.client(kind=aiomqtt.Client) as client:
                    began, cpu = time.perf_counter(), time.process_time()
                    for i in range(0, len(payloads), uploader.window):
                        window = payloads[i : i + uploader.window]
                        await asyncio.gather(
                            *(client.publish(topic, p, qos=1, timeout=timeout) for p in window)
                        )
                    rates.append(count / (time.perf_counter() - began))
                    if rates is raw:
                        raw_cpu.append(time.process_time() - cpu)
            acked.append(count / await publish_acked(endpoint, topic, payloads, uploader.window))
            store.ledger.record_upload("eu", {WATCH: -1}, None)
            uploader.stats = UploadStats()
            began, cpu = time.perf_counter(), time.process_time()
            stats = await uploader.drain()
            ours.append(stats.samples / (time.perf_counter() - began))
            ours_cpu.append(time.process_time() - cpu)
            assert stats.samples == count, stats
        store.close()
        medians = tuple(statistics.median(rates) for rates in (ours, raw, untimed, acked))
        return medians, (statistics.median(ours_cpu), statistics.median(raw_cpu))
    finally:
        broker.stop()


async def publish_acked(
    endpoint: Endpoint, topic: str, payloads: list[bytes], window: int
) -> float:
    """Seconds to publish ``payloads`` the uploader's way (no store, policy, encoding)."""
    async with endpoint.client() as client:
        assert isinstance(client, CheckedClient)
        began = time.perf_counter()
        for i in range(0, len(payloads), window):
            acks = client.publish_acked(topic, payloads[i : i + window])
            for ack in acks:
                await ack
        return time.perf_counter() - began


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--samples", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    count, rounds = (20_000, 3) if args.quick else (args.samples, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o700)
        (ours, raw, untimed, acked), (ours_cpu, raw_cpu) = asyncio.run(
            measure(directory, count, rounds)
        )
    _common.header(
        "upload: Uploader vs raw aiomqtt to Mosquitto",
        f"{count:,} samples, 100 per message, QoS 1, median of {rounds}",
    )
    _common.compare(
        _common.Rate("Uploader.drain", ours, "samples"),
        _common.Rate("raw aiomqtt, same payloads", raw, "samples"),
        _common.Rate("raw aiomqtt, no per-publish timeout", untimed, "samples"),
        _common.Rate("CheckedClient.publish_acked, same payloads", acked, "samples"),
        target=0.8,
    )
    print(
        f"   process CPU per {count:,} samples: Uploader.drain {ours_cpu:.3f} s,"
        f" raw aiomqtt {raw_cpu:.3f} s (ratio {raw_cpu / ours_cpu:.3f})"
    )


if __name__ == "__main__":
    main()
