"""What the uploader reads from and writes to the store, each call one transaction.

Blocking: call these from a worker thread (the uploader uses ``asyncio.to_thread``).
The cursor and erase-request tables belong to ``phoneagent.store.ledger``; only the
reads that ledger has no use for (samples past a cursor, erase bounds) live here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phoneagent.store import DeviceRecord, Store
from phoneagent.store.ledger import EraseRequest, get_upload_cursor
from phoneagent.upload.payload import EraseMessage, encode_batch


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    last_seq: int
    count: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    """Batches read right after a policy check; ``refusal`` set when it said no."""

    batches: tuple[OutgoingBatch, ...]
    refusal: str | None


def read_chunk(
    store: Store,
    device: DeviceRecord,
    after_seq: int,
    batch_size: int,
    batches: int,
    allowed: Callable[[], str | None],
) -> Chunk:
    """Up to ``batches`` encoded batches of ``device`` with seq > ``after_seq``.

    The rows come in one query; ``allowed`` (None = yes, else the reason) is asked
    before each batch is made, so a consent withdrawn between two batches stops the
    second one and everything after it.
    """
    rows = _rows_after(store, device.address, after_seq, batch_size * batches)
    out: list[OutgoingBatch] = []
    for start in range(0, len(rows), batch_size):
        refusal = allowed()
        if refusal is not None:
            return Chunk(tuple(out), refusal)
        part = rows[start : start + batch_size]
        out.append(OutgoingBatch(part[-1][0], len(part), encode_batch(secrets.randbits(64), part)))
    return Chunk(tuple(out), None)


def _rows_after(
    store: Store, address: str, after_seq: int, limit: int
) -> list[tuple[int, int, int, int]]:
    def work(conn: Any, now: int) -> list[tuple[int, int, int, int]]:
        rows: list[tuple[int, int, int, int]] = conn.execute(
            "SELECT s.seq, s.metric, s.ts, s.raw FROM samples AS s"
            " JOIN devices AS d ON d.id = s.device_id"
            " WHERE d.address = ? AND s.seq > ? ORDER BY s.seq LIMIT ?",
            (address, after_seq, limit),
        ).fetchall()
        return rows

    return store.transact(work)


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
