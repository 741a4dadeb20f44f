"""A running watch on an in-process LocalLink, for tests and the in-process demo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from bumble.link import LocalLink

from watchsim.app import PERSONALITIES, LinkRadio, WatchApp, WatchConfig
from watchsim.control import ControlServer, start_controlled
from watchsim.history import DEFAULT_CAPACITY, History
from watchsim.model import load_builtin
from watchsim.peripheral.port import PairingMode


@dataclass
class LoopbackWatch:
    app: WatchApp
    address: str  # the watch's random static identity address (stable per state dir)
    passkeys: asyncio.Queue[int]  # every passkey (or comparison number) the watch shows
    control: ControlServer  # `watchsim ctl --state-dir DIR ...` works against it

    @property
    def history(self) -> History:
        """The open on-watch history (a new handle after each reboot)."""
        history = self.app.history
        if history is None:
            raise RuntimeError("the watch is stopped")
        return history

    async def stop(self) -> None:
        await self.control.close()
        await self.app.stop()

    async def reboot(self) -> None:
        """Restart the app from the same state dir; history and bonds survive."""
        await self.app.reboot()


# Midday of a weekday: the default day is awake, on the wrist and measuring every metric.
TEST_START: Final = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)


async def start_loopback_watch(
    link: LocalLink,
    state_dir: Path,
    *,
    seed: int = 1,
    name: str = "WatchSim",
    backfill: timedelta | None = None,
    scenario: str | None = None,
    pairing: PairingMode = PairingMode.PASSKEY,
    history_capacity: int | None = None,
    speed: float = 1.0,
    start_time: datetime | None = TEST_START,
    personality: str = "watchsim",
) -> LoopbackWatch:
    """Start a watch advertising on ``link``; ``scenario`` is a built-in name or a path;
    ``personality`` one of ``watchsim.app.PERSONALITIES``.

    The clock starts at ``TEST_START`` unless told otherwise (None: now), so that what a
    test sees does not depend on the hour it runs at (the scenarios follow a day).
    """
    config = WatchConfig(
        state_dir=state_dir,
        name=name,
        seed=seed,
        scenario=load_builtin(scenario) if scenario is not None else None,
        speed=speed,
        start_time=start_time.timestamp() if start_time is not None else None,
        backfill_s=int(backfill.total_seconds()) if backfill is not None else 0,
        pairing=pairing,
        history_capacity=history_capacity or DEFAULT_CAPACITY,
    )
    radio = LinkRadio(link, state_dir, name, pairing)
    app = PERSONALITIES[personality](config, radio)
    passkeys: asyncio.Queue[int] = asyncio.Queue()
    app.passkey_listeners.append(passkeys.put_nowait)
    app.open_state_dir()
    control = await start_controlled(app)
    return LoopbackWatch(app=app, address=radio.address, passkeys=passkeys, control=control)
