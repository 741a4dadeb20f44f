"""Relays through the real CLIs, each in its own process: ``watchsim run`` on the air,
``phoneagent run`` (the daemon), and ``phoneagent permissions`` / ``inject`` talking to
the daemon over its socket. Every wait is on a line a process prints, never a sleep.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from tests.processes import WAIT, WATCH_CLI, Watch, kill, line
from tests.system.test_two_processes import on_air

pytestmark = pytest.mark.system


async def ctl(state_dir: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WATCH_CLI, "ctl", "--state-dir", str(state_dir), *args
    )
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_daemon_relays_only_what_is_granted__PR_NOTIF_PR_CALL(
    air: str, tmp_path: Path
) -> None:
    phone, air_address = on_air(air, tmp_path)
    state_dir = tmp_path / "watch"
    watch, address = await Watch(state_dir, ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=watch)
        async with phone.daemon(address):
            out = await phone("inject", "notification", "--title", "early")
            assert "notifications not granted" in out

            await phone("permissions", "grant", "notifications")
            out = await phone("inject", "notification", "--app", "chat", "--title", "Hi")
            assert "delivered" in out
            await line(watch, r"notification \d+ from chat: Hi")

            out = await phone("inject", "call", "incoming", "--caller", "A")
            assert "not relayed" in out
            await phone("permissions", "grant", "calls")
            out = await phone("inject", "call", "incoming", "--caller", "Ann")
            call_id = re.search(r"watch call id (\d+)", out)
            assert call_id is not None, out
            await line(watch, rf"call {call_id[1]} incoming: Ann")

            # The wearer rejects: the press reaches the agent, which ends the call on the
            # phone and tells the watch (it stops ringing).
            await ctl(state_dir, "press", "reject")
            await line(watch, rf"call {call_id[1]} rejected: Ann")
            status = await phone("inject", "status")
            assert '"action": "reject"' in status

            # A value the agent cannot relay is a usage error (exit 2), with the reason.
            refused = await phone._spawn("inject", "music", "playing", "--position", str(2**40))
            _out, err = await asyncio.wait_for(refused.communicate(), WAIT)
            assert refused.returncode == 2 and "position" in err.decode(), err.decode()
    finally:
        await kill(watch)
