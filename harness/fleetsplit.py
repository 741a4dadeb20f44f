"""An agent fleet spread over worker processes, each with an event loop and a GIL of its own.

The agents of one process share its event loop, which one core runs at most; ``K``
workers (``phoneagent fleet --processes K``) each run the agents of every K-th watch
(``--part I/K``, ``AgentFleetConfig.part``). This parent starts them, is ready once
every worker is, passes SIGTERM/SIGINT on, and merges what they wrote into the one
``agents.json`` and ``result.json`` a single process writes (latency from the merged
histograms, memory and CPU summed). A worker dies with the parent (``PR_SET_PDEATHSIG``),
so a parent killed with SIGKILL leaves no agent behind holding a store.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from harness.fleet import (
    AGENTS_FILE,
    RESULT_FILE,
    FleetError,
    IntervalHistograms,
    Latency,
    over_time,
    part_name,
    write_json,
)

READY: Final = "agent fleet ready: "
_PR_SET_PDEATHSIG: Final = 1
_SUMMED: Final = ("count", "peak_rss_mb", "base_rss_mb", "cpu_s", "stored", "uploaded")


def _die_with_parent(parent: int) -> None:
    """In the worker before exec: SIGKILL when the parent goes (Linux), and never outlive
    a parent that went before this was set."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


class Workers:
    """``await start()`` (every worker ready), ``await stop()``, then ``result()``."""

    def __init__(self, command: Sequence[str], processes: int, directory: Path) -> None:
        self._command = list(command)
        self.processes = processes
        self.directory = directory
        self._workers: list[asyncio.subprocess.Process] = []
        self._drains: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        parent = os.getpid()
        for index in range(self.processes):
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "phoneagent",
                *self._command,
                "--part",
                f"{index}/{self.processes}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                preexec_fn=lambda: _die_with_parent(parent),
            )
            self._workers.append(worker)
        await asyncio.gather(*(self._ready(index, w) for index, w in enumerate(self._workers)))

    async def _ready(self, index: int, worker: asyncio.subprocess.Process) -> None:
        assert worker.stdout is not None
        while True:
            line = await worker.stdout.readline()
            if not line:
                code = await worker.wait()
                raise FleetError(f"agent fleet worker {index} exited ({code}) before it was ready")
            if line.decode().startswith(READY):
                break
        self._drains.append(asyncio.create_task(_drain(worker.stdout)))

    async def wait_any(self) -> None:
        """Until some worker exits (an error: they run until stopped)."""
        await asyncio.wait(
            [asyncio.ensure_future(w.wait()) for w in self._workers],
            return_when=asyncio.FIRST_COMPLETED,
        )

    async def stop(self) -> None:
        for worker in self._workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(w.wait() for w in self._workers))
        await asyncio.gather(*self._drains)
        failed = [i for i, code in enumerate(codes) if code != 0]
        if failed:
            raise FleetError(
                f"agent fleet workers {failed} exited with {[codes[i] for i in failed]}"
            )

    def merge_agents(self) -> None:
        agents: list[dict[str, Any]] = []
        for part in self._parts(AGENTS_FILE):
            agents.extend(part["agents"])
        agents.sort(key=lambda a: str(a["watch"]))
        write_json(self.directory / AGENTS_FILE, {"agents": agents})

    def merge_results(self) -> dict[str, Any]:
        parts = self._parts(RESULT_FILE)
        result: dict[str, Any] = {key: round(sum(p[key] for p in parts), 2) for key in _SUMMED}
        count = max(1, result["count"])
        result["processes"] = len(parts)
        result["wall_s"] = max(p["wall_s"] for p in parts)
        rss = result["peak_rss_mb"] - result["base_rss_mb"]
        result["rss_per_agent_mb"] = round(rss / count, 2)
        result["cpu_per_agent_s"] = round(result["cpu_s"] / count, 3)
        for key in ("radio_reopened", "radio_failed"):
            result[key] = sum(p[key] for p in parts)
        if all("histograms" in p for p in parts):
            latency: dict[str, Any] = {"since_wall": max(p["latency"]["since_wall"] for p in parts)}
            for name in ("stored", "acked"):
                merged = Counter[str]()
                for p in parts:
                    merged.update(p["histograms"][name])
                latency[name] = Latency.percentiles(Latency.dense(dict(merged)))
            latency["over_time"] = over_time(_merged([p["interval_histograms"] for p in parts]))
            result["latency"] = latency
        write_json(self.directory / RESULT_FILE, result)
        return result

    def _parts(self, name: str) -> list[dict[str, Any]]:
        parts = []
        for index in range(self.processes):
            path = self.directory / part_name(name, (index, self.processes))
            parts.append(json.loads(path.read_text()))
        return parts


def _merged(parts: list[IntervalHistograms]) -> IntervalHistograms:
    """The parts' histograms of each interval added up (the intervals are of wall time)."""
    merged: dict[str, dict[str, Counter[str]]] = {}
    for part in parts:
        for name, intervals in part.items():
            for at, histogram in intervals.items():
                merged.setdefault(name, {}).setdefault(at, Counter()).update(histogram)
    return {
        name: {at: dict(histogram) for at, histogram in intervals.items()}
        for name, intervals in merged.items()
    }


async def _drain(stream: asyncio.StreamReader) -> None:
    """A worker's further output (its own stop report) is not needed: read and drop it."""
    while await stream.readline():
        pass
