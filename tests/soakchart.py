"""A soak run over time, drawn beside its table: the records each watch's agent has
stored, the records the receiver holds, and every fault as a vertical line labelled by its
kind. Sampled while the run goes (a point a fault made unreadable is left out: a gap),
written by ``harness.chart`` as ``soak.html`` and ``soak.png``. Faults and samples are
timed from when sampling began; nothing here paces or decides the run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from harness import chart
from phoneagent.waiting import sleep_unless

# Records stored per watch and at the receiver; None: not readable at that moment.
Reading = tuple[Mapping[str, int | None], int | None]


@dataclass
class SoakTimeline:
    """What a soak saw, in seconds since ``began`` (monotonic)."""

    began: float = field(default_factory=time.monotonic)
    at: list[float] = field(default_factory=list)
    stored: dict[str, list[int | None]] = field(default_factory=dict)  # per watch
    received: list[int | None] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)

    def fault(self, kind: str) -> None:
        self.faults.append((time.monotonic() - self.began, kind))

    def record(self, reading: Reading) -> None:
        stored, received = reading
        before = len(self.at)
        self.at.append(time.monotonic() - self.began)
        for watch, count in stored.items():
            self.stored.setdefault(watch, [None] * before).append(count)
        for counts in self.stored.values():
            counts.extend([None] * (len(self.at) - len(counts)))
        self.received.append(received)

    def figure(self) -> go.Figure:
        per_watch = [chart.Series(w, self.at, counts) for w, counts in sorted(self.stored.items())]
        return chart.over_time(
            [
                chart.Panel("Records stored, per watch", per_watch),
                chart.Panel(
                    "Records at the receiver", [chart.Series("receiver", self.at, self.received)]
                ),
            ],
            "seconds of the run",
            self.faults,
        )

    async def write(self, directory: Path, say: Callable[[str], None]) -> None:
        """``soak.html`` (zoomable, offline) and ``soak.png`` in ``directory``, if the run
        got as far as sampling (a run that failed is the one most worth looking at)."""
        if not self.at:
            return
        figure = self.figure()
        await asyncio.to_thread(chart.write_html, figure, directory / "soak.html")
        await chart.write_png(figure, directory / "soak.png")
        say(f"soak: chart {directory / 'soak.png'} ({directory / 'soak.html'} to zoom)")


@asynccontextmanager
async def sampled(
    timeline: SoakTimeline, read: Callable[[], Reading], every: float
) -> AsyncIterator[None]:
    """Within: a reading every ``every`` seconds (and one at the end), timed from entry."""
    stop = asyncio.Event()

    async def sample() -> None:
        while True:
            timeline.record(await asyncio.to_thread(read))
            if stop.is_set():
                return
            await sleep_unless(stop, every)

    timeline.began = time.monotonic()
    sampling = asyncio.create_task(sample())
    try:
        yield
    finally:
        stop.set()
        await sampling


def received_count(db: Path) -> int | None:
    """Rows in the receiver's database, read-only; None before it has a table."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:  # no table yet
        return None
    finally:
        conn.close()
