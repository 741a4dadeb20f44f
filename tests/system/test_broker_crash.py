"""Mosquitto and the receiver killed with SIGKILL around an upload (issue 17, finding 5).

What the broker acknowledged moved the agent's upload position and is never sent again, so
it must survive the broker's crash: after both restart, the receiver holds every sample
up to the upload position. Mosquitto's default saves every 30 minutes and lost it all; its default
queue of 1,000 messages for an absent session dropped what came after.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from cloudreceiver.store import open_store as open_receiver_store
from phoneagent.upload.uploader import Uploader
from tests.mosquitto import Broker
from tests.processes import AGENT_CLI, ENV, kill, line
from tests.system.test_upload import (
    TIMEOUT,
    WATCH,
    endpoint_for,
    fill,
    make_account,
    open_store,
    wait_until,
)

pytestmark = pytest.mark.system

# 1,100 batches of 100: more than Mosquitto queues for an absent session by default (1,000),
# beyond which it acknowledges and drops.
SAMPLES = 110_000
# Each message is its own transaction: on PostgreSQL under load a receiver commits about
# 5,000 samples/s (docs/scaling.md), so 110,000 take more than the usual wait.
INGEST_S = 120.0


async def start_receiver(broker: Broker, database: str) -> asyncio.subprocess.Process:
    """``phoneagent cloud-receiver --no-share`` (one persistent session), once subscribed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT_CLI,
        "cloud-receiver",
        "--broker",
        "127.0.0.1",
        "--port",
        str(broker.port),
        "--database",
        database,
        "--no-share",
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    try:
        await line(process, "receiving as receiver-1", wait=TIMEOUT, stderr=True)
    except BaseException:
        await kill(process)
        raise
    return process


@pytest.mark.timeout(300)
async def test_acknowledged_uploads_survive_a_broker_crash(
    tmp_path: Path, receiver_database: str
) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    db = receiver_database
    receiver = await start_receiver(broker, db)
    store = open_store(tmp_path / "agent")
    try:
        await kill(receiver)  # its session stays: the broker queues what it is sent
        make_account(store)
        fill(store, SAMPLES)
        endpoint = endpoint_for(broker)
        await Uploader(store, endpoint).drain()
        device = store.get_device(WATCH)
        assert device is not None
        position = store.ledger.get_upload_position(WATCH, endpoint.region)
        assert position == SAMPLES - 1  # every batch acknowledged: none is sent again

        # Mosquitto saves after its PUBACK, at the end of that pass of its event loop, not
        # before (a kill in between loses that message: docs/upload.md). Killed just past.
        await asyncio.to_thread(broker.one_more_pass)
        broker.kill()
        broker.start()
        receiver = await start_receiver(broker, db)
        cloud = await open_receiver_store(db)
        try:

            async def all_in() -> bool:
                return await cloud.count() >= position + 1

            # One device, seqs 0..position sent, (device, seq) unique: the count says when.
            await wait_until(all_in, f"seqs 0..{position} at the receiver", within=INGEST_S)
            assert {seq for _device, seq, *_ in await cloud.samples()} == set(range(position + 1))
        finally:
            await cloud.close()
    finally:
        await kill(receiver)
        broker.stop()
        store.close()
