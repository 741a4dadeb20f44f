"""Alerts, calls and music between a paired phone and the watch, buttons via ctl."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from bumble.link import LocalLink
from rich.console import Console

from protocol import uuids
from protocol.alerts import (
    AlertCategory,
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
)
from protocol.music import MusicCommand, MusicEvent, MusicState, Playback
from tests.integration.test_watch_app import paired_phone, subscribe, write
from watchsim.console import render
from watchsim.control import ControlError, request
from watchsim.controlops import Music, Press, Status, Volume
from watchsim.testing import LoopbackWatch


def ctl_dir(running: LoopbackWatch) -> Path:
    return running.app.config.state_dir


async def test_pressing_reject_sends_a_call_action_with_the_call_id(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    peer = await paired_phone(link, watch)
    actions = await subscribe(peer, uuids.CALL_ACTION)
    with pytest.raises(ControlError, match="no incoming call"):
        await request(ctl_dir(watch), Press("accept"))

    await write(peer, uuids.CALL_STATE, CallState(0xC0FFEE, CallStatus.INCOMING, "Mum").encode())
    status = await request(ctl_dir(watch), Status())
    assert status["calls"] == [{"id": 0xC0FFEE, "state": "incoming", "name": "Mum", "muted": False}]

    result = await request(ctl_dir(watch), Press("reject"))
    assert result == {"call_id": 0xC0FFEE, "action": "reject", "sent_to": 1}
    action = CallAction.decode(await actions.get("call action"))
    assert action == CallAction(0xC0FFEE, CallActionKind.REJECT)

    # The phone confirms; the call leaves the screen, and cannot be answered afterwards.
    await write(peer, uuids.CALL_STATE, CallState(0xC0FFEE, CallStatus.REJECTED).encode())
    status = await request(ctl_dir(watch), Status())
    assert status["calls"] == []
    assert status["recent_calls"][0]["state"] == "rejected"


async def test_notifications_are_shown_bounded_and_removed_by_id(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    peer = await paired_phone(link, watch)
    for n in range(25):
        alert = AlertNotification(n, AlertCategory.MESSAGE, "Chat", f"Ann {n}", "Hi é")
        await write(peer, uuids.ALERT_NOTIFICATION, alert.encode())
    await write(peer, uuids.ALERT_REMOVAL, AlertRemoval(24).encode())
    shown = (await request(ctl_dir(watch), Status()))["notifications"]
    assert [n["id"] for n in shown] == list(range(23, 4, -1))  # newest first, 20 kept
    assert shown[0] == {
        "id": 23,
        "category": "message",
        "app": "Chat",
        "title": "Ann 23",
        "body": "Hi é",
    }


async def test_music_state_is_shown_and_buttons_send_events(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    peer = await paired_phone(link, watch)
    events = await subscribe(peer, uuids.MUSIC_EVENT)
    playing = MusicState(Playback.PLAYING, 55, 61, 245, "Song", "Band")
    await write(peer, uuids.MUSIC_STATE, playing.encode())
    assert (await request(ctl_dir(watch), Status()))["music"]["title"] == "Song"

    await request(ctl_dir(watch), Music("next"))
    await request(ctl_dir(watch), Volume(40))
    assert MusicEvent.decode(await events.get()) == MusicEvent(MusicCommand.NEXT)
    assert MusicEvent.decode(await events.get()) == MusicEvent(MusicCommand.SET_VOLUME, 40)
    with pytest.raises(ControlError, match=r"level: Expected `int` <= 100"):
        await request(ctl_dir(watch), Volume(140))


async def test_the_screen_shows_what_a_phone_sends_as_text(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    """A caller, an alert and a song named with rich markup or emoji codes are shown as
    sent: "[/]" on the screen ended the watch with a MarkupError."""
    peer = await paired_phone(link, watch)
    await write(peer, uuids.CALL_STATE, CallState(1, CallStatus.INCOMING, "[/]").encode())
    alert = AlertNotification(2, AlertCategory.MESSAGE, "[bold]", ":CD:", "[/b] x")
    await write(peer, uuids.ALERT_NOTIFICATION, alert.encode())
    song = MusicState(Playback.PLAYING, 5, 6, 7, "[red]Song", "Band[/red]")
    await write(peer, uuids.MUSIC_STATE, song.encode())
    screen = io.StringIO()
    Console(width=160, file=screen).print(render(watch.app.status()))
    shown = screen.getvalue()
    for sent in ("incoming: [/] (#1)", "[bold]: :CD: - [/b] x", "[red]Song - Band[/red]"):
        assert sent in shown


async def test_ctl_reports_when_no_watch_runs(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no watch is running"):
        await request(tmp_path, Status())
