"""Reference receiver: the cloud side of the upload, for tests and for users to verify it.

It subscribes with an MQTT shared subscription (``$share/<group>/<prefix>/#``), so the
broker hands each message to one member of the group: run several receivers with the
same group and database to split the ingest load (behind a broker cluster, that is how
it scales out). Samples are stored de-duplicated by (device pseudonym, seq) in a
``ReceiverStore`` (``cloudreceiver.store``: a SQLite file, or PostgreSQL for several
machines); erase requests delete, leave a tombstone (so a batch still in flight at
another member cannot bring erased rows back) and are confirmed on a retained topic the
agent listens to. A message is acknowledged to the broker only once the store committed it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import aiomqtt
import nats.errors

from cloudreceiver.retry import retrying
from cloudreceiver.store import ReceiverStore
from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.payload import (
    EraseMessage,
    PayloadError,
    encode_json,
    parse_topic,
)

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400


async def serve(
    endpoint: Endpoint,
    db: ReceiverStore,
    *,
    group: str | None = "receivers",
    identifier: str = "receiver-1",
    ready: asyncio.Event | None = None,
) -> None:
    """Receive until cancelled; raises ``aiomqtt.MqttError`` if the connection drops.

    The session is persistent (fixed ``identifier``, one week expiry): while this
    receiver is away the broker queues its share of the messages instead of dropping them.
    ``group=None`` subscribes without sharing: Mosquitto 2.0 restores a persistent
    session's plain subscriptions after a broker restart but not its shared ones, so a
    shared group loses what is published between the restart and its resubscription
    (found by the soak run, ``docs/scaling.md``).
    """
    prefix = endpoint.prefix
    client = endpoint.client(identifier, session_expiry=SESSION_EXPIRY_S)
    # PUBACK only once a message is committed: paho would acknowledge on arrival, and a
    # message still queued when the connection drops would be lost. aiomqtt 2.5 does
    # not expose paho's manual acknowledgement, hence the reach into its client.
    paho = client._client
    paho.manual_ack_set(True)
    async with client:
        topic = f"{prefix}/#" if group is None else f"$share/{group}/{prefix}/#"
        await client.subscribe(topic, qos=1)
        if ready is not None:
            ready.set()
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            await handle(client, db, prefix, str(message.topic), payload)
            paho.ack(message.mid, message.qos)


async def serve_forever(
    session: Callable[[asyncio.Event], Awaitable[None]],
    *,
    identifier: str,
    say: Callable[[str], None],
) -> None:
    """``session`` (``serve`` or ``jetstream.serve_stream`` with their arguments, setting
    the event once subscribed) again after a broker outage: the persistent session or the
    durable consumer kept our share queued.

    ``say`` tells the operator (and a test) when the subscription is in place and when
    the connection was lost.
    """
    lost = (aiomqtt.MqttError, nats.errors.Error)
    async for attempt in retrying(lost, "broker connection lost", say):
        with attempt:
            ready = asyncio.Event()
            told = asyncio.create_task(_say_when(ready, f"receiving as {identifier}", say))
            try:
                await session(ready)
            finally:
                told.cancel()


async def _say_when(ready: asyncio.Event, line: str, say: Callable[[str], None]) -> None:
    await ready.wait()
    say(line)


async def handle(
    client: aiomqtt.Client, db: ReceiverStore, prefix: str, topic: str, payload: bytes
) -> None:
    """Store or erase what one message says (a malformed one is logged and dropped);
    confirmations go out on ``client``."""
    try:
        await _dispatch(client, db, prefix, topic, payload)
    except (PayloadError, json.JSONDecodeError, KeyError) as error:
        log.warning("dropping malformed message on %s: %s", topic, error)


async def _dispatch(
    client: aiomqtt.Client, db: ReceiverStore, prefix: str, topic: str, payload: bytes
) -> None:
    topics, rest = parse_topic(prefix, topic)
    match rest:
        case [device, "samples"]:
            await db.store_batch(topics, device, payload)
        case [device, "info"]:
            await db.store_info(topics, device, payload)
        case ["erase"]:
            erase = EraseMessage.decode(payload)
            deleted = await db.erase(topics, erase)
            confirmation = encode_json({"id": erase.request_id, "deleted": deleted})
            await client.publish(
                topics.erase_confirmed(erase.request_id), confirmation, qos=1, retain=True
            )
        case _:
            pass  # confirmations (ours) and anything newer than this receiver
