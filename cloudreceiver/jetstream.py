"""Receivers that scale out on a NATS JetStream cluster (``docs/scaling.md``).

NATS's MQTT listener keeps every QoS 1 publish in the replicated stream ``$MQTT_msgs``
(subject ``$MQTT.msgs.<topic with '/' as '.'>``) before its PUBACK. MQTT 3.1.1 has no
shared subscriptions, so receivers read that stream natively instead: one durable pull
consumer per group, replicated like the stream, that every receiver of the group fetches
from. JetStream hands each message to one of them and redelivers what is not acknowledged
within ``ACK_WAIT_S`` (a receiver killed mid-batch) to another: at least once, and the
database absorbs the duplicates by (device pseudonym, seq). A message is acknowledged
only once it is committed. Erasure confirmations still go out over MQTT (retained, so the
agent finds them on any node: NATS keeps retained messages in a replicated stream too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from cloudreceiver.receiver import handle
from cloudreceiver.store import ReceiverStore
from phoneagent.upload.endpoints import Endpoint

STREAM = "$MQTT_msgs"
SUBJECT_PREFIX = "$MQTT.msgs."
ACK_WAIT_S = 10.0  # a killed receiver's batch goes to another member after this
BATCH = 100
FETCH_WAIT_S = 1.0
MAX_ACK_PENDING = 20_000


def topic_of(subject: str) -> str:
    """The MQTT topic of a stream subject (NATS 2.9 refuses topics with '.', so this is exact)."""
    return subject.removeprefix(SUBJECT_PREFIX).replace(".", "/")


async def serve_stream(
    servers: Sequence[str],
    endpoint: Endpoint,
    db: ReceiverStore,
    *,
    group: str,
    identifier: str,
    ready: asyncio.Event | None = None,
) -> None:
    """Receive from the group's durable consumer until cancelled.

    Raises ``aiomqtt.MqttError`` or ``nats.errors.Error`` when a connection is lost for
    good; what was fetched and not acknowledged then goes to another member.
    """
    prefix = endpoint.prefix
    # MQTT first: the server creates its streams when the account's first MQTT client
    # connects, and the consumer needs ``$MQTT_msgs`` to exist.
    client = endpoint.client(identifier)
    async with client:
        connection = await nats.connect(list(servers), name=identifier, max_reconnect_attempts=-1)
        try:
            stream = connection.jetstream()
            await stream.add_consumer(
                STREAM,
                ConsumerConfig(
                    durable_name=group,
                    filter_subject=f"{SUBJECT_PREFIX}{prefix}.>",
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ACK_WAIT_S,
                    max_ack_pending=MAX_ACK_PENDING,
                ),
            )
            pulling = await stream.pull_subscribe_bind(group, stream=STREAM)
            if ready is not None:
                ready.set()
            this = asyncio.current_task()
            while True:
                # nats-py waits with Python 3.11's ``asyncio.wait_for``, which can swallow a
                # cancellation that lands as its wait ends: the loop would then fetch on.
                if this is not None and this.cancelling():
                    raise asyncio.CancelledError
                try:
                    messages = await pulling.fetch(BATCH, timeout=FETCH_WAIT_S)
                except TimeoutError:  # nothing waiting (nats-py raises asyncio's, or its own)
                    continue
                for message in messages:
                    await handle(client, db, prefix, topic_of(message.subject), message.data)
                    await message.ack()
        finally:
            await connection.close()
