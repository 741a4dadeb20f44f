"""``phoneagent`` and ``watchsim run --personality infinitime`` as separate processes on
the loopback air, through their real CLIs (issue 20): found by name, paired without a
passkey (the watch never asks), a one-shot sync that says there is no history, ``run``
live with a notification relayed, and ``status`` marking the records live-derived. The
per-minute records themselves: tests/integration/test_infinitime_agent.py."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.processes import ENV, WAIT, WATCH_CLI, Watch, kill
from tests.system.test_two_processes import on_air

pytestmark = pytest.mark.system


async def watch_status(state_dir: Path) -> dict[str, object]:
    ctl = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WATCH_CLI, "ctl", "--state-dir", str(state_dir), "status",
        stdout=asyncio.subprocess.PIPE, env=ENV,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(ctl.communicate(), WAIT)
    status: dict[str, object] = json.loads(output)
    return status


async def test_agent_pairs_syncs_and_relays_to_an_infinitime_process(
    air: str, tmp_path: Path
) -> None:
    phone, air_address = on_air(air, tmp_path)
    state_dir = tmp_path / "pinetime"
    watch = Watch(state_dir, ("--air", air_address, "--personality", "infinitime"))
    process, address = await watch.start()
    try:
        found = json.loads(await phone("scan", "--seconds", "1", "--json"))
        assert {"address": address, "name": "InfiniTime"}.items() <= found[0].items()
        paired = await phone("pair", address)  # no passkey typed: none is asked
        assert "unbonded" in paired, paired
        synced = await phone("sync", address)
        assert "keeps no history" in synced, synced
        await phone("permissions", "grant", "notifications")
        async with phone.daemon(address):
            sent = await phone("inject", "notification", "--app", "chat", "--title", "Ann")
            assert "delivered" in sent, sent
            assert (await watch_status(state_dir))["notifications"] == ["Ann"]
        status = json.loads(await phone("status", "--json"))
        (device,) = status["devices"]
        assert (device["records"], device["bonded"]) == ("live per minute", False)
    finally:
        await kill(process)
