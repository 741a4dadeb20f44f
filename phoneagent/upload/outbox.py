"""What the uploader makes of the store's rows: encoded batches and erase messages.

Blocking: the uploader calls these through its ``blocking`` (``asyncio.to_thread``, or an
agent fleet's ``OnLoop``, on the event loop itself). The SQL is the store's
(``Store.upload_chunk``, ``store.ledger``), the policy the gate's; this module only
encodes.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from phoneagent.privacy.gate import upload_subjects
from phoneagent.store import DeviceRecord, PackedSamples, Store, chunk_seqs
from phoneagent.store.ledger import EraseRequest, UploadConsents
from phoneagent.upload.payload import SAMPLE_SIZE, EraseMessage, encode_batches, encode_packed


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    last_seq: int
    count: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    """Batches read with the policy state they were allowed on; ``refusal`` set when it
    said no. ``checked_at``: the store's time of the read, for the disclosure of what goes."""

    batches: tuple[OutgoingBatch, ...]
    refusal: str | None
    checked_at: int


def read_chunk(
    store: Store,
    device: DeviceRecord,
    after_seq: int,
    batch_size: int,
    batches: int,
    region: str,
    allowed: Callable[[UploadConsents | None], str | None],
) -> Chunk:
    """Up to ``batches`` encoded batches of ``device`` with seq > ``after_seq``, for
    ``region``'s endpoint.

    The samples and the policy state (``upload_subjects(region)``) come in one statement,
    one snapshot; ``allowed`` (None = yes, else the reason) decides each batch on that
    state before any is made, stopping that batch and everything after it; the allowed
    ones are then encoded in one go. A consent withdrawn before the read stops the whole
    chunk, one withdrawn after it the next chunk.
    """
    checked_at = store.now()
    consents, samples = store.upload_chunk(
        device.address, after_seq, batch_size * batches, *upload_subjects(region)
    )
    base, seqs = chunk_seqs(samples)
    starts = range(0, len(seqs), batch_size)
    made, refusal = len(starts), None
    for index in range(made):
        refusal = allowed(consents)
        if refusal is not None:
            made = index
            break
    end = min(len(seqs), made * batch_size)
    if not end:
        return Chunk((), refusal, checked_at)
    ids = _batch_ids(made)
    if isinstance(samples, PackedSamples):
        payloads = encode_packed(
            ids, batch_size, base, samples.base_ts, samples.rows[: end * SAMPLE_SIZE]
        )
    else:
        payloads = encode_batches(ids, batch_size, *(column[:end] for column in samples))
    out = tuple(
        OutgoingBatch(
            base + seqs[min(start + batch_size, end) - 1], min(batch_size, end - start), p
        )
        for start, p in zip(range(0, end, batch_size), payloads, strict=True)
    )
    return Chunk(out, refusal, checked_at)


def _batch_ids(count: int) -> tuple[int, ...]:
    """Random 64-bit batch ids, from one read of the system's random source."""
    return struct.unpack(f"<{count}Q", secrets.token_bytes(8 * count))


def erase_message(store: Store, request: EraseRequest) -> EraseMessage:
    """The request with its bounds: what the endpoint acknowledged per device right now.

    A device still stored is bounded by its upload position (later uploads are new data
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
            position = store.ledger.get_upload_position(address, request.endpoint)
            bounds[name] = -1 if position is None else position
    return EraseMessage(
        request.id,
        request.scope,
        request.device_pseudonym,
        request.metric,
        request.since,
        request.until,
        bounds,
    )
