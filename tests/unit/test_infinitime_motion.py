"""The InfiniTime personality's raw motion: derived from the model, since the wearer
model has steps but no accelerometer."""

from __future__ import annotations

import dataclasses
import struct

from watchsim.app.infinitime import motion
from watchsim.model import WatchModel, load_builtin
from watchsim.testing import TEST_START


def test_flat_off_the_wrist_and_swinging_with_the_steps_on_it() -> None:
    model = WatchModel(load_builtin("default-day"), seed=1, start=int(TEST_START.timestamp()))
    now = model.state()
    off = dataclasses.replace(now, on_wrist=False)
    assert struct.unpack("<hhh", motion(off, now.steps_today)) == (0, 0, 1024)
    walking = dataclasses.replace(now, on_wrist=True, steps_today=101)
    x, y, z = struct.unpack("<hhh", motion(walking, 99))
    assert (abs(x), y, z) == (400, -512, 887)
    still = dataclasses.replace(now, on_wrist=True, steps_today=101)
    assert struct.unpack("<hhh", motion(still, 101))[0] == 0
