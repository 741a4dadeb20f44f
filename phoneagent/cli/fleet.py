"""``fleet``: one agent per watch of a ``watchsim fleet``, all in this process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from phoneagent.cli.context import EXIT_USAGE, AgentContext, CliError, pass_agent
from phoneagent.fleet import AgentFleet, AgentFleetConfig, FleetError, read_manifest
from phoneagent.paths import data_dir
from phoneagent.upload import EndpointError


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
@pass_agent
def fleet_command(
    agent: AgentContext,
    manifest_path: Path,
    count: int | None,
    directory: Path | None,
    cloud_config: Path | None,
    region: str,
    latency_after: float | None,
) -> None:
    """Run one agent (own store, account, pseudonym, bond, uploader) per fleet watch."""
    try:
        manifest = read_manifest(manifest_path)
        fleet = AgentFleet(
            AgentFleetConfig(
                directory=directory or data_dir().with_name("phoneagent-fleet"),
                manifest=manifest,
                transport=agent.transport_option or f"loopback:{manifest.air}",
                cloud_config=cloud_config,
                region=region,
                count=count,
                latency_after_s=latency_after,
            )
        )
    except (FleetError, EndpointError) as error:
        raise CliError(str(error), EXIT_USAGE) from None

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await fleet.start()
            click.echo(
                f"agent fleet ready: {len(fleet.agents)} agents paired and syncing; "
                f"identities in {fleet.config.directory / 'agents.json'}"
            )
            await fleet.run(stop)
        finally:
            await fleet.close()

    asyncio.run(work())
    result = fleet.write_result()
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
