"""``phoneagent fleet``'s work: one agent per watch, in this process or spread over workers.

The command line (``phoneagent.cli.fleet``) parses the options and prints the result;
this starts the agents (``harness.fleet``) or the workers that run them
(``harness.fleetsplit``), runs them until SIGINT/SIGTERM and returns what they measured.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.fleet import AgentFleet, AgentFleetConfig, FleetError, read_manifest
from harness.fleetsplit import READY, Workers
from phoneagent.upload import EndpointError
from phoneagent.waiting import first_of


def default_workers() -> int:
    """Worker processes when ``--processes`` is not given: one per core but one, which
    the watch fleet's event loop (and the air on it) takes, so that each busy loop has a
    core of its own. On 2 cores, 1,000 agents in one worker beside the watch process used
    0.95 milli-cores per pair in all, where two workers used 1.07-1.18, and kept up as
    well (docs/scaling.md, step 23). ``--processes`` still decides, as for a watch fleet
    on another machine, or on a slower one where the agents need more than a core. The
    cores are those this process may run on (its affinity), not the machine's."""
    return max(1, len(os.sched_getaffinity(0)) - 1)


class FleetConfigError(FleetError):
    """The options name a fleet that cannot start (a usage error)."""


@dataclass(frozen=True)
class FleetOptions:
    """``phoneagent fleet``'s options, as a worker's command line repeats them."""

    manifest_path: Path
    directory: Path
    transport: str | None  # the agent's --transport; None: the manifest's air
    cloud_config: Path | None
    region: str
    count: int | None
    latency_after: float | None
    processes: int | None
    part: tuple[int, int] | None

    def worker_command(self) -> list[str]:
        """The ``phoneagent`` arguments of a worker, before its ``--part``."""
        command = ["fleet", "--watches", str(self.manifest_path), "--dir", str(self.directory)]
        command += ["--region", self.region]
        command += [] if self.count is None else ["--count", str(self.count)]
        command += [] if self.cloud_config is None else ["--cloud", str(self.cloud_config)]
        if self.latency_after is not None:
            command += ["--latency-after", str(self.latency_after)]
        return command if self.transport is None else ["--transport", self.transport, *command]


def run_fleet(options: FleetOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the fleet until SIGINT/SIGTERM; its result (``AgentFleet.result``).

    ``say`` prints the ready line a parent process (``fleetsplit``) waits for.
    """
    try:
        manifest = read_manifest(options.manifest_path)
        fleet = AgentFleet(
            AgentFleetConfig(
                directory=options.directory,
                manifest=manifest,
                transport=options.transport or f"loopback:{manifest.air}",
                cloud_config=options.cloud_config,
                region=options.region,
                count=options.count,
                latency_after_s=options.latency_after,
                part=options.part,
            )
        )
    except (FleetError, EndpointError) as error:
        raise FleetConfigError(str(error)) from None
    workers = min(options.processes or default_workers(), len(fleet.agents))
    if options.part is None and workers > 1:
        split = Workers(options.worker_command(), workers, options.directory)
        return _run_workers(split, len(fleet.agents), say)

    async def work() -> None:
        stop = _stop_on_signals()
        try:
            await fleet.start()
            say(
                f"{READY}{len(fleet.agents)} agents paired and syncing; "
                f"identities in {fleet.output('agents.json')}"
            )
            await fleet.run(stop)
        finally:
            await fleet.close()

    asyncio.run(work())
    return fleet.write_result()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _run_workers(workers: Workers, agents: int, say: Callable[[str], None]) -> dict[str, Any]:
    async def work() -> dict[str, Any]:
        stop = _stop_on_signals()
        try:
            starting = asyncio.ensure_future(workers.start())
            await first_of(starting, stop.wait())
            if not stop.is_set():
                starting.result()  # a worker that failed to start says why
                workers.merge_agents()
                say(
                    f"{READY}{agents} agents paired and syncing in {workers.processes} "
                    f"processes; identities in {workers.directory / 'agents.json'}"
                )
                await first_of(stop.wait(), workers.wait_any())
        finally:
            await workers.stop()
        return workers.merge_results()

    return asyncio.run(work())
