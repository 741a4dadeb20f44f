"""A full disk under the agent's data dir (issue 17, finding 3): a real 3 MB tmpfs, filled
with a file and freed again.

``sync`` says the disk is full and exits; ``run`` stops storing and acknowledging, says so
in ``status``, backs off and carries on by itself once space returns. Nothing unstored is
acknowledged: the store ends with every seq exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import pytest

from phoneagent.cli.context import EXIT_ERROR
from tests.disk import fill, small_disk
from tests.processes import WAIT, Phone, Watch, assert_backfilled, kill, line, start_air

pytestmark = pytest.mark.system
__all__ = ["small_disk"]  # the fixture

FULL = r"the disk holding .* is full"


async def test_sync_and_run_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    air, air_address = await start_air()
    phone = Phone(small_disk / "agent", f"loopback:{air_address}")
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    agent: asyncio.subprocess.Process | None = None
    try:
        await phone("pair", address, passkey_from=watch)
        # Retries a person would not wait for; the back-off itself is the engine's.
        (phone.data_dir / "config.toml").write_text(
            "[sync]\nbackoff_initial = 0.2\nbackoff_max = 1.0\n"
        )
        filler = fill(small_disk)

        sync = await phone._spawn("sync", address)
        _out, err = await asyncio.wait_for(sync.communicate(), phone.daemon_wait)
        message = err.decode()
        assert sync.returncode == EXIT_ERROR, message
        assert re.search(FULL, message) and "free some space" in message
        assert "Traceback" not in message

        filler.unlink()
        agent = await phone._spawn("run", "--no-dbus")
        await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        filler = fill(small_disk)  # live records keep coming: the next commits find no room
        await line(agent, rf"{address}: backing off \({FULL}", wait=phone.daemon_wait, stderr=True)
        status = json.loads(await phone("status", "--json"))
        (device,) = status["devices"]
        assert re.match(rf"not storing: {FULL}", device["agent"])

        filler.unlink()
        await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        agent.send_signal(signal.SIGTERM)
        await line(agent, "phoneagent stopped", wait=WAIT, stderr=True)
        assert await asyncio.wait_for(agent.wait(), WAIT) == 0
        assert_backfilled(await phone.status(address))  # each seq once: no ack unstored
        log = (phone.data_dir / "logs" / "phoneagent.log").read_text()
        assert "storing again: the disk has space" in log
    finally:
        if agent is not None:
            await kill(agent)
        await kill(watch)
        await kill(air)
