"""What every benchmark shares: one output style, ``--quick``, the machine's load.

Each benchmark prints its figure next to a baseline measured in the same run and the
ratio ours / baseline of the two rates (higher is better, 1.0 = no cost), so a reader
can compare runs made under different machine load by the ratio alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # ``tests.mosquitto`` is shared with the system tests


@dataclass(frozen=True, slots=True)
class Rate:
    """A throughput: ``value`` ``unit`` (per second) measured by ``label``."""

    label: str
    value: float
    unit: str


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with ``--quick`` (a short run to check the benchmark works)."""
    text = doc or ""
    result = argparse.ArgumentParser(
        description=text.splitlines()[0] if text else None,
        epilog="Figures are CPU figures of this machine: compare ratios, not rates.",
    )
    result.add_argument("--quick", action="store_true", help="a short run, seconds not minutes")
    return result


def header(title: str, detail: str = "") -> None:
    """The benchmark's name and the load it ran under (the machine is shared)."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {title}  [load {load}, {os.cpu_count()} cores]")
    if detail:
        print(f"   {detail}")


def compare(ours: Rate, *baselines: Rate, target: float | None = None) -> float:
    """Print ``ours`` and each baseline; return (and print) the ratio to the first."""
    width = max(len(r.label) for r in (ours, *baselines))
    print(f"   {ours.label:<{width}}  {ours.value:>12,.0f} {ours.unit}/s")
    ratios = []
    for baseline in baselines:
        ratio = ours.value / baseline.value
        ratios.append(ratio)
        print(
            f"   {baseline.label:<{width}}  {baseline.value:>12,.0f} {baseline.unit}/s"
            f"   ratio {ratio:.3f}"
        )
    if target is not None:
        verdict = "met" if ratios[0] >= target else "NOT met"
        print(f"   target: ratio >= {target} against {baselines[0].label}: {verdict}")
    return ratios[0]


def limit(label: str, value: float, unit: str, ceiling: float) -> None:
    """A figure with an absolute target (seconds, MB) rather than a baseline."""
    verdict = "met" if value <= ceiling else "NOT met"
    print(f"   {label}: {value:,.2f} {unit} (target <= {ceiling:g} {unit}: {verdict})")


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def interleaved(
    rounds: int, benches: dict[str, Callable[[], Awaitable[float]]]
) -> dict[str, float]:
    """Median rate of each bench over ``rounds``, alternating them so load drifts hit all."""
    runs: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(rounds):
        for name, bench in benches.items():
            runs[name].append(await bench())
    return {name: statistics.median(rates) for name, rates in runs.items()}
