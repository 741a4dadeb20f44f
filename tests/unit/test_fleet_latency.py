"""The fleet's latency over time: one histogram per second of wall time, keyed by when a
sample was stored or acknowledged, so that a stall shows where it happened; and the
collector kept off what the fleet's agents keep."""

from __future__ import annotations

import gc
from pathlib import Path

from harness.fleet import (
    FIRST_COMMIT_WITHIN_S,
    RESULT_FILE,
    START_RATE,
    AgentFleet,
    AgentFleetConfig,
    Latency,
    Manifest,
    Timeline,
    WatchEntry,
    part_name,
    write_json,
)
from harness.fleetsplit import Workers
from phoneagent.store.db import StoreResult
from phoneagent.sync import Committed
from protocol.metrics import Metric, Sample


def commit(device: str, taken: list[int], first_seq: int = 1) -> Committed:
    samples = tuple(Sample(first_seq + n, t, Metric.HEART_RATE, 60) for n, t in enumerate(taken))
    result = StoreResult(len(samples), 0, 0, first_seq + len(samples))
    return Committed(device, result, samples, first_seq + len(samples) - 1)


def test_each_second_holds_the_percentiles_of_what_was_stored_and_acked_in_it() -> None:
    latency = Latency(Timeline(0.0, 1.0), since_wall=100.0)
    latency.committed(commit("A", [98, 99]), wall=100.5)  # taken before the window
    latency.committed(commit("A", [100, 100, 100, 100], first_seq=3), wall=100.25)
    latency.committed(commit("B", [101]), wall=103.5)
    latency.acknowledged("A", 6, wall=102.0)
    latency.acknowledged("B", 1, wall=104.0)

    seconds = latency.summary()["over_time"]

    assert [s["at"] for s in seconds] == [100.0, 102.0, 103.0, 104.0]
    first, second, third, fourth = seconds
    assert first["stored"] == {"samples": 4, "p50_ms": 250, "p99_ms": 250, "max_ms": 250}
    assert first["acked"]["samples"] == 0 and first["acked"]["p99_ms"] is None
    assert (second["acked"]["samples"], second["acked"]["p99_ms"]) == (4, 2000)
    assert (third["stored"]["samples"], third["stored"]["p50_ms"]) == (1, 2500)
    assert (fourth["acked"]["samples"], fourth["acked"]["max_ms"]) == (1, 3000)
    # The whole window's figures are unchanged by the split into seconds.
    assert latency.summary()["stored"]["samples"] == 5


def test_a_split_fleets_parts_add_up_second_by_second(tmp_path: Path) -> None:
    """Each worker starts its window at its own moment: seconds are of wall time, so the
    parts' same second adds up."""
    for index, (since, taken, wall) in enumerate(((100.0, 100, 100.5), (100.2, 101, 101.5))):
        latency = Latency(Timeline(0.0, 1.0), since_wall=since)
        latency.committed(commit("A", [taken] * (index + 1)), wall=wall)
        latency.committed(commit("B", [100]), wall=100.75)  # before worker 1's window
        summed = ("count", "peak_rss_mb", "base_rss_mb", "cpu_s", "stored", "uploaded")
        result: dict[str, object] = dict.fromkeys((*summed, "radio_reopened", "radio_failed"), 0)
        result |= {"wall_s": 1.0, "latency": latency.summary(), "histograms": latency.histograms()}
        result["interval_histograms"] = latency.interval_histograms()
        write_json(tmp_path / part_name(RESULT_FILE, (index, 2)), result)

    seconds = Workers([], 2, tmp_path).merge_results()["latency"]["over_time"]

    stored = [(s["at"], s["stored"]["samples"], s["stored"]["max_ms"]) for s in seconds]
    assert stored == [(100.0, 2, 750), (101.0, 2, 500)]


def _fleet(tmp_path: Path, agents: int) -> AgentFleet:
    watches = tuple(
        WatchEntry(f"w{i}", f"F0:00:00:00:00:0{i}", tmp_path / f"w{i}") for i in range(agents)
    )
    return AgentFleet(
        AgentFleetConfig(tmp_path, Manifest("127.0.0.1:1", Timeline(0.0, 1.0), watches), "")
    )


def test_what_lives_is_frozen_once_every_agent_committed(tmp_path: Path) -> None:
    """The second ``gc.freeze``: not before the last agent's first commit, once then."""
    fleet = _fleet(tmp_path, 3)
    before = gc.get_freeze_count()
    fleet.first_commit()
    fleet.first_commit()
    assert gc.get_freeze_count() == before
    fleet.first_commit()
    assert gc.get_freeze_count() > before


def test_the_second_freeze_comes_when_measuring_begins_without_the_last_commit(
    tmp_path: Path,
) -> None:
    """An agent that never commits (its watch gone) does not keep the second freeze away
    from the latency window; it is done once."""
    fleet = _fleet(tmp_path, 2)
    before = gc.get_freeze_count()
    fleet.first_commit()
    assert gc.get_freeze_count() == before
    fleet.freeze_live()  # the latency window opens
    frozen = gc.get_freeze_count()
    assert frozen > before
    fleet.first_commit()  # the last agent, late
    fleet.freeze_live()
    assert gc.get_freeze_count() == frozen


def test_without_a_window_full_collections_come_back_after_the_last_start(
    tmp_path: Path,
) -> None:
    """A soak or a plain fleet has no latency window: an agent that never commits must not
    hold full collections for the process's life."""
    fleet = _fleet(tmp_path, 3)
    assert fleet.freeze_deadline_s() == 2 / START_RATE + FIRST_COMMIT_WITHIN_S
    watched = AgentFleet(AgentFleetConfig(tmp_path, fleet.manifest, "", latency_after_s=30.0))
    assert watched.freeze_deadline_s() == 30.0
