"""A staggered fleet's sample phases: on the slot grid, within the second, spread over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchsim.app import WatchConfig, WatchError
from watchsim.fleet import SAMPLE_SLOTS, sample_phase


def test_phases_are_slots_spread_over_the_second() -> None:
    phases = [sample_phase(i) for i in range(500)]
    assert all(0.0 <= p < 1.0 for p in phases)
    assert {round(p * SAMPLE_SLOTS, 9) % 1 for p in phases} == {0}  # on the grid
    assert len(set(phases[: SAMPLE_SLOTS // 2])) == SAMPLE_SLOTS // 2  # a small fleet: apart
    # 500 watches fill every slot evenly, about 10 each.
    per_slot = [phases.count(k / SAMPLE_SLOTS) for k in range(SAMPLE_SLOTS)]
    assert min(per_slot) >= 8 and max(per_slot) <= 12
    # Any 100 consecutive watches put about 10 in every tenth of the second.
    tenths = [sum(1 for p in phases[200:300] if k / 10 <= p < (k + 1) / 10) for k in range(10)]
    assert min(tenths) >= 8 and max(tenths) <= 12


def test_a_phase_outside_the_second_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WatchError, match="phase"):
        WatchConfig(state_dir=tmp_path, sample_phase=1.0)
