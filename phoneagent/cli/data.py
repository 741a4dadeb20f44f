"""``data``: stored samples by device, metric and time range, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from datetime import UTC, datetime

import click

from phoneagent.cli.context import AgentContext, pass_agent
from phoneagent.cli.output import emit
from phoneagent.cli.params import ADDRESS, MOMENT
from protocol.address import Address
from protocol.metrics import Metric

_METRICS = [m.key for m in Metric]


@click.command("data")
@click.option("--device", type=ADDRESS, help="Only this watch (address).")
@click.option("--metric", type=click.Choice(_METRICS), help="Only this metric.")
@click.option(
    "--since", type=MOMENT, help="From this time (ISO 8601, naive = UTC, or Unix seconds)."
)
@click.option("--until", type=MOMENT, help="Before this time.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="A table for reading, JSON or CSV for programs.",
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
        rows = [
            {
                "device": s.device,
                "seq": s.seq,
                "time": datetime.fromtimestamp(s.timestamp, UTC).isoformat(timespec="seconds"),
                "metric": s.metric.key,
                "value": s.value,
                "unit": s.metric.unit,
            }
            for s in itertools.islice(found, limit)
        ]
    if as_json or fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["device"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        columns = ("device", "seq", "time", "metric", "value", "unit")
        emit(rows, columns, f"{len(rows)} sample(s)", False)


COMMANDS = (data_command,)
