"""The metrics the watch measures and how a sample's value travels as an integer.

History records carry integers so that a value survives watch -> agent -> cloud
bit-exactly; ``scale`` converts to the physical unit (value = raw / scale).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterator, Sequence
from typing import NamedTuple, cast, overload


class Metric(enum.IntEnum):
    HEART_RATE = 1  # beats per minute
    STEPS = 2  # steps counted during the sample interval (not cumulative)
    SPO2 = 3  # percent oxygen saturation
    SKIN_TEMPERATURE = 4  # degrees Celsius

    @property
    def unit(self) -> str:
        return _UNITS[self]

    @property
    def scale(self) -> int:
        return _SCALES[self]

    @property
    def key(self) -> str:
        """Stable lower-case name used in configuration, CLI options and exports."""
        return self.name.lower()


_UNITS = {
    Metric.HEART_RATE: "bpm",
    Metric.STEPS: "steps",
    Metric.SPO2: "%",
    Metric.SKIN_TEMPERATURE: "degC",
}
_SCALES = {
    Metric.HEART_RATE: 1,
    Metric.STEPS: 1,
    Metric.SPO2: 10,
    Metric.SKIN_TEMPERATURE: 100,
}


class Sample(NamedTuple):
    """One measured value as the watch records it and the agent stores it.

    A named tuple rather than a frozen dataclass: a 7-day backfill builds one per record
    on each side (about 1.2 million), and a frozen dataclass's ``__init__`` costs four
    times as much. Immutable and hashable either way.
    """

    seq: int  # per-watch, strictly increasing, never reused (survives reboots)
    timestamp: int  # watch clock, seconds since the Unix epoch (UTC)
    metric: Metric
    raw: int  # value * metric.scale, rounded

    @property
    def value(self) -> float:
        return self.raw / self.metric.scale


_new_sample = functools.partial(tuple.__new__, Sample)


class SampleColumns(NamedTuple):
    """Samples as four equal-length columns: what the bulk paths of a backfill (the
    watch's history read, the packer) pass around instead of a tuple per sample."""

    seqs: Sequence[int]
    timestamps: Sequence[int]
    metrics: Sequence[Metric]
    raws: Sequence[int]

    def slice(self, start: int, end: int | None = None) -> SampleColumns:
        return SampleColumns(
            self.seqs[start:end],
            self.timestamps[start:end],
            self.metrics[start:end],
            self.raws[start:end],
        )

    def samples(self) -> list[Sample]:
        """As Samples, built without a Python frame per sample (``tuple.__new__`` mapped
        in C, as ``Sample._make`` does per call): a backfill builds about 1.2 million.
        The columns must be checked already."""
        return cast(list[Sample], list(map(_new_sample, zip(*self, strict=True))))


class SampleRun(Sequence[Sample]):
    """Samples at consecutive seqs from ``first_seq``, kept as three columns: the groups
    of a backfill (every batch a REPORT sends is such a run). Seen as a sequence of
    Samples, each built when it is read; the store writes the columns without building
    any (about 1.2 million Samples a 7-day backfill no longer makes)."""

    __slots__ = ("first_seq", "metrics", "raws", "timestamps")

    def __init__(
        self,
        first_seq: int,
        timestamps: Sequence[int],
        metrics: Sequence[Metric],
        raws: Sequence[int],
    ) -> None:
        if not len(timestamps) == len(metrics) == len(raws):
            raise ValueError("a SampleRun's columns must be equally long")
        self.first_seq = first_seq
        self.timestamps = timestamps
        self.metrics = metrics
        self.raws = raws

    @property
    def seqs(self) -> range:
        return range(self.first_seq, self.first_seq + len(self.raws))

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.raws) - 1

    def __len__(self) -> int:
        return len(self.raws)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | Sequence[Sample]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self.raws))
            if step != 1:
                return list(self)[index]
            return SampleRun(
                self.first_seq + start,
                self.timestamps[start:stop],
                self.metrics[start:stop],
                self.raws[start:stop],
            )
        position = range(len(self.raws))[index]  # IndexError and negative indices as a list's
        return Sample(
            self.first_seq + position,
            self.timestamps[position],
            self.metrics[position],
            self.raws[position],
        )

    def __iter__(self) -> Iterator[Sample]:
        return map(
            _new_sample, zip(self.seqs, self.timestamps, self.metrics, self.raws, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleRun):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal by value, as a list is

    def __repr__(self) -> str:
        return f"SampleRun(seqs {self.first_seq}..{self.last_seq})"
