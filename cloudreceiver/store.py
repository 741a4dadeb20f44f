"""What the receiver keeps, behind one interface with two implementations.

``SqliteStore`` (``cloudreceiver.sqlite``) is the embedded default: a local file, no
server, for a single machine. ``PostgresStore`` (``cloudreceiver.postgres``) is the one
for scale: any number of receivers share it. Both de-duplicate by (device pseudonym,
seq), honour erasures with tombstones and answer the same inspection queries, so the
receiver and its tests do not care which one they have (``open_store``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import LiteralString, Protocol

from phoneagent.upload.payload import Batch, EraseMessage, Topics, WireSample
from protocol.metrics import Metric

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# (device, seq, metric, ts, raw) and (device, model, firmware), as the inspection returns them.
SampleRow = tuple[str, int, int, int, int]
DeviceRow = tuple[str, str | None, str | None]


class ReceiverStore(Protocol):
    """The receiver's storage: each call is one transaction, committed when it returns
    (the receiver acknowledges a message to the broker only then)."""

    async def store_batch(self, topics: Topics, device: str, payload: bytes) -> int:
        """Insert new samples, skipping duplicates and tombstoned ones; returns how many."""
        ...

    async def store_info(self, topics: Topics, device: str, payload: bytes) -> None: ...

    async def erase(self, topics: Topics, erase: EraseMessage) -> int:
        """Delete what the request covers and keep it as a tombstone; returns rows deleted."""
        ...

    async def samples(self) -> list[SampleRow]:
        """Every sample in (device, seq) order, for tests and inspection."""
        ...

    async def devices(self) -> list[DeviceRow]:
        """Every device's info in device order, for tests and inspection."""
        ...

    async def count(self) -> int:
        """How many samples are held: a cheap progress check for tests and operators."""
        ...

    async def close(self) -> None: ...


def is_postgres(database: str | Path) -> bool:
    return str(database).startswith(POSTGRES_SCHEMES)


async def open_store(
    database: str | Path, *, say: Callable[[str], None] | None = None
) -> ReceiverStore:
    """A ``postgresql://`` URL opens (and migrates) PostgreSQL, anything else is the path
    of the embedded SQLite file. ``say`` hears when a lost database connection is retried."""
    if is_postgres(database):
        from cloudreceiver.postgres import PostgresStore

        return await PostgresStore.open(str(database), say=say)
    from cloudreceiver.sqlite import SqliteStore

    return SqliteStore(Path(database))


def samples_to_keep(batch: Batch, device: str, erased: list[EraseMessage]) -> list[WireSample]:
    """The batch's samples that no tombstone of the user covers."""
    if not erased:
        return list(batch.samples)
    metric_key = {m: m.name.lower() for m in {s.metric for s in batch.samples}}
    return [
        s
        for s in batch.samples
        if not any(_covers(e, device, s.seq, metric_key[s.metric], s.timestamp) for e in erased)
    ]


def erase_filters(erase: EraseMessage) -> list[tuple[str, str, object]]:
    """(column, operator, value) the request's samples match besides the user's own."""
    if erase.scope != "data":
        return []
    filters: list[tuple[str, str, object]] = []
    if erase.device is not None:
        filters.append(("device", "=", erase.device))
    if erase.metric is not None:
        filters.append(("metric", "=", int(Metric[erase.metric.upper()])))
    if erase.since is not None:
        filters.append(("ts", ">=", erase.since))
    if erase.until is not None:
        filters.append(("ts", "<", erase.until))
    return filters


def erase_reach(erase: EraseMessage) -> list[tuple[LiteralString, list[object]]] | None:
    """Which devices and seqs a 'data' request reaches, one ``%s`` SQL condition per device
    (ORed; none at all: nothing), None for an account's (everything): only what had been
    acknowledged when the request left, its ``bounds``, as its tombstone drops. With a
    receiver group, a batch past them that one member committed before another handled the
    request is new data (the cluster fault test lost samples to deleting it)."""
    if erase.scope != "data":
        return None
    return [
        ("device = %s", [device])
        if bound is None
        else ("(device = %s AND seq <= %s)", [device, bound])
        for device, bound in erase.bounds.items()
    ]


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
