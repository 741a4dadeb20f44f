"""The workers of a split agent fleet write parts; the parent merges them into one result.
And how many workers there are unless ``--processes`` says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.fleet import RESULT_FILE, Latency, Timeline, part_name, write_json
from harness.fleetcommand import default_workers
from harness.fleetsplit import Workers


def _part(tmp_path: Path, index: int, stored_ms: list[int]) -> None:
    latency = Latency(Timeline(0.0, 1.0), 0.0)
    for ms in stored_ms:
        latency.stored[ms] += 1
    result = {
        "count": 2,
        "wall_s": 10.0 + index,
        "peak_rss_mb": 100.0,
        "base_rss_mb": 90.0,
        "cpu_s": 3.0,
        "stored": len(stored_ms),
        "uploaded": 0,
        "radio_reopened": index,
        "radio_failed": 0,
        "latency": latency.summary(),
        "histograms": latency.histograms(),
        "interval_histograms": latency.interval_histograms(),
    }
    write_json(tmp_path / part_name(RESULT_FILE, (index, 2)), result)


def test_parts_merge_into_one_result_with_percentiles_of_all_samples(tmp_path: Path) -> None:
    _part(tmp_path, 0, [10] * 98)
    _part(tmp_path, 1, [20, 900])
    result = Workers([], 2, tmp_path).merge_results()

    assert (result["count"], result["processes"], result["stored"]) == (4, 2, 100)
    assert (result["wall_s"], result["radio_reopened"], result["cpu_s"]) == (11.0, 1, 6.0)
    assert (result["peak_rss_mb"], result["rss_per_agent_mb"]) == (200.0, 5.0)
    stored = result["latency"]["stored"]
    assert (stored["samples"], stored["p50_ms"], stored["p99_ms"], stored["max_ms"]) == (
        100,
        10,
        20,
        900,
    )
    assert (tmp_path / RESULT_FILE).exists()


def test_a_whole_fleet_writes_plain_names_and_a_worker_its_part() -> None:
    assert part_name("result.json", None) == "result.json"
    assert part_name("agents.json", (1, 2)) == "agents.part1.json"


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (8, 7)])
def test_the_default_leaves_a_core_to_the_watch_fleet(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)))
    assert default_workers() == workers
