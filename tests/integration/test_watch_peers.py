"""The watch's own view of who is connected (``watchsim ctl status``), with our agent as
the central: its radio shows a resolvable private address that the watch resolves only
once it holds the agent's identity key (the pairing hands it over mid-connection)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bumble.link import LocalLink

from phoneagent.sync.discovery import pair_device, wait_for_advertising
from tests.integration.test_sync_engine import WAIT, Agent
from watchsim.control import request as ctl
from watchsim.controlops import Status
from watchsim.testing import LoopbackWatch, start_loopback_watch


async def _status_until(watch: LoopbackWatch, radio: str) -> dict[str, Any]:
    """The watch's status once its radio says ``radio``, looked at after each line the
    watch logs (it logs every connection and disconnection)."""
    logged = asyncio.Event()
    watch.app.log_listeners.append(lambda _line: logged.set())
    try:
        async with asyncio.timeout(WAIT):
            while True:
                logged.clear()  # before asking: a line logged meanwhile is not missed
                status = await ctl(watch.app.config.state_dir, Status())
                if status["radio"] == radio:
                    break
                await logged.wait()
    finally:
        watch.app.log_listeners.pop()
    assert isinstance(status, dict)
    return status


async def test_status_shows_each_connection_once_and_none_after_it_ends(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(link, tmp_path / "watch")
    agent = await Agent.start(link, tmp_path / "agent", watch)
    try:
        await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
        # The pairing connection's address became the agent's identity when it ended.
        assert (await _status_until(watch, "advertising"))["peers"] == []
        found = await wait_for_advertising(agent.transport, watch.address, WAIT)
        async with agent.transport.client(found, timeout=WAIT):
            (peer,) = (await _status_until(watch, "connected"))["peers"]
            assert peer["bonded"] is True  # resolved: the agent's bond, not a stranger
        assert (await _status_until(watch, "advertising"))["peers"] == []
    finally:
        await agent.stop()
        await watch.stop()
