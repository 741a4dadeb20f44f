"""``phoneagent report`` (issue 22): what it reads from a real encrypted store, where it
places the holes and why, the daily summaries, and the file it writes (owner-only)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneagent.cli import main
from phoneagent.errors import EXIT_UNREACHABLE, EXIT_USAGE
from phoneagent.privacy.audit import FAIL, audit
from phoneagent.report.collect import DeviceReport, collect
from phoneagent.store import Store, read_key_file
from protocol.metrics import Metric
from tests.reportdata import (
    HOLES,
    HR_EVERY_S,
    OTHER_EVERY_S,
    T0,
    WATCH,
    add_sync_and_upload,
    bands,
    fill_store,
)


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "agent"
    return data, fill_store(data)


def _report(data: Path, key_file: Path, **limits: int) -> DeviceReport:
    with Store.open(data, read_key_file(key_file)) as store:
        (report,) = collect(store, WATCH, limits.get("since"), limits.get("until"))
    return report


def _run(data: Path, key_file: Path, *args: str) -> tuple[int, str]:
    """``phoneagent report``; without ``--out``, to a file beside the key (never the cwd)."""
    out = [] if "--out" in args else ["--out", str(key_file.with_name("report.html"))]
    result = CliRunner().invoke(
        main, ["--data-dir", str(data), "--key-file", str(key_file), "report", *args, *out]
    )
    return result.exit_code, result.output


def test_the_report_is_owner_only_and_says_it_holds_personal_data(
    stored: tuple[Path, Path], tmp_path: Path
) -> None:
    data, key_file = stored
    out = tmp_path / "report.html"
    out.write_text("an older report, readable by all")
    out.chmod(0o644)
    code, output = _run(data, key_file, "--out", str(out))
    assert code == 0, output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "personal health data" in output and str(out) in output
    html = out.read_text()
    assert "Test watch" in html
    assert "<script" in html and not re.search(r"<script[^>]*\bsrc=", html)  # opens offline
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_every_hole_is_placed_on_the_time_axis_with_its_reason(
    stored: tuple[Path, Path],
) -> None:
    report = _report(*stored)
    for hole in HOLES:
        found = [h for h in report.holes if h.reason == hole.reason]
        # A hole in every metric is one; a metric's own quiet spell is one per metric.
        metrics = {h.metric for h in found}
        assert metrics == ({None} if hole.metrics == set(Metric) else set(hole.metrics))
        for h in found:
            # From the metric's (or any metric's) last sample before to the first after.
            assert T0 + 60 * hole.start - OTHER_EVERY_S <= h.start < T0 + 60 * hole.start
            assert h.end == T0 + 60 * hole.end
    assert len(report.holes) == bands()


def test_since_and_until_limit_the_samples_and_the_holes(stored: tuple[Path, Path]) -> None:
    data, key_file = stored
    since, until = T0 + 24 * 3600, T0 + 36 * 3600
    report = _report(data, key_file, since=since, until=until)
    times = [t for s in report.series.values() for t in s.times]
    assert min(times) >= since and max(times) < until
    assert {h.reason for h in report.holes} == {h.reason for h in HOLES if h.start >= 24 * 60}
    code, output = _run(data, key_file, "--since", "2026-05-29T00:00", "--until", str(until))
    assert code == 0, output


def test_the_days_summarise_every_sample(stored: tuple[Path, Path]) -> None:
    data, key_file = stored
    report = _report(data, key_file)
    with Store.open(data, read_key_file(key_file)) as store:
        first_day = [s for s in store.iter_samples(WATCH, until=T0 + 86_400)]
    heart = sorted(s.value for s in first_day if s.metric is Metric.HEART_RATE)
    lowest_tenth = heart[: round(len(heart) / 10)]
    day = report.days[0]
    assert len(report.days) == 2
    assert day.steps == sum(s.value for s in first_day if s.metric is Metric.STEPS)
    assert day.min_spo2 == min(s.value for s in first_day if s.metric is Metric.SPO2)
    assert day.resting_hr == round(sum(lowest_tenth) / len(lowest_tenth), 1)


def test_sync_and_upload_state_share_the_time_axis(stored: tuple[Path, Path]) -> None:
    added = add_sync_and_upload(*stored)
    report = _report(*stored)
    assert {s.lane: (s.start, s.end) for s in report.spans} == {
        "synced": (T0, T0 + 48 * 3600 - HR_EVERY_S),
        "uploaded (eu)": (T0, added.uploaded_to.timestamp),
    }
    assert [(e.lane, e.at, e.text) for e in report.events] == [
        ("last sync failed", added.failed_at, "the watch did not answer"),
        ("upload sessions", added.uploaded_at, "42 record(s) to cloud:eu"),
    ]


def test_a_missing_folder_is_named(stored: tuple[Path, Path], tmp_path: Path) -> None:
    code, output = _run(*stored, "--out", str(tmp_path / "gone" / "report.html"))
    assert code == 1
    assert f"{tmp_path / 'gone'}: no such folder" in output and "Traceback" not in output


def test_a_pipe_or_device_is_not_replaced(stored: tuple[Path, Path], tmp_path: Path) -> None:
    """``--out /dev/full`` replaced the device node with the report (found as root); a
    FIFO stands for it here."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, output = _run(*stored, "--out", str(fifo))
    assert code == EXIT_USAGE
    assert f"{fifo} is not a regular file" in output and "Traceback" not in output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_an_unknown_watch_is_refused_with_its_exit_code(stored: tuple[Path, Path]) -> None:
    code, output = _run(*stored, "--device", "00:11:22:33:44:55")
    assert code == EXIT_UNREACHABLE
    assert "00:11:22:33:44:55 is not in the store" in output and "Traceback" not in output


def test_the_cli_loads_plotly_only_for_the_report() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, phoneagent.cli; print('plotly' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "False"


def test_a_report_left_in_the_data_dir_fails_the_privacy_audit(stored: tuple[Path, Path]) -> None:
    data, key_file = stored
    code, output = _run(data, key_file, "--out", str(data / "report.html"))
    assert code == 0, output
    with Store.open(data, read_key_file(key_file)) as store:
        enc = next(c for c in audit(store, data) if c.id == "PR-ENC")
    assert enc.status == FAIL and "report.html" in enc.evidence
