"""``phoneagent`` and ``watchsim run --personality infinitime`` as separate processes on
the loopback air, through their real CLIs (issue 20): found by name, paired without a
passkey (the watch never asks), a one-shot sync that says there is no history, ``run``
live with a notification relayed, and ``status`` marking the records live-derived. The
per-minute records themselves: tests/integration/test_infinitime_agent.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes import Watch, infinitime_pair_sync_relay
from tests.system.test_two_processes import on_air

pytestmark = pytest.mark.system


async def test_agent_pairs_syncs_and_relays_to_an_infinitime_process(
    air: str, tmp_path: Path
) -> None:
    phone, air_address = on_air(air, tmp_path)
    watch = Watch(tmp_path / "pinetime", ("--air", air_address, "--personality", "infinitime"))
    await infinitime_pair_sync_relay(watch, phone, scan_s=1)
