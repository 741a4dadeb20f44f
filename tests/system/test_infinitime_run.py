"""``watchsim run --personality infinitime`` as a separate process on the loopback air:
it says that nothing it serves is encrypted, and `watchsim ctl status` shows the
personality (the companion-behaviour checks are in-process: test_infinitime_companion)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from tests.processes import WAIT, WATCH_CLI, Watch, kill, line, start_air

pytestmark = pytest.mark.system


async def test_run_says_nothing_is_encrypted_and_ctl_shows_the_personality(
    tmp_path: Path,
) -> None:
    air, address = await start_air()
    state_dir = tmp_path / "pinetime"
    watch = Watch(state_dir, ("--air", address, "--personality", "infinitime"), backfill="1m")
    process, _ = await watch.start()
    try:
        await line(process, "no characteristic needs encryption")
        ctl = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WATCH_CLI, "ctl", "--state-dir", str(state_dir), "status",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(ctl.communicate(), WAIT)
        status = json.loads(output)
        assert (status["name"], status["personality"]) == ("InfiniTime", "infinitime")
        process.send_signal(signal.SIGTERM)
        await line(process, "watch stopped")
    finally:
        await kill(process)
        await kill(air)
