"""The newest samples of each device, kept in memory for the live uploader.

Live, an agent stores a few samples a second and its uploader reads them back a moment
later: that read (one statement with the upload policy's state, per device per second) was
a sixth of an agent fleet worker's time. ``Store.upload_chunk`` answers it from here as
long as nothing but this store's own sample writes happened since a read of the device
that reached its newest sample: anything else moves ``Store.version`` (an erasure, a
consent, any other process's commit) and empties it, and the next read is SQL again.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter, lt
from typing import TYPE_CHECKING

from protocol.metrics import Sample

if TYPE_CHECKING:
    from phoneagent.store.ledger import UploadConsents

# Samples kept per device at most: an uploader further behind reads SQL, as it did.
MAX_KEPT = 10_000
# The policy state a read is decided on: (cloud sync subject, crossing subject).
Subjects = tuple[str, str]
UploadColumns = tuple[list[int], list[int], list[int], list[int]]
_SEQ = attrgetter("seq")


@dataclass(slots=True)
class _Tail:
    """Every sample the store holds of one device with seq > ``after``, in seq order."""

    after: int
    samples: list[Sample]


class RecentSamples:
    """What the store holds past each device's last read to the end, and the policy state
    that read returned; valid at one ``Store.version``. The store calls every method
    under its lock, so each change here is atomic with the statement it mirrors."""

    def __init__(self) -> None:
        self._version: tuple[int, int] | None = None
        self._tails: dict[str, _Tail] = {}
        self._consents: dict[Subjects, UploadConsents | None] = {}

    def at_version(self, version: tuple[int, int]) -> None:
        """Forget everything unless the store is still at the version it was kept at."""
        if version != self._version:
            self._tails.clear()
            self._consents.clear()
            self._version = version

    def read(
        self, device: str, after: int, limit: int, subjects: Subjects
    ) -> tuple[UploadConsents | None, UploadColumns] | None:
        """Up to ``limit`` samples of ``device`` with seq > ``after`` and the policy state,
        as ``Store.upload_chunk`` reads them; None when not kept. Samples up to ``after``
        are dropped: the caller has them acknowledged, and an older ``after`` reads SQL."""
        tail = self._tails.get(device)
        if tail is None or after < tail.after or subjects not in self._consents:
            return None
        if after > tail.after:
            del tail.samples[: bisect_right(tail.samples, after, key=_SEQ)]
            tail.after = after
        chosen = tail.samples[:limit]
        columns: UploadColumns = (
            [s.seq for s in chosen],
            [int(s.metric) for s in chosen],
            [s.timestamp for s in chosen],
            [s.raw for s in chosen],
        )
        return self._consents[subjects], columns

    def read_to_end(
        self, device: str, top: int, subjects: Subjects, consents: UploadConsents | None
    ) -> None:
        """A read found no sample of ``device`` past ``top``, with ``consents``."""
        self._tails[device] = _Tail(top, [])
        self._consents[subjects] = consents

    def stored(self, device: str, samples: Sequence[Sample]) -> None:
        """``samples`` were committed for ``device``.

        Kept only when they come after the kept ones, in seq order (a live sync's records):
        then none was stored before, since the store holds nothing past the kept ones. Any
        other batch (a backfill filling a gap, a repeat) forgets the device, and its next
        read is SQL.
        """
        tail = self._tails.get(device)
        if tail is None or not samples:
            return
        last = tail.samples[-1].seq if tail.samples else tail.after
        seqs = [s.seq for s in samples]
        if (
            seqs[0] <= last
            or not all(map(lt, seqs, islice(seqs, 1, None)))
            or len(tail.samples) + len(samples) > MAX_KEPT
        ):
            del self._tails[device]
            return
        tail.samples.extend(samples)

    def forget(self, device: str) -> None:
        """``device``'s samples changed other than by ``stored``."""
        self._tails.pop(device, None)
