"""One REPORT as the agent receives it: batches decoded in groups, every seq accounted for.

The engine (``phoneagent.sync.engine``) owns the session; this module owns rule 3 of its
exactly-once argument: each seq of a REPORT's range ends up a sample, a gap the watch
reported, a seq it never assigned, or a dropped record of an opted-out metric.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass

from phoneagent.store import MissingSeqs
from phoneagent.sync.watch_client import WatchProtocolError
from protocol import history
from protocol.errors import ProtocolError
from protocol.metrics import Metric, Sample, SampleRun

# Reasons for MissingSeqs: why a seq will never be stored as a sample.
DROPPED = "dropped on watch"  # the watch reported the loss (full history, wiped, freed)
NOT_ASSIGNED = "not assigned"  # the watch skipped the seq: no sample ever had it
OPTED_OUT = "opted out"  # a record of an opted-out metric, discarded before storage


@dataclass(frozen=True, slots=True)
class Group:
    """What one commit stores: samples and missing seqs in seq order. The samples of a
    group made of plain runs alone (a backfill's) are one ``SampleRun``."""

    samples: Sequence[Sample]
    gaps: list[MissingSeqs]
    # Entries at seqs already accounted for (a batch repeated, or late after its range
    # was closed): never stored twice nor over what is stored, only counted and logged.
    repeated: int = 0


class ReportStream:
    """Batches of one REPORT, decoded in groups; tracks which seqs are accounted for.

    Batches may arrive out of order (BlueZ spreads notifications over its EATT bearers,
    docs/bluez.md): each group is put in seq order, and a batch that starts beyond a hole
    waits for the hole to fill. Only the REPORT's end (``final_seq``) closes holes.
    """

    def __init__(self, from_seq: int, opted_out: frozenset[Metric], group_samples: int) -> None:
        self.expected = from_seq
        self.opted_out = opted_out  # replaced when consent changes mid-report
        self._inbox: list[bytes] = []
        self._inbox_samples = 0
        self._group_samples = group_samples
        self._held: list[_Batch] = []
        self.hole_since: float | None = None  # monotonic time a batch began waiting for a hole
        self.ready = asyncio.Event()
        self.arrived = asyncio.Event()
        self._repeated = 0  # in the group being decoded (``Group.repeated``)

    def add(self, raw: bytes) -> None:
        self._inbox.append(raw)
        self.arrived.set()
        self._inbox_samples += _estimate(raw)
        if self._inbox_samples >= self._group_samples:
            self.ready.set()

    def take_group(self) -> Group:
        """Decode the oldest batches received, about one group's worth.

        When the radio outpaces the disk the rest waits as received bytes (6 per sample)
        rather than as decoded samples, so memory stays bounded by a group.
        """
        taken = estimate = 0
        while taken < len(self._inbox) and estimate < self._group_samples:
            estimate += _estimate(self._inbox[taken])
            taken += 1
        inbox = self._inbox[:taken]
        del self._inbox[:taken]
        self._inbox_samples -= estimate
        if self._inbox_samples < self._group_samples:
            self.ready.clear()
        return self._decode(inbox)

    def take(self, final_seq: int | None = None) -> Group:
        """Decode everything received; ``final_seq`` closes the range at the REPORT's end."""
        inbox, self._inbox, self._inbox_samples = self._inbox, [], 0
        self.ready.clear()
        return self._decode(inbox, final_seq)

    def _decode(self, inbox: list[bytes], final_seq: int | None = None) -> Group:
        batches = self._held
        for raw in inbox:
            batches.append(_decode_batch(raw))
        batches.sort(key=_first_seq)
        samples = _GroupSamples()
        gaps: list[MissingSeqs] = []
        for index, batch in enumerate(batches):
            first_seq = _first_seq(batch)
            if first_seq > self.expected and final_seq is None:
                self._held = batches[index:]  # the hole's batches are still on their way
                if self.hole_since is None:
                    self.hole_since = time.monotonic()
                break
            if (
                first_seq == self.expected
                and isinstance(batch, SampleRun)
                and self.opted_out.isdisjoint(batch.metrics)
            ):
                samples.add_run(batch)
                self.expected = batch.last_seq + 1
                continue
            entries = tuple(batch) if isinstance(batch, SampleRun) else batch.entries
            contiguous = batch.last_seq - first_seq + 1 == len(entries)
            if first_seq == self.expected and contiguous and self._plain(entries):
                samples.extend(entries)  # type: ignore[arg-type]  # _plain checked: all Samples
                self.expected = batch.last_seq + 1
                continue
            for entry in entries:
                self._account(entry, samples, gaps)
        else:
            self._held = []
            self.hole_since = None
        if final_seq is not None and final_seq >= self.expected:
            _add_gap(gaps, self.expected, final_seq, NOT_ASSIGNED)
            self.expected = final_seq + 1
        repeated, self._repeated = self._repeated, 0
        return Group(samples.result(), gaps, repeated)

    def _plain(self, entries: tuple[history.Entry, ...]) -> bool:
        """Samples only, none of an opted-out metric: checked with C-level maps, as
        every batch of a backfill is (a generator here was a Python frame per sample)."""
        return all(map(isinstance, entries, itertools.repeat(Sample))) and (
            self.opted_out.isdisjoint(map(_METRIC, entries))
        )

    def _account(
        self, entry: history.Entry, samples: _GroupSamples, gaps: list[MissingSeqs]
    ) -> None:
        if isinstance(entry, history.Gap):
            first, last = entry.first_seq, entry.last_seq
        else:
            first = last = entry.seq
        if last < self.expected:  # already accounted for: a duplicate, or a regression
            self._repeated += 1
            return
        first = max(first, self.expected)  # a gap reaching into accounted seqs: its rest
        if first > self.expected:
            _add_gap(gaps, self.expected, first - 1, NOT_ASSIGNED)
        if isinstance(entry, history.Gap):
            _add_gap(gaps, first, last, DROPPED)
        elif entry.metric in self.opted_out:
            _add_gap(gaps, first, last, OPTED_OUT)
        else:
            samples.append(entry)
        self.expected = last + 1


_METRIC = operator.attrgetter("metric")
# A batch as decoded: a plain run (every batch of a backfill) or any other (its entries).
_Batch = SampleRun | history.HistoryBatch


def _decode_batch(raw: bytes) -> _Batch:
    try:
        return history.decode_run(raw) or history.decode_batch(raw)
    except ProtocolError as error:
        raise WatchProtocolError(str(error)) from error


def _first_seq(batch: _Batch) -> int:
    if isinstance(batch, SampleRun):
        return batch.first_seq
    first = batch.entries[0]
    return first.first_seq if isinstance(first, history.Gap) else first.seq


class _GroupSamples:
    """The samples of the group being decoded, in seq order: columns while each batch
    continues a run of plain runs (a backfill's groups, which the store writes without
    a Sample per record), a list of Samples from the first batch that does not."""

    def __init__(self) -> None:
        self._run: tuple[int, list[int], list[Metric], list[int]] | None = None
        self._list: list[Sample] | None = None

    def add_run(self, run: SampleRun) -> None:
        if self._list is not None:
            self.extend(run)
        elif self._run is None:
            self._run = (run.first_seq, [*run.timestamps], [*run.metrics], [*run.raws])
        elif run.first_seq != self._run[0] + len(self._run[3]):  # not where it ends
            self.extend(run)
        else:
            _, stamps, metrics, raws = self._run
            stamps += run.timestamps
            metrics += run.metrics
            raws += run.raws

    def append(self, sample: Sample) -> None:
        self._as_list().append(sample)

    def extend(self, samples: Sequence[Sample]) -> None:
        self._as_list().extend(samples)

    def result(self) -> Sequence[Sample]:
        if self._list is not None:
            return self._list
        if self._run is None:
            return []
        return SampleRun(*self._run)

    def _as_list(self) -> list[Sample]:
        if self._list is None:
            self._list = [] if self._run is None else list(SampleRun(*self._run))
            self._run = None
        return self._list


def _estimate(raw: bytes) -> int:
    """Samples in a received batch, near enough to size groups (compact entries: 6 bytes)."""
    return len(raw) // 6


def _add_gap(gaps: list[MissingSeqs], first: int, last: int, reason: str) -> None:
    """Append, merging with the previous gap when it has the same reason and touches."""
    if gaps and gaps[-1].reason == reason and gaps[-1].last_seq + 1 == first:
        gaps[-1] = MissingSeqs(gaps[-1].first_seq, last, reason)
    else:
        gaps.append(MissingSeqs(first, last, reason))
