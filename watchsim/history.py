"""The on-watch history: every measured sample with its sequence number, kept across restarts.

Storage is an append-only log of fixed-size records (25 bytes: seq, timestamp, metric, raw,
CRC-32) split into segment files named after their first sequence number, plus a tiny
``meta`` file replaced atomically. Why this shape:

- Fixed-size records in contiguous seq order make "read from seq N" a seek, and appends a
  single ``write`` + ``fsync`` per batch (a week of 1 Hz data appends in about a second).
- A crash mid-write can only tear the newest segment (a segment is fsynced before the next
  one is created), so loading validates that segment record by record and cuts it at the
  first torn or garbled record; older records are never touched.
- Bounded like real flash: past ``capacity`` records the oldest are dropped (whole segment
  files are freed once every record in them is gone, but for the one being filled, which
  an acknowledgement of everything leaves for the next records). ``floor`` in ``meta``
  says below which seq nothing is kept, whether dropped, deleted after an acknowledgement
  or wiped; a reader starting below it is told so with the protocol's
  :class:`~protocol.history.Gap` (sent on as it is), never silently skipped.
- Sequence numbers only go up. ``meta`` keeps the next seq, so neither a reboot nor a
  wipe (factory reset) reuses one: after a wipe the history is empty and the next record
  continues the old numbering, so an agent can never mistake new records for old ones.
  It also keeps the newest record's timestamp, so that a restarted watch's clock can
  start after it even when every record was freed (time never steps back by seq).
  The one exception is a torn tail: its seqs are handed out again, which is safe because
  :meth:`History.append` never returned for them, so nobody can have been told about them.

Not thread-safe: the watch app uses it from its event loop.
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.history import FIRST_SEQ, Gap
from protocol.metrics import Metric, Sample, SampleColumns
from watchsim.errors import WatchsimError

_RECORD = struct.Struct("<QqBi")  # seq, timestamp, metric, raw
_FULL = struct.Struct("<QqBiI")  # ... + CRC-32 of the above
_CRC = struct.Struct("<I")
RECORD_SIZE = _FULL.size
_META = struct.Struct("<8sQQq")  # magic, floor, next seq, newest timestamp
_META_MAGIC = b"WSHIST02"
_META_V1 = struct.Struct("<8sQQ")  # before the newest timestamp was kept
_META_V1_MAGIC = b"WSHIST01"
_NO_TIMESTAMP = -(2**63)
_METRICS = {int(m): m for m in Metric}
_NONE = SampleColumns((), (), (), ())
_FIRST_SEQ = FIRST_SEQ


@functools.lru_cache(maxsize=16)
def _records(count: int) -> struct.Struct:
    """``count`` whole records as one flat tuple of their fields."""
    return struct.Struct("<" + _FULL.format.removeprefix("<") * count)


@functools.lru_cache(maxsize=16)
def _bodies(count: int) -> struct.Struct:
    """The bytes each of ``count`` records' CRC covers, one ``bytes`` per record."""
    return struct.Struct("<" + f"{_RECORD.size}s{_CRC.size}x" * count)


# An append of at most this many records (a live second's) stays in memory until the next.
_KEPT_APPEND_MAX = 64
DEFAULT_CAPACITY = 1_048_576  # records: a week of 1 Hz heart rate plus the rest fits
DEFAULT_SEGMENT_RECORDS = 65_536


class HistoryCorruptError(WatchsimError, RuntimeError):
    """The history files are damaged somewhere a crash cannot explain."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    gap: Gap | None  # reported before the samples when the request starts below the oldest
    columns: SampleColumns  # the samples read, as columns (what the packer takes)
    next_seq: int  # where the next read should start

    @property
    def samples(self) -> list[Sample]:
        return self.columns.samples()


@dataclass(slots=True)
class _Segment:
    first: int
    count: int
    path: Path

    @property
    def end(self) -> int:
        return self.first + self.count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _skip(_: object) -> None:
    """Stands in for an fsync when the history is not durable."""


class History:
    def __init__(
        self,
        directory: str | Path,
        *,
        capacity: int = DEFAULT_CAPACITY,
        segment_records: int = DEFAULT_SEGMENT_RECORDS,
        durable: bool = True,
    ) -> None:
        """``durable=False`` skips every fsync: for fleets of hundreds of watches on one
        disk, where each would otherwise block the shared event loop several times a
        second (a process kill still loses nothing; a power cut could)."""
        if capacity < 1 or segment_records < 1:
            raise ValueError("capacity and segment_records must be positive")
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._fsync: Callable[[int], None] = os.fsync if durable else _skip
        self._fsync_dir: Callable[[Path], None] = _fsync_dir if durable else _skip
        self.capacity = capacity
        self._segment_records = segment_records
        self._fd: int | None = None  # append (and read) handle on the newest segment
        # The last append's first seq and records as written: what a live REPORT reads
        # next, served without a read of the file (``_read_range``).
        self._appended: tuple[int, bytes] = (FIRST_SEQ, b"")
        self._listeners: list[Callable[[int, int], None]] = []
        self._floor, self._next, newest_timestamp = self._read_meta()
        self._segments = self._load_segments()
        if self._segments and self._segments[-1].end < self._next:
            raise HistoryCorruptError(
                f"{self._dir}: records up to seq {self._next - 1} were stored but are missing"
            )
        if self._segments:
            self._next = self._segments[-1].end
        self._floor = max(self._floor, _FIRST_SEQ)
        self._free_below_floor(keep_appending=False)
        if self.count:
            newest_timestamp = self._read_range(self._next - 1, self._next).timestamps[0]
        self._newest_timestamp = newest_timestamp

    # --- state --------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The seq the next appended sample will get."""
        return self._next

    @property
    def oldest_seq(self) -> int | None:
        return self._oldest() if self.count else None

    @property
    def newest_seq(self) -> int | None:
        return self._next - 1 if self.count else None

    @property
    def newest_timestamp(self) -> int | None:
        """The timestamp of the newest record ever appended, kept after it is freed."""
        return self._newest_timestamp

    @property
    def count(self) -> int:
        return self._next - self._oldest()

    def count_from(self, seq: int) -> int:
        """How many stored records have seq >= ``seq``."""
        return max(0, self._next - max(seq, self._oldest()))

    def _oldest(self) -> int:
        first = self._segments[0].first if self._segments else self._next
        return max(self._floor, first)

    # --- writing ------------------------------------------------------------------------

    def append(self, items: Iterable[tuple[int, Metric, int]]) -> range:
        """Store (timestamp, metric, raw) items durably; return the seqs they got.

        One fsync per batch (and per filled segment). Listeners are called after the data
        is on disk, so whatever they announce survives a crash.
        """
        first = self._next
        buffer = self._encode(items, first)
        n = len(buffer) // RECORD_SIZE
        if not n:
            return range(first, first)
        view = memoryview(buffer)
        written = 0
        while written < n:
            segment = self._active_segment(first + written)
            take = min(n - written, self._segment_records - segment.count)
            assert self._fd is not None
            os.write(self._fd, view[written * RECORD_SIZE : (written + take) * RECORD_SIZE])
            segment.count += take
            written += take
            if segment.count >= self._segment_records or written == n:
                self._fsync(self._fd)
        self._next = first + n
        if n <= _KEPT_APPEND_MAX:
            self._appended = (first, bytes(buffer))
        self._newest_timestamp = _RECORD.unpack_from(buffer, (n - 1) * RECORD_SIZE)[1]
        if self.count > self.capacity:  # oldest go first, like a full flash ring
            self._set_floor(self._next - self.capacity, keep_appending=True)
        for listener in list(self._listeners):
            listener(first, self._next - 1)
        return range(first, self._next)

    @staticmethod
    def _encode(items: Iterable[tuple[int, Metric, int]], first: int) -> bytearray:
        """Pack the whole batch before writing, so a bad item writes nothing."""
        out = bytearray()
        pack, crc, pack_crc = _RECORD.pack, zlib.crc32, _CRC.pack
        seq = first
        try:
            for timestamp, metric, raw in items:
                record = pack(seq, timestamp, int(metric), raw)
                out += record
                out += pack_crc(crc(record))
                seq += 1
        except struct.error as exc:
            raise ValueError(
                f"sample #{seq - first} does not fit a history record: {exc}"
            ) from None
        return out

    def _active_segment(self, next_seq: int) -> _Segment:
        """The newest segment when it has room and continues the numbering, else a new one."""
        last = self._segments[-1] if self._segments else None
        if last is not None and last.count < self._segment_records and last.end == next_seq:
            if self._fd is None:
                self._fd = os.open(last.path, os.O_RDWR | os.O_APPEND)
            return last
        self._close_fd()
        segment = _Segment(next_seq, 0, self._dir / f"seg-{next_seq:020d}.log")
        self._fd = os.open(segment.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._fsync_dir(self._dir)
        self._segments.append(segment)
        return segment

    def delete_up_to(self, seq: int) -> int:
        """Free records with seq <= ``seq`` (the agent acknowledged them); return how many."""
        before = self.count
        target = min(seq + 1, self._next)
        if target > self._floor:
            self._set_floor(target, keep_appending=True)
        return before - self.count

    def wipe(self) -> None:
        """Factory reset: nothing kept, but numbering continues (see the module docstring)."""
        self._set_floor(self._next, keep_appending=False)

    def _set_floor(self, floor: int, *, keep_appending: bool) -> None:
        self._floor = floor
        self._write_meta()  # before freeing files: a crash in between only leaves garbage
        self._free_below_floor(keep_appending=keep_appending)

    def _free_below_floor(self, *, keep_appending: bool) -> None:
        """Free the segments whose every record is below the floor. ``keep_appending``:
        keep the newest even so while it has room, for the next append to go on filling:
        an acknowledgement of everything (a live agent's, once a minute) then neither
        deletes the file nor makes a new one for the next second's records. Its records
        below the floor are never read again, as those of any segment only partly below."""
        keep = [s for s in self._segments if s.end > self._floor]
        if keep_appending and not keep and self._segments:
            keep = [s for s in self._segments[-1:] if s.count < self._segment_records]
        gone = self._segments[: len(self._segments) - len(keep)]
        if gone:
            if self._segments[-1] in gone:
                self._close_fd()
            for segment in gone:
                segment.path.unlink(missing_ok=True)
            self._fsync_dir(self._dir)
        self._segments = keep

    # --- reading ------------------------------------------------------------------------

    def gap_before(self, from_seq: int) -> Gap | None:
        """The range a reader starting at ``from_seq`` will never get, if any."""
        start = max(from_seq, _FIRST_SEQ)
        oldest = self._oldest()
        return Gap(start, oldest - 1) if start < oldest else None

    def read(self, from_seq: int, max_records: int) -> ReadResult:
        """Up to ``max_records`` samples with seq >= ``from_seq``, after the gap if any."""
        start = max(from_seq, self._oldest())
        stop = min(self._next, start + max(0, max_records))
        return ReadResult(
            self.gap_before(from_seq), self._read_range(start, stop), max(stop, start)
        )

    def iter_from(self, from_seq: int, chunk: int = 4096) -> Iterator[Gap | Sample]:
        """The gap (if any), then every record from ``from_seq`` to the newest at each chunk."""
        result = self.read(from_seq, chunk)
        if result.gap is not None:
            yield result.gap
        while result.samples:
            yield from result.samples
            result = self.read(result.next_seq, chunk)

    def _read_range(self, start: int, stop: int) -> SampleColumns:
        first, data = self._appended
        if first <= start and (stop - first) * RECORD_SIZE <= len(data):
            within = data[(start - first) * RECORD_SIZE : (stop - first) * RECORD_SIZE]
            return self._decode(within, start, self._dir)
        pieces: list[SampleColumns] = []
        firsts = [s.first for s in self._segments]
        index = bisect_right(firsts, start) - 1
        while start < stop:
            segment = self._segments[index]
            end = min(stop, segment.end)
            data = self._read_records(segment, start, end)
            pieces.append(self._decode(data, start, segment.path))
            start, index = end, index + 1
        if len(pieces) == 1:
            return pieces[0]
        return SampleColumns(*(sum(column, ()) for column in zip(_NONE, *pieces, strict=True)))

    def _read_records(self, segment: _Segment, start: int, end: int) -> bytes:
        """The bytes of seqs ``start``..``end - 1`` of ``segment``. The newest segment is
        read through the append handle (one ``pread``): a live REPORT reads each second's
        records back from it, and opening, seeking and closing a file object for that was
        a tenth of a fleet's watch process."""
        offset, size = (start - segment.first) * RECORD_SIZE, (end - start) * RECORD_SIZE
        if self._fd is not None and segment is self._segments[-1]:
            return os.pread(self._fd, size, offset)
        with open(segment.path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    @staticmethod
    def _decode(data: bytes, first: int, path: Path) -> SampleColumns:
        """Check and decode whole records at C speed: one ``unpack`` into a flat tuple,
        one slice and ``map`` per column, no object per record (reading was a quarter of
        the watch's CPU in a backfill); a damaged stretch is walked record by record to
        name the first bad one."""
        count = len(data) // RECORD_SIZE
        flat = _records(count).unpack(data)
        seqs, kinds = flat[0::5], tuple(map(_METRICS.get, flat[2::5]))
        if (
            seqs != tuple(range(first, first + count))
            or list(map(zlib.crc32, _bodies(count).unpack(data))) != list(flat[4::5])
            or None in kinds
        ):
            History._damaged(data, first, path)
        return SampleColumns(seqs, flat[1::5], kinds, flat[3::5])  # type: ignore[arg-type]

    @staticmethod
    def _damaged(data: bytes, first: int, path: Path) -> None:
        view = memoryview(data)
        for i, (seq, _timestamp, metric, _raw, check) in enumerate(_FULL.iter_unpack(data)):
            at = i * RECORD_SIZE
            if seq != first + i or zlib.crc32(view[at : at + _RECORD.size]) != check:
                raise HistoryCorruptError(f"{path}: record for seq {first + i} is damaged")
            if metric not in _METRICS:
                raise HistoryCorruptError(f"{path}: seq {seq} has unknown metric {metric}")

    # --- live flow ----------------------------------------------------------------------

    def subscribe(self, listener: Callable[[int, int], None]) -> Callable[[], None]:
        """Call ``listener(first_seq, last_seq)`` after each durable append; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- files --------------------------------------------------------------------------

    def _read_meta(self) -> tuple[int, int, int | None]:
        """(floor, next seq, newest timestamp); a history from before that was kept has none."""
        path = self._dir / "meta"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return _FIRST_SEQ, _FIRST_SEQ, None
        layout = _META if data[:8] == _META_MAGIC else _META_V1
        if len(data) != layout.size + _CRC.size or _CRC.unpack_from(data, layout.size)[0] != (
            zlib.crc32(data[: layout.size])
        ):
            raise HistoryCorruptError(f"{path}: damaged (it is only ever replaced atomically)")
        magic, floor, next_seq, *newest = layout.unpack_from(data)
        if magic not in (_META_MAGIC, _META_V1_MAGIC):
            raise HistoryCorruptError(f"{path}: not a watchsim history ({magic!r})")
        timestamp = newest[0] if newest else _NO_TIMESTAMP
        return floor, next_seq, None if timestamp == _NO_TIMESTAMP else timestamp

    def _write_meta(self) -> None:
        newest = _NO_TIMESTAMP if self._newest_timestamp is None else self._newest_timestamp
        body = _META.pack(_META_MAGIC, self._floor, self._next, newest)
        tmp, path = self._dir / "meta.tmp", self._dir / "meta"
        with open(tmp, "wb") as f:
            f.write(body + _CRC.pack(zlib.crc32(body)))
            f.flush()
            self._fsync(f.fileno())
        os.replace(tmp, path)
        self._fsync_dir(self._dir)

    def _load_segments(self) -> list[_Segment]:
        segments = []
        for path in sorted(self._dir.glob("seg-*.log")):
            try:
                first = int(path.stem.removeprefix("seg-"))
            except ValueError:
                raise HistoryCorruptError(f"{path}: unexpected file name") from None
            size = path.stat().st_size
            segments.append(_Segment(first, size // RECORD_SIZE, path))
        if not segments:
            return segments
        *older, newest = segments
        self._repair_tail(newest)
        for a, b in itertools.pairwise(segments):
            if a.path.stat().st_size != a.count * RECORD_SIZE or a.end != b.first:
                raise HistoryCorruptError(f"{a.path}: does not end where {b.path.name} starts")
        if newest.count == 0:
            newest.path.unlink()
            _fsync_dir(self._dir)
            return older
        return segments

    def _repair_tail(self, segment: _Segment) -> None:
        """Cut the newest segment at its first torn or garbled record (a crash mid-write)."""
        with open(segment.path, "r+b") as f:
            data = f.read()
            valid = 0
            view = memoryview(data)
            for i, (seq, _ts, metric, _raw, check) in enumerate(
                _FULL.iter_unpack(data[: segment.count * RECORD_SIZE])
            ):
                at = i * RECORD_SIZE
                ok = seq == segment.first + i and metric in _METRICS
                if not ok or zlib.crc32(view[at : at + _RECORD.size]) != check:
                    break
                valid += 1
            view.release()
            if valid * RECORD_SIZE != len(data):
                f.truncate(valid * RECORD_SIZE)
                f.flush()
                os.fsync(f.fileno())
        segment.count = valid

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self._close_fd()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
