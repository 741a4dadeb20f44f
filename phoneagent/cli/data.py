"""``data``: stored samples by device, metric and time range, as a table, JSON or CSV.

Every format streams: rows are written as the store reads them, a page at a time, so
the first line appears at once and memory stays one page whatever the range (a week of
one watch is 600k rows; building the whole table first printed nothing for minutes).
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.cli.params import ADDRESS, measurement_window
from phoneagent.store import HISTORY, LIVE_PER_MINUTE, StoredSample
from protocol.address import Address
from protocol.metrics import Metric

_METRICS = [m.key for m in Metric]


# source: "history", or "live per minute" for a watch that keeps none (docs/infinitime.md).
COLUMNS = ("device", "seq", "time", "metric", "value", "unit", "source")
# Fixed widths (a MAC address, an ISO time with offset, the longest metric key): a
# streamed table cannot measure its rows first. ">" right-aligns numbers.
_TABLE_WIDTHS = ((17, "<"), (10, ">"), (25, "<"), (16, "<"), (8, ">"), (5, "<"), (0, "<"))


Row = tuple[str, int, str, str, float, str, str]


def rows_of(samples: Iterable[StoredSample], live: Collection[str] = frozenset()) -> Iterator[Row]:
    """One row per sample, in ``COLUMNS`` order (tuples: a dict per row cost a third);
    ``live``: the devices whose samples are live-derived."""
    names = {m: (m.key, m.unit) for m in Metric}
    for s in samples:
        key, unit = names[s.metric]
        when = datetime.fromtimestamp(s.timestamp, UTC).isoformat(timespec="seconds")
        source = LIVE_PER_MINUTE if s.device in live else HISTORY
        yield (s.device, s.seq, when, key, s.value, unit, source)


def _table_line(values: Iterable[object]) -> str:
    cells = (f"{v!s:{a}{w}}" for v, (w, a) in zip(values, _TABLE_WIDTHS, strict=True))
    return "  ".join(cells).rstrip() + "\n"


def write_table(rows: Iterable[Row], out: TextIO) -> None:
    """Aligned columns, a header line first and the count last."""
    out.write(_table_line(COLUMNS))
    count = 0
    for row in rows:
        out.write(_table_line(row))
        count += 1
    out.write(f"{count} sample(s)\n")


def write_json(rows: Iterable[Row], out: TextIO) -> None:
    """One JSON array, an object per line."""
    opening = "[\n  "
    for row in rows:
        out.write(opening + json.dumps(dict(zip(COLUMNS, row, strict=True))))
        opening = ",\n  "
    out.write("[]\n" if opening.startswith("[") else "\n]\n")


def write_csv(rows: Iterable[Row], out: TextIO) -> None:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(rows)  # consumes the iterator row by row


WRITERS: dict[str, Callable[[Iterable[Row], TextIO], None]] = {
    "table": write_table,
    "json": write_json,
    "csv": write_csv,
}


@click.command("data")
@click.option("--device", type=ADDRESS, help="Only this watch (address).")
@click.option("--metric", type=click.Choice(_METRICS), help="Only this metric.")
@measurement_window
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(WRITERS)),
    default="table",
    show_default=True,
    help="A table for reading, JSON or CSV for programs; every format streams, rows as "
    "they are read.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@pass_agent
def data_command(
    agent: AgentContext,
    device: Address | None,
    metric: str | None,
    since: int | None,
    until: int | None,
    limit: int | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Query stored samples (oldest first)."""
    chosen = None if metric is None else Metric[metric.upper()]
    with agent.open_store() as store:
        found = store.iter_samples(device, chosen, since, until)
        live = {d.address for d in store.list_devices() if d.live_derived}
        rows = rows_of(itertools.islice(found, limit), live)
        # A reader that leaves early (``| head``) is the command group's (exit 0).
        WRITERS["json" if as_json else fmt](rows, sys.stdout)
        sys.stdout.flush()


COMMANDS = (data_command,)
