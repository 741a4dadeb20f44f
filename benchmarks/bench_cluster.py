"""Replicated brokers side by side: QoS 1 publish rate, PUBACK latency, a killed node's cost.

Engines, each on loopback with its own ports and dirs: a 3-node NATS JetStream cluster
(MQTT listener, streams with 3 replicas, a durable consumer keeping what arrives), a
3-node RabbitMQ cluster (MQTT plugin into a quorum queue on the three nodes) and, as the
baseline, the single Mosquitto every other test uses (saving after every change, a
persistent subscriber's queue). The load is the agents' own client (``Endpoint.client``,
MQTT 3.1.1 for the clusters, 5 for Mosquitto): ``--clients`` connections spread over the
nodes, each keeping ``--window`` publishes of a 1,329-byte batch (100 samples) in
flight. Then one publisher at ~20 messages/s, reconnecting and resending like the
uploader, while the node leading the queue or stream (never the publisher's) is killed
with SIGKILL: the longest wait for a PUBACK, and what the engine holds of these publishes
afterwards (a queue or consumer of their own) against what it acknowledged.
Run: python benchmarks/bench_cluster.py [--quick] [--engines nats,rabbitmq,mosquitto]
(--quick: NATS and Mosquitto, a few seconds each; RabbitMQ needs ~1 min to form.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import _common
import aiomqtt
import nats
from nats.js.api import ConsumerConfig

from cloudreceiver.jetstream import STREAM
from phoneagent.upload.endpoints import Endpoint, MqttVersion
from tests.mosquitto import Broker
from tests.natscluster import NatsCluster
from tests.rabbitcluster import RabbitCluster

TOPIC = "watchsync/eu/user/device/samples"
KILL_TOPIC = "killtest/eu/user/device/samples"  # its own queue or consumer, counted from 0
PAYLOAD = bytes(1329)
QUEUE = "receivers"
KILL_QUEUE = "killtest"
KILL_RATE_HZ = 20


@dataclass
class Engine:
    """What the benchmark needs of a running engine."""

    name: str
    ports: list[int]
    mqtt: MqttVersion
    pids: Callable[[], list[int]]
    stored: Callable[[], Awaitable[int]]  # what the engine holds of the KILL_TOPIC publishes
    leader: Callable[[], Awaitable[int]] | None  # the node leading the queue or stream
    kill: Callable[[int], Awaitable[None]]


@dataclass
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_per_1k: float  # engine CPU seconds per 1,000 messages


def cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def endpoint(engine: Engine, n: int) -> Endpoint:
    """The engine's ``n``-th node (modulo their number), as an agent's endpoint."""
    port = engine.ports[n % len(engine.ports)]
    return Endpoint(region="eu", host="127.0.0.1", port=port, tls=False, mqtt=engine.mqtt)


async def load(engine: Engine, clients: int, window: int, seconds: float) -> Load:
    latencies: list[float] = []
    count = 0
    async with contextlib.AsyncExitStack() as stack:
        connected = [
            await stack.enter_async_context(endpoint(engine, n).client()) for n in range(clients)
        ]
        deadline = time.monotonic() + seconds

        async def publisher(client: aiomqtt.Client) -> None:
            nonlocal count
            while time.monotonic() < deadline:
                began = time.perf_counter()
                await client.publish(TOPIC, PAYLOAD, qos=1)
                latencies.append(time.perf_counter() - began)
                count += 1

        cpu_before, began = cpu_s(engine.pids()), time.monotonic()
        await asyncio.gather(*(publisher(c) for c in connected for _ in range(window)))
        elapsed, cpu = time.monotonic() - began, cpu_s(engine.pids()) - cpu_before
    quantiles = statistics.quantiles(latencies, n=100)
    return Load(count / elapsed, quantiles[49] * 1e3, quantiles[98] * 1e3, cpu / count * 1e3)


@dataclass
class KillCost:
    node: int
    longest_wait_s: float
    acknowledged: int
    stored: int


async def kill_cost(engine: Engine, seconds: float) -> KillCost | None:
    """One publisher at ``KILL_RATE_HZ`` on a node that is not the leader, which dies a
    third of the way in."""
    if engine.leader is None:
        return None
    leader = await engine.leader()
    home = (leader + 1) % len(engine.ports)
    acknowledged, longest, killed = 0, 0.0, False
    began_all = time.monotonic()
    client: aiomqtt.Client | None = None
    while time.monotonic() < began_all + seconds:
        if not killed and time.monotonic() > began_all + seconds / 3:
            await engine.kill(leader)
            killed = True
        began = time.monotonic()
        while True:  # the uploader's way: reconnect and send the same batch again
            try:
                if client is None:
                    client = endpoint(engine, home).client(timeout=5)
                    await client.__aenter__()
                await client.publish(KILL_TOPIC, PAYLOAD, qos=1)
                break
            except aiomqtt.MqttError:
                with contextlib.suppress(aiomqtt.MqttError):
                    if client is not None:
                        await client.__aexit__(None, None, None)
                client = None
                await asyncio.sleep(0.5)
        longest = max(longest, time.monotonic() - began)
        acknowledged += 1
        await asyncio.sleep(1 / KILL_RATE_HZ)
    if client is not None:
        await client.__aexit__(None, None, None)
    return KillCost(leader, longest, acknowledged, await engine.stored())


@contextlib.asynccontextmanager
async def nats_engine(directory: Path) -> AsyncIterator[Engine]:
    cluster = NatsCluster(directory / "nats")
    cluster.start()
    connection = await nats.connect(cluster.servers)
    try:
        stream = connection.jetstream()
        # Interest retention: the stream keeps a message only for an existing consumer.
        for name, first_level in ((QUEUE, "watchsync"), (KILL_QUEUE, "killtest")):
            await stream.add_consumer(
                STREAM,
                ConsumerConfig(durable_name=name, filter_subject=f"$MQTT.msgs.{first_level}.>"),
            )

        async def stored() -> int:
            return int((await stream.consumer_info(STREAM, KILL_QUEUE)).num_pending)

        async def leader() -> int:
            info = await stream.stream_info(STREAM)
            assert info.cluster is not None and info.cluster.leader is not None
            return int(info.cluster.leader.removeprefix("n"))

        async def kill(node: int) -> None:
            cluster.kill(node)

        def pids() -> list[int]:
            return [cluster.pid(n) for n in range(3) if cluster.running(n)]

        yield Engine(
            "NATS 2.9 JetStream R3", cluster.mqtt_ports, "3.1.1", pids, stored, leader, kill
        )
    finally:
        await connection.close()
        cluster.stop()


@contextlib.asynccontextmanager
async def rabbit_engine(directory: Path) -> AsyncIterator[Engine]:
    cluster = RabbitCluster(directory / "rabbit")
    try:
        await asyncio.to_thread(cluster.start)
        cluster.quorum_queue(QUEUE, "watchsync.#")
        cluster.quorum_queue(KILL_QUEUE, "killtest.#")

        async def stored() -> int:
            # Counted until it stops moving: right after a leader change it can lag.
            counted, again = -1, await asyncio.to_thread(cluster.messages, KILL_QUEUE)
            while again != counted:
                await asyncio.sleep(2)
                counted, again = again, await asyncio.to_thread(cluster.messages, KILL_QUEUE)
            return counted

        async def leader() -> int:
            return await asyncio.to_thread(cluster.leader, KILL_QUEUE)

        async def kill(node: int) -> None:
            await asyncio.to_thread(cluster.kill, node)

        yield Engine(
            "RabbitMQ 3.10 quorum queue",
            cluster.mqtt_ports,
            "3.1.1",
            cluster.pids,
            stored,
            leader,
            kill,
        )
    finally:
        await asyncio.to_thread(cluster.stop)


@contextlib.asynccontextmanager
async def mosquitto_engine(directory: Path) -> AsyncIterator[Engine]:
    broker = Broker(directory / "mosquitto")
    broker.start()
    try:
        port = broker.port
        subscriber = Endpoint(region="eu", host="127.0.0.1", port=port, tls=False)
        async with subscriber.client("bench-receiver", session_expiry=3600) as client:
            await client.subscribe("watchsync/#", qos=1)  # a persistent session's queue

        async def stored() -> int:
            return -1  # Mosquitto does not count a session's queue

        async def kill(node: int) -> None:
            broker.kill()

        yield Engine(
            "Mosquitto 2.0 (one node)", [port], "5", lambda: [broker.pid], stored, None, kill
        )
    finally:
        broker.stop()


ENGINES: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Engine]]] = {
    "nats": nats_engine,
    "rabbitmq": rabbit_engine,
    "mosquitto": mosquitto_engine,
}


async def run(names: list[str], clients: int, window: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            async with ENGINES[name](Path(tmp) / name) as engine:
                measured = await load(engine, clients, window, seconds)
                cost = await kill_cost(engine, max(seconds, 15.0))
            print(
                f"   {engine.name:<28} {measured.rate:>8,.0f} msg/s "
                f"({measured.rate * 100:>9,.0f} samples/s)  PUBACK p50 {measured.p50_ms:6.1f} ms"
                f"  p99 {measured.p99_ms:6.1f} ms  engine CPU {measured.cpu_per_1k:.2f} s/1k msg"
            )
            if cost is not None:
                print(
                    f"   {'':<28} kill -9 of the leader (n{cost.node}): longest PUBACK wait "
                    f"{cost.longest_wait_s:.1f} s; acknowledged {cost.acknowledged}, "
                    f"held {cost.stored} (lost {max(0, cost.acknowledged - cost.stored)})"
                )


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--engines", default="nats,rabbitmq,mosquitto")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    names = ["nats", "mosquitto"] if args.quick else args.engines.split(",")
    seconds = 3.0 if args.quick else args.seconds
    _common.header(
        "cluster: replicated brokers, agents' QoS 1 publishes",
        f"{args.clients} clients x {args.window} in flight, {seconds:g} s per engine; "
        f"1,329-byte batches (100 samples)",
    )
    asyncio.run(run(names, args.clients, args.window, seconds))


if __name__ == "__main__":
    main()
