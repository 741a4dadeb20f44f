"""The agent's uploader over MQTT 3.1.1 into a 3-node NATS JetStream cluster, and a group
of receivers sharing one durable consumer (cloudreceiver/jetstream.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import nats
import nats.errors
import pytest

from cloudreceiver.jetstream import STREAM, serve_stream
from cloudreceiver.store import ReceiverStore, open_store
from phoneagent.privacy.erase import request_cloud_erasure
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.uploader import Uploader
from tests.natscluster import NatsCluster
from tests.system.test_upload import (
    TIMEOUT,
    expected,
    fill,
    make_account,
    wait_for_samples,
)
from tests.system.test_upload import open_store as open_agent_store

pytestmark = [pytest.mark.system, pytest.mark.cluster, pytest.mark.timeout(120)]

GROUP = "receivers"


def endpoint_at(port: int) -> Endpoint:
    return Endpoint(region="eu", host="127.0.0.1", port=port, tls=False, mqtt="3.1.1")


@contextlib.asynccontextmanager
async def receiver_group(
    cluster: NatsCluster, database: str, members: int
) -> AsyncIterator[ReceiverStore]:
    """``members`` receivers, each on its own node's MQTT port and its own connection to
    the shared database, like separate processes; yields a connection for reading."""
    dbs = [await open_store(database) for _ in range(members + 1)]
    tasks = []
    for n in range(members):
        ready = asyncio.Event()
        endpoint = endpoint_at(cluster.mqtt_ports[n % len(cluster.mqtt_ports)])
        tasks.append(
            asyncio.create_task(
                serve_stream(
                    cluster.servers, endpoint, dbs[n], group=GROUP, identifier=f"r{n}", ready=ready
                )
            )
        )
        await asyncio.wait_for(ready.wait(), TIMEOUT)
    try:
        yield dbs[-1]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, nats.errors.Error):
                await task
        for db in dbs:
            await db.close()


async def test_upload_over_mqtt_311_reaches_a_receiver_group_once(
    nats_cluster: NatsCluster, tmp_path: Path, receiver_database: str
) -> None:
    store = open_agent_store(tmp_path / "agent")
    make_account(store)
    samples = fill(store, 5000)
    endpoint = endpoint_at(nats_cluster.mqtt_ports[0])
    async with receiver_group(nats_cluster, receiver_database, members=2) as db:
        stats = await Uploader(store, endpoint).drain()
        assert stats.samples == 5000
        rows = await wait_for_samples(db, lambda rows: len(rows) == 5000, "all received")
        assert rows == expected(store, samples)
        # Each message went to one member: none was delivered twice, none waits.
        connection = await nats.connect(nats_cluster.servers)
        try:
            info = await connection.jetstream().consumer_info(STREAM, GROUP)
        finally:
            await connection.close()
        assert info.num_redelivered == 0 and info.num_ack_pending == 0, info

        # An erasure through the cluster: deleted, and confirmed on the agent's node.
        assert request_cloud_erasure(store, "data")
        await Uploader(store, endpoint).drain(confirm_timeout=TIMEOUT)
        assert store.ledger.erase_requests(pending_only=True) == []
        assert await db.samples() == []
