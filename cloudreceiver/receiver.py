"""Reference receiver: the cloud side of the upload, for tests and for users to verify it.

It subscribes with an MQTT shared subscription (``$share/<group>/<prefix>/#``), so the
broker hands each message to one member of the group: run several receivers with the
same group and database to split the ingest load (behind a broker cluster, that is how
it scales out). Samples are stored de-duplicated by (device pseudonym, seq); erase
requests delete, leave a tombstone (so a batch still in flight at another member cannot
bring erased rows back) and are confirmed on a retained topic the agent listens to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import nats.errors
import tenacity

from phoneagent.upload.endpoints import Endpoint
from phoneagent.upload.payload import (
    EraseMessage,
    PayloadError,
    Topics,
    decode_batch,
    decode_json,
    encode_json,
    parse_topic,
)
from protocol.metrics import Metric

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400
RETRY_S = 0.5
RETRY_MAX_S = 10.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS samples (
        device TEXT NOT NULL, seq INTEGER NOT NULL, user TEXT NOT NULL, region TEXT NOT NULL,
        metric INTEGER NOT NULL, ts INTEGER NOT NULL, raw INTEGER NOT NULL,
        PRIMARY KEY (device, seq)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS devices (
        device TEXT PRIMARY KEY, user TEXT NOT NULL, model TEXT, firmware TEXT)""",
    """CREATE TABLE IF NOT EXISTS tombstones (
        user TEXT NOT NULL, request_id INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (user, request_id))""",
)


class ReceiverDb:
    """The receiver's own SQLite file; several receiver processes may share it (WAL)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode = WAL")
        for statement in _SCHEMA:
            self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()

    def store_batch(self, topics: Topics, device: str, payload: bytes) -> int:
        """Insert new samples, skipping duplicates and tombstoned ones; returns how many."""
        batch = decode_batch(payload)
        metric_key = {m: m.name.lower() for m in {s.metric for s in batch.samples}}
        # Tombstones read inside the write transaction: another receiver of the group may
        # be committing an erasure of this very range at the same moment.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            erased = self._tombstones(topics.user)
            rows = [
                (device, s.seq, topics.user, topics.region, int(s.metric), s.timestamp, s.raw)
                for s in batch.samples
                if not any(
                    _covers(e, device, s.seq, metric_key[s.metric], s.timestamp) for e in erased
                )
            ]
            new = self.conn.executemany(
                "INSERT OR IGNORE INTO samples VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            ).rowcount
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return int(new)

    def store_info(self, topics: Topics, device: str, payload: bytes) -> None:
        info = decode_json(payload)
        self.conn.execute(
            "INSERT INTO devices VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
            " model = excluded.model, firmware = excluded.firmware",
            (device, topics.user, info.get("model"), info.get("firmware")),
        )

    def erase(self, topics: Topics, erase: EraseMessage) -> int:
        """Delete what the request covers and keep it as a tombstone; returns rows deleted."""
        clauses = ["user = ?"]
        params: list[object] = [topics.user]
        if erase.scope == "data":
            if erase.device is not None:
                clauses.append("device = ?")
                params.append(erase.device)
            if erase.metric is not None:
                clauses.append("metric = ?")
                params.append(_metric_id(erase.metric))
            if erase.since is not None:
                clauses.append("ts >= ?")
                params.append(erase.since)
            if erase.until is not None:
                clauses.append("ts < ?")
                params.append(erase.until)
            # Only what had been acknowledged when the request left (as the tombstone
            # drops): a later batch that a group member committed first is new data.
            covered = []
            for device, bound in erase.bounds.items():
                covered.append("device = ?" if bound is None else "(device = ? AND seq <= ?)")
                params.extend([device] if bound is None else [device, bound])
            clauses.append(f"({' OR '.join(covered)})" if covered else "0")
        where = " AND ".join(clauses)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = self.conn.execute(f"DELETE FROM samples WHERE {where}", params).rowcount
            if erase.scope == "account":
                self.conn.execute("DELETE FROM devices WHERE user = ?", (topics.user,))
            self.conn.execute(
                "INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?)",
                (topics.user, erase.request_id, erase.encode().decode()),
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return int(deleted)

    def _tombstones(self, user: str) -> list[EraseMessage]:
        rows = self.conn.execute("SELECT body FROM tombstones WHERE user = ?", (user,))
        return [EraseMessage.decode(str(body).encode()) for (body,) in rows]

    def samples(self) -> list[tuple[str, int, int, int, int]]:
        """(device, seq, metric, ts, raw) in order, for tests and inspection."""
        return list(
            self.conn.execute("SELECT device, seq, metric, ts, raw FROM samples ORDER BY 1, 2")
        )


def _metric_id(key: str) -> int:
    return int(Metric[key.upper()])


def _covers(erase: EraseMessage, device: str, seq: int, metric: str, ts: int) -> bool:
    if erase.scope == "account":
        return True
    if device not in erase.bounds:
        return False
    bound = erase.bounds[device]
    return (
        (bound is None or seq <= bound)
        and (erase.metric is None or erase.metric == metric)
        and (erase.since is None or ts >= erase.since)
        and (erase.until is None or ts < erase.until)
    )


async def serve(
    endpoint: Endpoint,
    db: ReceiverDb,
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

    def lost(retry: tenacity.RetryCallState) -> None:
        assert retry.outcome is not None and retry.next_action is not None
        error, delay = retry.outcome.exception(), retry.next_action.sleep
        say(f"broker connection lost ({error}); retrying in {delay:g} s")

    async for attempt in tenacity.AsyncRetrying(
        wait=tenacity.wait_exponential(multiplier=RETRY_S, max=RETRY_MAX_S),
        retry=tenacity.retry_if_exception_type((aiomqtt.MqttError, nats.errors.Error)),
        before_sleep=lost,
    ):
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
    client: aiomqtt.Client, db: ReceiverDb, prefix: str, topic: str, payload: bytes
) -> None:
    """Store or erase what one message says (a malformed one is logged and dropped);
    confirmations go out on ``client``."""
    try:
        await _dispatch(client, db, prefix, topic, payload)
    except (PayloadError, json.JSONDecodeError, KeyError) as error:
        log.warning("dropping malformed message on %s: %s", topic, error)


async def _dispatch(
    client: aiomqtt.Client, db: ReceiverDb, prefix: str, topic: str, payload: bytes
) -> None:
    topics, rest = parse_topic(prefix, topic)
    match rest:
        case [device, "samples"]:
            db.store_batch(topics, device, payload)
        case [device, "info"]:
            db.store_info(topics, device, payload)
        case ["erase"]:
            erase = EraseMessage.decode(payload)
            deleted = db.erase(topics, erase)
            confirmation = encode_json({"id": erase.request_id, "deleted": deleted})
            await client.publish(
                topics.erase_confirmed(erase.request_id), confirmation, qos=1, retain=True
            )
        case _:
            pass  # confirmations (ours) and anything newer than this receiver
