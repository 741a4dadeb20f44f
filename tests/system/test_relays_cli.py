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

from tests.system import test_air
from tests.system.test_air import CLI, WAIT, _line
from tests.system.test_two_processes import agent, daemon, kill, start_watch

air = test_air.air  # the fixture

pytestmark = pytest.mark.system


async def ctl(state_dir: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, "ctl", "--state-dir", str(state_dir), *args
    )
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


async def test_daemon_relays_only_what_is_granted__PR_NOTIF_PR_CALL(
    air: str, tmp_path: Path
) -> None:
    air_address = air.removeprefix("tcp-client:")
    state_dir, data_dir = tmp_path / "watch", tmp_path / "agent"
    watch, address = await start_watch(air_address, state_dir)
    try:
        await agent(data_dir, air_address, "pair", address, passkey_from=watch)
        async with daemon(data_dir, air_address, address):
            out = await agent(data_dir, air_address, "inject", "notification", "--title", "early")
            assert "notifications not granted" in out

            await agent(data_dir, air_address, "permissions", "grant", "notifications")
            out = await agent(
                data_dir, air_address, "inject", "notification", "--app", "chat", "--title", "Hi"
            )
            assert "delivered" in out
            await _line(watch, r"notification \d+ from chat: Hi")

            out = await agent(data_dir, air_address, "inject", "call", "incoming", "--caller", "A")
            assert "not relayed" in out
            await agent(data_dir, air_address, "permissions", "grant", "calls")
            out = await agent(
                data_dir, air_address, "inject", "call", "incoming", "--caller", "Ann"
            )
            call_id = re.search(r"watch call id (\d+)", out)
            assert call_id is not None, out
            await _line(watch, rf"call {call_id[1]} incoming: Ann")

            # The wearer rejects: the press reaches the agent, which ends the call on the
            # phone and tells the watch (it stops ringing).
            await ctl(state_dir, "press", "reject")
            await _line(watch, rf"call {call_id[1]} rejected: Ann")
            status = await agent(data_dir, air_address, "inject", "status")
            assert '"action": "reject"' in status
    finally:
        await kill(watch)
