"""``fleet``: one agent per watch of a ``watchsim fleet``, in one or several processes.

Only the options and the report are here: the load generator is a harness
(``harness.fleetcommand``), imported when the command runs, never by the agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent
from phoneagent.errors import EXIT_USAGE
from phoneagent.paths import data_dir


def _percentiles(label: str, figures: dict[str, float | int | None]) -> str:
    if not figures["samples"]:
        return f"{label}: no samples"
    return (
        f"{label}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
        f"max {figures['max_ms']} ms over {figures['samples']} samples"
    )


@click.command("fleet")
@click.option(
    "--watches",
    "manifest_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The manifest `watchsim fleet` wrote (FLEET_DIR/fleet.json).",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Only the first COUNT.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dirs (agents/NAME) and keys of every agent [default: DATA_HOME/phoneagent-fleet].",
)
@click.option(
    "--cloud",
    "cloud_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A cloud.toml (docs/upload.md) given to every agent; each then turns cloud sync "
    "on for its own account and uploads. Without it nothing is uploaded.",
)
@click.option("--region", default="eu", show_default=True, help="Every account's home region.")
@click.option(
    "--latency-after",
    type=click.FloatRange(min=0),
    default=None,
    help="Measure end-to-end latency of the samples taken this many seconds after start.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes the agents are spread over, each with its own event loop "
    "[default: one per CPU core but one, which the watch fleet takes; at least one, at "
    "most one per agent].",
)
@click.option("--part", default=None, hidden=True, help="I/K: this is worker I of K.")
@pass_agent
def fleet_command(
    agent: AgentContext,
    manifest_path: Path,
    count: int | None,
    directory: Path | None,
    cloud_config: Path | None,
    region: str,
    latency_after: float | None,
    processes: int | None,
    part: str | None,
) -> None:
    """Run one agent (own store, account, pseudonym, bond, uploader) per fleet watch."""
    from harness.fleet import FleetError
    from harness.fleetcommand import FleetConfigError, FleetOptions, run_fleet

    options = FleetOptions(
        manifest_path=manifest_path,
        directory=directory or data_dir().with_name("phoneagent-fleet"),
        transport=agent.transport_option,
        cloud_config=cloud_config,
        region=region,
        count=count,
        latency_after=latency_after,
        processes=processes,
        part=_part(part),
    )
    try:
        result = run_fleet(options, click.echo)
    except FleetConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except FleetError as error:
        raise CliError(str(error)) from None
    _report(result)


def _part(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, _, of = text.partition("/")
    try:
        part = int(index), int(of)
    except ValueError:
        raise CliError(f"--part must be I/K, got {text!r}", EXIT_USAGE) from None
    if not 0 <= part[0] < part[1]:
        raise CliError(f"--part must be I/K with 0 <= I < K, got {text!r}", EXIT_USAGE)
    return part


def _report(result: dict[str, Any]) -> None:
    click.echo(
        f"agent fleet stopped: {result['count']} agents, {result['wall_s']:.0f} s; "
        f"peak RSS {result['peak_rss_mb']} MB ({result['base_rss_mb']} MB before the agents, "
        f"{result['rss_per_agent_mb']} MB per agent); CPU {result['cpu_s']} s "
        f"({result['cpu_per_agent_s']} s per agent); stored {result['stored']}, "
        f"uploaded {result['uploaded']}"
    )
    if "latency" in result:
        latency = result["latency"]
        click.echo(_percentiles("latency sample -> stored", latency["stored"]))
        click.echo(_percentiles("latency sample -> broker ack", latency["acked"]))


COMMANDS = (fleet_command,)
