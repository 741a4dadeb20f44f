"""The watch's virtual clock: settable (Current Time writes), and faster than real time.

Simulated time is an affine function of a monotonic source, rebased whenever the speed
or the time is changed, so setting the clock never makes it run backwards by accident
and a test can drive it with its own time source. Only a clock at real speed takes a
phone's time (``real_time``; the rule is in docs/protocol.md, Current Time).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class VirtualClock:
    def __init__(
        self,
        start: float | None = None,
        *,
        speed: float = 1.0,
        utc_offset_s: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._monotonic = monotonic
        self._base_real = monotonic()
        self._base_sim = time.time() if start is None else float(start)
        self._speed = float(speed)
        self.utc_offset_s = utc_offset_s

    def now(self) -> float:
        """Simulated UTC seconds since the Unix epoch."""
        return self._base_sim + (self._monotonic() - self._base_real) * self._speed

    def local_now(self) -> float:
        """Simulated local wall time as seconds since the epoch (UTC + offset)."""
        return self.now() + self.utc_offset_s

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def real_time(self) -> bool:
        """Runs at real speed, so a phone's wall clock can set it. A clock N times faster
        (or slower) is a simulated timeline of its own: the phone's time would step it back
        (or forward) by the difference again at every connection."""
        return self._speed == 1.0

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._rebase(self.now())
        self._speed = float(speed)

    def set(self, utc_seconds: float, utc_offset_s: int | None = None) -> None:
        """What a Current Time write does: jump to the given time (either direction)."""
        self._rebase(float(utc_seconds))
        if utc_offset_s is not None:
            self.utc_offset_s = utc_offset_s

    def real_seconds_until(self, sim_time: float) -> float:
        """How long to sleep in real time until the clock reaches ``sim_time`` (>= 0)."""
        return max(0.0, (sim_time - self.now()) / self._speed)

    def _rebase(self, sim_now: float) -> None:
        self._base_real = self._monotonic()
        self._base_sim = sim_now
