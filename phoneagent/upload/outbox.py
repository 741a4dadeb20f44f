"""What the uploader reads from and writes to the store, each call one transaction.

Blocking: call these from a worker thread (the uploader's ``blocking``: ``asyncio.to_thread``
or an agent fleet's ``StorePool``). The cursor and erase-request tables belong to
``phoneagent.store.ledger``; only the reads that ledger has no use for (samples past a
cursor, erase bounds) live here.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from operator import ge

from phoneagent.store import DeviceRecord, Store
from phoneagent.store.ledger import EraseRequest, get_upload_cursor
from phoneagent.upload.payload import EraseMessage, encode_columns


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    last_seq: int
    count: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    """Batches read right after a policy check; ``refusal`` set when it said no.
    ``checked_at``: the store's time of the checks, for the disclosure of what goes."""

    batches: tuple[OutgoingBatch, ...]
    refusal: str | None
    checked_at: int


def read_chunk(
    store: Store,
    device: DeviceRecord,
    after_seq: int,
    batch_size: int,
    batches: int,
    allowed: Callable[[], str | None],
) -> Chunk:
    """Up to ``batches`` encoded batches of ``device`` with seq > ``after_seq``.

    The samples come in one query; ``allowed`` (None = yes, else the reason) is asked
    before each batch is made, so a consent withdrawn between two batches stops the
    second one and everything after it.
    """
    checked_at = store.now()
    seqs, metrics, stamps, raws = _columns_after(
        store, device.address, after_seq, batch_size * batches
    )
    out: list[OutgoingBatch] = []
    for start in range(0, len(seqs), batch_size):
        refusal = allowed()
        if refusal is not None:
            return Chunk(tuple(out), refusal, checked_at)
        end = start + batch_size
        part = seqs[start:end]
        payload = encode_columns(
            secrets.randbits(64), part, metrics[start:end], stamps[start:end], raws[start:end]
        )
        out.append(OutgoingBatch(part[-1], len(part), payload))
    return Chunk(tuple(out), None, checked_at)


# The whole chunk as one row of four comma-separated columns. Fetched row by row, each
# sample cost a tuple of four ints and one SQLite step, and every step hands the GIL to
# the publisher on the event loop and waits to get it back: the reader then cost as much
# CPU as publishing (benchmarks/RESULTS.md). group_concat builds the columns in C in a
# single step, and json.loads turns each into a list of ints in C. All four aggregate
# the same rows in the same order (the subquery's), so the columns line up.
_CHUNK_COLUMNS = (
    "SELECT group_concat(seq), group_concat(metric), group_concat(ts), group_concat(raw)"
    " FROM (SELECT s.seq, s.metric, s.ts, s.raw FROM samples AS s"
    " JOIN devices AS d ON d.id = s.device_id"
    " WHERE d.address = ? AND s.seq > ? ORDER BY s.seq LIMIT ?)"
)
_Columns = tuple[list[int], list[int], list[int], list[int]]


def _columns_after(store: Store, address: str, after_seq: int, limit: int) -> _Columns:
    row = store.transact(
        lambda conn, now: conn.execute(_CHUNK_COLUMNS, (address, after_seq, limit)).fetchone()
    )
    if row[0] is None:
        return [], [], [], []
    seqs, metrics, stamps, raws = (json.loads(f"[{column}]") for column in row)
    if any(map(ge, seqs, islice(seqs, 1, None))):
        # SQLite does not promise the aggregate's order: put the rows back in seq order.
        rows = sorted(zip(seqs, metrics, stamps, raws, strict=True))
        seqs, metrics, stamps, raws = (list(column) for column in zip(*rows, strict=True))
    return seqs, metrics, stamps, raws


def erase_message(store: Store, request: EraseRequest) -> EraseMessage:
    """The request with its bounds: what the endpoint acknowledged per device right now.

    A device still stored is bounded by its upload cursor (later uploads are new data
    the request does not cover); a named device that is gone is unbounded.
    """
    devices = {d.pseudonym: d.address for d in store.list_devices()}
    if request.device_pseudonym is not None:
        names = [request.device_pseudonym]
    else:
        names = [] if request.scope == "account" else list(devices)
    bounds: dict[str, int | None] = {}
    for name in names:
        address = devices.get(name)
        if address is None:
            bounds[name] = None
        else:
            cursor = get_upload_cursor(store, address, request.endpoint)
            bounds[name] = -1 if cursor is None else cursor
    return EraseMessage(
        request.id,
        request.scope,
        request.device_pseudonym,
        request.metric,
        request.since,
        request.until,
        bounds,
    )
