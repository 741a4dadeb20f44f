"""``watchsim fleet`` and ``phoneagent fleet`` as separate processes, with a real Mosquitto
and the reference receiver: a short soak run with no faults, then one with each fault.

The verdict is the soak's full account (tests/soak.py): every record each watch generated
is in its agent's store and in the receiver, once, with the same content.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.soak import FAULT_KINDS, Soak, SoakConfig

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]


async def test_fleet_of_three_syncs_and_uploads_everything(tmp_path: Path) -> None:
    soak = Soak(SoakConfig(tmp_path, watches=3, duration_s=8, speed=60, faults=0))
    report = await soak.run()

    assert report.ok, report.table()
    assert all(w.generated > 0 and w.uploaded == w.generated for w in report.watches)
    identities = json.loads((tmp_path / "agents" / "agents.json").read_text())["agents"]
    for key in ("address", "user_pseudonym", "device_pseudonym", "data_dir", "key_file"):
        assert len({a[key] for a in identities}) == 3, key
    manifest = json.loads((tmp_path / "watches" / "fleet.json").read_text())
    assert len({(w["seed"], w["scenario"]) for w in manifest["watches"]}) == 3
    assert len({w["phase"] for w in manifest["watches"]}) == 3  # each measures at its own
    # Both commands end with what they cost.
    assert soak.watches is not None and soak.agents is not None
    assert any("MB per watch" in line and "s per watch" in line for line in soak.watches.lines)
    assert any("MB per agent" in line and "s per agent" in line for line in soak.agents.lines)


async def test_soak_with_every_fault_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    config = SoakConfig(tmp_path, watches=3, duration_s=30, speed=144, faults=len(FAULT_KINDS))
    report = await Soak(config).run()

    assert report.ok, report.table()
    assert all(count == 1 for count in report.faults.values()), report.faults
    assert all(w.generated > 0 and w.uploaded == w.generated for w in report.watches)
    result = json.loads((tmp_path / "agents" / "result.json").read_text())
    assert result["radio_reopened"] >= 3  # the air restart took every agent's radio
    assert result["processes"] == 2  # split over workers (the soak's --processes 2)
