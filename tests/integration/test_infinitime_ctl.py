"""``watchsim ctl`` and the fleet drive an InfiniTime-personality watch as they drive ours:
its status, the model's events, and the wearer's buttons in InfiniTime's terms."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from tests.integration.test_ctl_ops import ctl
from watchsim.console import render
from watchsim.fleet import Fleet, FleetConfig, FleetControl
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch


async def test_ctl_events_and_buttons_on_an_infinitime_watch(tmp_path: Path) -> None:
    watch = await start_loopback_watch(new_link(), tmp_path / "watch", personality="infinitime")
    state_dir = watch.app.config.state_dir
    try:
        done = await ctl(state_dir, "event", "off-wrist")
        assert done.exit_code == 0
        status = json.loads((await ctl(state_dir, "status")).output)
        assert (status["personality"], status["firmware"]) == ("infinitime", "1.15.0")
        screen = io.StringIO()  # the terminal view `watchsim run` draws from the status
        Console(width=120, file=screen).print(render(status))
        assert "InfiniTime 1.15.0" in screen.getvalue()
        # What the phone sent (an alert, a caller, a track) is shown as text, not markup.
        status["notifications"] = ["Chat: [/]"]
        status["call"] = {"caller": "[bold]Mum", "muted": False}
        status["music"] |= {"track": ":CD:", "artist": "[/red]"}
        Console(width=120, file=screen).print(render(status))
        for sent in ("Chat: [/]", "call [bold]Mum", ":CD: - [/red]"):
            assert sent in screen.getvalue()
        no_call = await ctl(state_dir, "press", "accept")
        assert no_call.exit_code != 0 and "no call on screen" in no_call.output
        volume = await ctl(state_dir, "music", "volume", "40")
        assert volume.exit_code != 0 and "no volume level" in volume.output
        rebooted = await ctl(state_dir, "event", "reboot")
        assert rebooted.exit_code == 0
        assert json.loads((await ctl(state_dir, "status")).output)["radio"] == "advertising"
    finally:
        await watch.stop()


async def test_a_fleet_of_infinitime_watches(tmp_path: Path) -> None:
    fleet = Fleet(FleetConfig(tmp_path / "fleet", count=2, personality="infinitime"))
    fleet.config.directory.mkdir()
    control = FleetControl(fleet)
    await control.start()
    await fleet.start()
    try:
        for watch in fleet.watches:
            shown = await ctl(fleet.config.directory, "watch", watch.name, "status")
            assert json.loads(shown.output)["personality"] == "infinitime"
    finally:
        await control.close()
        await fleet.stop()
