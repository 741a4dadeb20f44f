"""The virtual clock runs at a chosen speed and can be set, driven by a controlled time source."""

from __future__ import annotations

import pytest

from watchsim.model import VirtualClock


class ManualTime:
    """A monotonic source the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_speed_factor_scales_simulated_time() -> None:
    real = ManualTime()
    clock = VirtualClock(1_700_000_000, speed=60, monotonic=real)
    real.now += 2.5
    assert clock.now() == 1_700_000_150
    assert clock.real_seconds_until(1_700_000_210) == pytest.approx(1.0)
    assert clock.real_seconds_until(0) == 0


def test_set_jumps_either_way_and_keeps_the_speed() -> None:
    real = ManualTime()
    clock = VirtualClock(1_700_000_000, speed=10, monotonic=real)
    real.now += 1
    clock.set(1_600_000_000, utc_offset_s=3600)
    assert clock.now() == 1_600_000_000
    assert clock.local_now() == 1_600_003_600
    real.now += 1
    assert clock.now() == 1_600_000_010


def test_speed_change_is_continuous() -> None:
    real = ManualTime()
    clock = VirtualClock(0, speed=2, monotonic=real)
    real.now += 10
    clock.set_speed(100)
    assert clock.now() == 20
    real.now += 1
    assert clock.now() == 120
    with pytest.raises(ValueError, match="positive"):
        clock.set_speed(0)
