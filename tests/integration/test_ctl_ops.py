"""``watchsim ctl`` words become typed operations: a running watch and a running fleet
take theirs, refuse the other's as usage errors (exit 2), and check values against the
one schema (``watchsim.controlops``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import localsock
from watchsim.cli import main as watchsim
from watchsim.control import request, socket_path
from watchsim.controlops import OffWrist, ToWatch
from watchsim.fleet import Fleet, FleetConfig, FleetControl
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch


async def ctl(directory: Path, *words: str) -> Result:
    """The CLI in a thread, while the socket's server answers on this loop."""
    argv = ["ctl", "--state-dir", str(directory), *words]
    return await asyncio.to_thread(CliRunner().invoke, watchsim, argv)


async def test_a_watch_takes_its_operations_and_refuses_others(tmp_path: Path) -> None:
    watch = await start_loopback_watch(new_link(), tmp_path / "watch")
    state_dir = watch.app.config.state_dir
    try:
        done = await ctl(state_dir, "event", "battery-low", "30")
        assert (done.exit_code, json.loads(done.output)) == (0, {"event": "battery-low"})
        status = json.loads((await ctl(state_dir, "status")).output)
        assert status["battery_percent"] == 30

        refused = await ctl(state_dir, "music", "volume", "140")
        assert refused.exit_code == 2
        assert "level: Expected `int` <= 100" in refused.output
        refused = await ctl(state_dir, "freeze")
        assert refused.exit_code == 2
        assert "'freeze' is a fleet's command" in refused.output
        with pytest.raises(localsock.UsageError, match="Invalid value 'frobnicate'"):
            path = socket_path(state_dir)
            await localsock.request(path, {"op": "frobnicate"}, timeout_s=5, peer="the watch")
    finally:
        await watch.stop()


async def test_a_fleet_passes_a_watch_operation_to_the_watch_it_names(tmp_path: Path) -> None:
    fleet = Fleet(FleetConfig(tmp_path / "fleet", count=1))
    fleet.config.directory.mkdir()
    control = FleetControl(fleet)
    await control.start()
    await fleet.start()
    try:
        name = fleet.watches[0].name
        done = await ctl(fleet.config.directory, "watch", name, "event", "off-wrist", "5")
        assert (done.exit_code, json.loads(done.output)) == (0, {"event": "off-wrist"})
        shown = await ctl(fleet.config.directory, "watch", name, "status")
        assert json.loads(shown.output)["name"] == name
        assert await request(fleet.config.directory, ToWatch(name, OffWrist())) == {
            "event": "off-wrist"
        }

        refused = await ctl(fleet.config.directory, "press", "accept")
        assert refused.exit_code == 2
        assert "'press' is a watch's command: `watch NAME press`" in refused.output
        unknown = await ctl(fleet.config.directory, "watch", "NOPE", "status")
        assert unknown.exit_code in (1, 2) and "NOPE" in unknown.output
    finally:
        await control.close()
        await fleet.stop()
