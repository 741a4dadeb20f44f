"""Wire formats of the cloud upload (documented in docs/upload.md).

Samples travel in a compact binary batch: a fixed header, then 13 bytes per sample
with seq and timestamp as deltas from the header's base values. JSON would cost about
four times the bytes and ten times the encoding time at the batch sizes we send.
Control messages (device info, erase requests and their confirmations) are rare, so
they are small JSON objects that a person can read in a broker capture.

Nothing here carries an identity: the user and device appear only as the random
pseudonyms in the topic (PR-ANON).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, repeat
from operator import sub
from typing import Any

from protocol.metrics import Metric

MAGIC = b"WU"
VERSION = 1
# magic, version, sample count, batch id, base seq, base timestamp
_HEADER = struct.Struct("<2sBHQqq")
_SAMPLE = "IiBi"  # seq - base_seq, ts - base_ts, metric, raw
SAMPLE_SIZE = struct.calcsize("<" + _SAMPLE)
# Each field of a sample: its offset, struct code and width.
_FIELDS = ((0, "I", 4), (4, "i", 4), (8, "B", 1), (9, "i", 4))
# A sample's bytes from the store's packing (big-endian, ts and raw biased by 2**31):
# (offset here, offset there, flip the top bit back), byte by byte.
_FROM_PACKED = tuple(
    (offset + byte, offset + width - 1 - byte, code == "i" and byte == width - 1)
    for offset, code, width in _FIELDS
    for byte in range(width)
)
_FLIP_TOP_BIT = bytes(value ^ 0x80 for value in range(256))
MAX_BATCH = 0xFFFF
_I32_MAX = 2**31 - 1


class PayloadError(ValueError):
    """A message that is not in the documented format."""


@dataclass(frozen=True, slots=True)
class WireSample:
    seq: int
    timestamp: int
    metric: Metric
    raw: int


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: int  # random per batch: traces one publish; receivers de-duplicate by seq
    samples: tuple[WireSample, ...]


@lru_cache(maxsize=64)  # a full batch, the odd last one and a live upload's few samples
def _body(count: int) -> struct.Struct:
    return struct.Struct("<" + _SAMPLE * count)


def encode_batch(batch_id: int, rows: Sequence[tuple[int, int, int, int]]) -> bytes:
    """Encode ``(seq, metric, ts, raw)`` rows in ascending seq order."""
    if not rows:
        raise PayloadError(f"a batch holds 1..{MAX_BATCH} samples, not 0")
    seqs, metrics, stamps, raws = zip(*rows, strict=True)
    return encode_columns(batch_id, seqs, metrics, stamps, raws)


def encode_columns(
    batch_id: int,
    seqs: Sequence[int],
    metrics: Sequence[int],
    stamps: Sequence[int],
    raws: Sequence[int],
) -> bytes:
    """Encode a batch given column by column (``seqs`` ascending, the others alike).

    One ``pack`` of the interleaved fields: for a live upload's batch of a few samples a
    second, cheaper than ``encode_batches``' pack per column and its 13 strided copies.
    """
    if not 0 < len(seqs) <= MAX_BATCH:
        raise PayloadError(f"a batch holds 1..{MAX_BATCH} samples, not {len(seqs)}")
    base_seq, base_ts = seqs[0], _base_stamp(stamps)
    fields = zip(
        map(sub, seqs, repeat(base_seq)),
        map(sub, stamps, repeat(base_ts)),
        metrics,
        raws,
        strict=True,
    )
    try:
        body = _body(len(seqs)).pack(*chain.from_iterable(fields))
    except struct.error as error:
        raise PayloadError(f"a sample does not fit the batch format: {error}") from error
    except ValueError as error:  # ``zip``: columns of different lengths
        raise PayloadError(f"the columns of a batch differ in length: {error}") from error
    return _HEADER.pack(MAGIC, VERSION, len(seqs), batch_id, base_seq, base_ts) + body


def encode_batches(
    batch_ids: Sequence[int],
    size: int,
    seqs: Sequence[int],
    metrics: Sequence[int],
    stamps: Sequence[int],
    raws: Sequence[int],
) -> list[bytes]:
    """Encode consecutive batches of ``size`` samples (the last may be shorter), one per
    batch id, given column by column (``seqs`` ascending, the others alike).

    No Python code runs per sample: the deltas come from ``map``, each column is packed
    by one ``pack`` for all batches at once, and strided slice assignments interleave the
    packed columns into the 13-byte samples. Each batch's bases are its first seq and its
    earliest timestamp (``_base_stamp``).
    """
    starts = _starts(batch_ids, size, len(seqs))
    count = len(seqs)
    if count <= size:
        return [encode_columns(batch_ids[0], seqs, metrics, stamps, raws)]
    first_seqs = seqs[::size]
    base_stamps = [_base_stamp(stamps[start : start + size]) for start in starts]
    columns = (
        map(sub, seqs, chain.from_iterable(map(repeat, first_seqs, repeat(size)))),
        map(sub, stamps, chain.from_iterable(map(repeat, base_stamps, repeat(size)))),
        metrics,
        raws,
    )
    body = bytearray(count * SAMPLE_SIZE)
    try:
        for (offset, code, width), column in zip(_FIELDS, columns, strict=True):
            packed = struct.pack(f"<{count}{code}", *column)
            for byte in range(width):
                body[offset + byte :: SAMPLE_SIZE] = packed[byte::width]
    except struct.error as error:
        raise PayloadError(f"a sample does not fit the batch format: {error}") from error
    return _frame(batch_ids, starts, first_seqs, base_stamps, body)


def encode_packed(
    batch_ids: Sequence[int], size: int, base_seq: int, base_ts: int, rows: bytes
) -> list[bytes]:
    """``encode_batches`` of samples the store packed (``phoneagent.store.PackedSamples``:
    13 big-endian bytes a sample, seq and ts offsets from ``base_seq`` and ``base_ts``,
    ts and raw biased by 2**31): the bytes are only moved, by strided slices in C, so no
    Python code runs per sample. Every batch takes the same bases."""
    if len(rows) % SAMPLE_SIZE:
        raise PayloadError(f"{len(rows)} packed bytes are not whole {SAMPLE_SIZE}-byte samples")
    starts = _starts(batch_ids, size, len(rows) // SAMPLE_SIZE)
    body = bytearray(len(rows))
    for target, source, flip in _FROM_PACKED:
        field = rows[source::SAMPLE_SIZE]
        body[target::SAMPLE_SIZE] = field.translate(_FLIP_TOP_BIT) if flip else field
    return _frame(batch_ids, starts, [base_seq] * len(starts), [base_ts] * len(starts), body)


def _base_stamp(stamps: Sequence[int]) -> int:
    """The batch's earliest timestamp, or 2**31 s after it when the batch spans more than
    an i32 offset reaches: then any span of 32 bits fits (a watch stamps in u32 seconds,
    and a hostile or broken one may send 0 beside 2**32 - 1)."""
    low = min(stamps)
    return low if max(stamps) - low <= _I32_MAX else low + 2**31


def _starts(batch_ids: Sequence[int], size: int, count: int) -> range:
    """Where each batch of ``count`` samples starts; one batch id each."""
    starts = range(0, count, size)
    if not 0 < size <= MAX_BATCH or len(batch_ids) != len(starts) or not starts:
        raise PayloadError(f"a batch holds 1..{MAX_BATCH} samples, not {size}")
    return starts


def _frame(
    batch_ids: Sequence[int],
    starts: range,
    base_seqs: Sequence[int],
    base_stamps: Sequence[int],
    body: bytearray,
) -> list[bytes]:
    """Each batch's header and its samples, packed in ``body`` from ``starts``."""
    count, size = len(body) // SAMPLE_SIZE, starts.step
    return [
        _HEADER.pack(MAGIC, VERSION, min(size, count - start), batch_id, base_seq, base_ts)
        + body[start * SAMPLE_SIZE : (start + size) * SAMPLE_SIZE]
        for batch_id, start, base_seq, base_ts in zip(
            batch_ids, starts, base_seqs, base_stamps, strict=True
        )
    ]


def decode_batch(data: bytes) -> Batch:
    if len(data) < _HEADER.size:
        raise PayloadError(f"batch of {len(data)} bytes is shorter than its header")
    magic, version, count, batch_id, base_seq, base_ts = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise PayloadError(f"not a version {VERSION} sample batch (magic {magic!r} v{version})")
    if len(data) != _HEADER.size + count * SAMPLE_SIZE:
        raise PayloadError(f"batch says {count} samples but has {len(data)} bytes")
    values = _body(count).unpack_from(data, _HEADER.size)
    try:
        samples = tuple(
            WireSample(
                base_seq + values[i], base_ts + values[i + 1], Metric(values[i + 2]), values[i + 3]
            )
            for i in range(0, len(values), 4)
        )
    except ValueError as error:
        raise PayloadError(f"unknown metric in batch: {error}") from error
    return Batch(batch_id, samples)


def encode_json(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


def decode_json(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(f"not a JSON control message: {error}") from error
    if not isinstance(message, dict):
        raise PayloadError("a control message must be a JSON object")
    return message


@dataclass(frozen=True, slots=True)
class EraseMessage:
    """An erase request as it travels (topic ``.../<user>/erase``).

    ``bounds`` maps a device pseudonym to the highest seq the broker had acknowledged
    when the request left (None: every seq, the device is gone for good). Receivers
    keep the request as a tombstone, so a batch of the same range that another
    receiver of the group is still processing cannot bring erased samples back.
    """

    request_id: int
    scope: str  # 'account' (everything of the user) or 'data' (the filtered samples)
    device: str | None
    metric: str | None
    since: int | None
    until: int | None
    bounds: dict[str, int | None]

    def encode(self) -> bytes:
        return encode_json(
            {
                "id": self.request_id,
                "scope": self.scope,
                "device": self.device,
                "metric": self.metric,
                "since": self.since,
                "until": self.until,
                "bounds": self.bounds,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> EraseMessage:
        message = decode_json(data)
        try:
            erase = cls(
                int(message["id"]),
                str(message["scope"]),
                _optional(message["device"], str),
                _optional(message["metric"], str),
                _optional(message["since"], int),
                _optional(message["until"], int),
                {str(k): _optional(v, int) for k, v in dict(message["bounds"]).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PayloadError(f"malformed erase request: {error!r}") from error
        if erase.scope not in ("account", "data"):
            raise PayloadError(f"unknown erase scope {erase.scope!r}")
        if erase.metric is not None and erase.metric not in {m.key for m in Metric}:
            raise PayloadError(f"unknown metric {erase.metric!r} in erase request")
        return erase


def _optional(value: Any, kind: type[Any]) -> Any:
    return None if value is None else kind(value)


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under ``<prefix>/<region>/<user pseudonym>``; pseudonyms only."""

    prefix: str
    region: str
    user: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.region}/{self.user}"

    def samples(self, device: str) -> str:
        return f"{self.base}/{device}/samples"

    def device_info(self, device: str) -> str:
        return f"{self.base}/{device}/info"

    @property
    def erase(self) -> str:
        return f"{self.base}/erase"

    def erase_confirmed(self, request_id: int) -> str:
        return f"{self.base}/erase/{request_id}/confirmed"

    @property
    def erase_confirmed_filter(self) -> str:
        return f"{self.base}/erase/+/confirmed"


def parse_topic(prefix: str, topic: str) -> tuple[Topics, list[str]]:
    """Split a received topic into its ``Topics`` and the remaining levels."""
    head = prefix.split("/")
    levels = topic.split("/")
    if levels[: len(head)] != head or len(levels) < len(head) + 3:
        raise PayloadError(f"topic {topic!r} is not under {prefix!r}/<region>/<user>/")
    region, user, *rest = levels[len(head) :]
    return Topics(prefix, region, user), rest
