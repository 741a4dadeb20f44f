"""``watchsim run`` as a separate process on a ``watchsim air``, driven by ``watchsim ctl``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.processes import START, WAIT, WATCH_CLI, line

pytestmark = pytest.mark.system


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WATCH_CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_run_on_the_air_and_drive_it_with_ctl(air: str, tmp_path: Path) -> None:
    address = air.removeprefix("tcp-client:")
    state_dir = tmp_path / "watch"
    args = ["run", "--air", address, "--state-dir", str(state_dir), "--speed", "60"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WATCH_CLI,
        *args,
        "--backfill",
        "1h",
        "--start",
        START,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        ready = await line(process, r"ready: address ([0-9A-F:]{17})")

        code, out, err = await _cli("ctl", "--state-dir", str(state_dir), "status")
        assert code == 0, err
        status = json.loads(out)
        assert status["address"] == ready[1]
        assert status["radio"] == "advertising"
        assert status["history"]["count"] > 3600  # an hour of 1 Hz heart rate

        code, _out, err = await _cli("ctl", "--state-dir", str(state_dir), "press", "accept")
        assert code == 1
        assert "no incoming call to accept" in err
        assert "Traceback" not in err

        # Words the watch does not take are usage errors (exit 2), as README says.
        for words in (["press", "nope"], ["passkey", "soon"], ["frobnicate"], ["status", "x"]):
            code, _out, err = await _cli("ctl", "--state-dir", str(state_dir), *words)
            assert code == 2, (words, err)
            assert "Traceback" not in err

        # A second watch on the same state dir is refused, clearly.
        code, _out, err = await _cli(*args)
        assert code == 1
        assert "already running" in err
        assert "Traceback" not in err

        process.send_signal(signal.SIGTERM)
        await line(process, "watch stopped")
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    code, _out, err = await _cli("ctl", "--state-dir", str(state_dir), "status")
    assert code == 1
    assert "no watch is running" in err


async def test_run_reports_bad_scenario_with_itsline(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(
        '[[segment]]\nactivity = "walk"\nduration = "1h"\n\n'
        '[[segment]]\nactivity = "swim"\nduration = "1h"\n'
    )
    code, _out, err = await _cli("run", "--scenario", str(scenario), "--state-dir", str(tmp_path))
    assert code == 2  # a usage error, as README says
    assert "line 5" in err and "swim" in err
    assert "Traceback" not in err


async def test_run_reports_an_unreachable_air(tmp_path: Path) -> None:
    code, _out, err = await _cli("run", "--air", "127.0.0.1:1", "--state-dir", str(tmp_path))
    assert code == 1
    assert "cannot reach the loopback air at 127.0.0.1:1" in err
    assert "Traceback" not in err
