"""The relay hub's rules without a radio: gate, TTL, bound, de-dup, calls, withdrawal.

The watch here is a recorder that decodes every value it is sent with the protocol's
own decoders, so what it sees is exactly what would go over the air.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time

import pytest

from phoneagent.relays.hub import CLEARED_MUSIC, Notification, RelayHub
from phoneagent.relays.permissions import (
    AppMode,
    CallPrivacy,
    Feature,
    QuietHours,
    RelayPermissionError,
    RelayPolicy,
)
from phoneagent.relays.sources.modem import MMCallState, call_status
from phoneagent.relays.sources.mpris import music_state
from phoneagent.relays.sources.notifications import parse_notify
from protocol.alerts import (
    MAX_BODY_BYTES,
    AlertCategory,
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
)
from protocol.music import MusicCommand, MusicEvent, MusicState, Playback

ALL = RelayPolicy(granted=frozenset(Feature))
NOON = datetime(2026, 11, 25, 12, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingWatch:
    """Decodes what it is sent; its buttons are whatever the hub subscribed."""

    def __init__(self, address: str = "AA:BB:CC:DD:EE:01") -> None:
        self.address = address
        self.shown: dict[int, AlertNotification] = {}
        self.calls: list[CallState] = []
        self.music: list[MusicState] = []
        self.press: Callable[[CallAction], None] | None = None

    async def subscribe_relays(
        self,
        on_call_action: Callable[[CallAction], None],
        on_music_event: Callable[[MusicEvent], None],
    ) -> None:
        self.press = on_call_action

    async def write_alert(self, alert: AlertNotification) -> None:
        decoded = AlertNotification.decode(alert.encode())
        self.shown[decoded.notification_id] = decoded

    async def write_alert_removal(self, removal: AlertRemoval) -> None:
        self.shown.pop(AlertRemoval.decode(removal.encode()).notification_id, None)

    async def write_call_state(self, state: CallState) -> None:
        self.calls.append(CallState.decode(state.encode()))

    async def write_music_state(self, state: MusicState) -> None:
        self.music.append(MusicState.decode(state.encode()))


class Phone:
    """A call source: remembers what the watch asked of it."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def accept(self, key: str) -> None:
        self.asked.append(("accept", key))

    async def hangup(self, key: str) -> None:
        self.asked.append(("hangup", key))


def note(key: str, app: str = "chat", title: str = "Ann", body: str = "hi") -> Notification:
    return Notification("test", key, app, title, body, AlertCategory.MESSAGE)


def hub(policy: RelayPolicy = ALL, clock: Clock | None = None, **kwargs: float) -> RelayHub:
    return RelayHub(policy, clock=clock or Clock(), wall_clock=lambda: NOON, **kwargs)  # type: ignore[arg-type]


async def ringing() -> tuple[RelayHub, RecordingWatch, Phone, int]:
    """A hub with a watch attached, ringing: Mum calls through a ``Phone`` source."""
    relays = hub()
    watch = RecordingWatch()
    await relays.attach(watch)
    phone = Phone()
    call_id = await relays.call_event("test", "c1", CallStatus.INCOMING, "Mum", phone)
    assert call_id is not None
    return relays, watch, phone, call_id


async def test_nothing_is_held_or_sent_before_the_grant__PR_NOTIF() -> None:
    relays = hub(RelayPolicy())
    watch = RecordingWatch()
    await relays.attach(watch)
    assert await relays.notify(note("1")) == "notifications not granted"
    assert relays.status()["notifications_held"] == 0
    assert watch.shown == {}


async def test_queued_while_away_delivered_on_reconnect_if_still_valid__PR_NOTIF() -> None:
    clock = Clock()
    relays = hub(clock=clock, ttl_s=60)
    assert await relays.notify(note("old", title="old")) == "queued"
    clock.now += 30
    assert await relays.notify(note("new", title="new")) == "queued"
    clock.now += 40  # "old" is 70 s old, past its TTL; "new" is 40 s old
    watch = RecordingWatch()
    await relays.attach(watch)
    assert [a.title for a in watch.shown.values()] == ["new"]
    assert relays.status()["notifications_held"] == 1


async def test_expiry_takes_it_off_the_watch_and_out_of_memory__PR_NOTIF() -> None:
    clock = Clock()
    relays = hub(clock=clock, ttl_s=60)
    watch = RecordingWatch()
    await relays.attach(watch)
    assert await relays.notify(note("1")) == "delivered"
    clock.now += 61
    assert await relays.expire() == 1
    assert watch.shown == {}
    assert relays.status()["notifications_held"] == 0


async def test_bounded_count_dedup_and_truncation__PR_NOTIF() -> None:
    relays = hub(max_notifications=3)
    for n in range(5):
        await relays.notify(note(str(n), title=f"t{n}"))
    assert relays.status()["notifications_held"] == 3
    assert await relays.notify(note("again", title="t4")) == "duplicate"
    assert relays.status()["notifications_held"] == 3
    watch = RecordingWatch()
    await relays.attach(watch)
    assert sorted(a.title for a in watch.shown.values()) == ["t2", "t3", "t4"]
    await relays.notify(note("long", title="long", body="é" * 500))
    (long,) = [a for a in watch.shown.values() if a.title == "long"]
    assert len(long.body.encode()) <= MAX_BODY_BYTES and set(long.body) == {"é"}


async def test_replaced_and_closed_notifications_follow_the_source() -> None:
    relays = hub()
    watch = RecordingWatch()
    await relays.attach(watch)
    await relays.notify(note("7", body="first"))
    await relays.notify(note("7", body="second"))
    assert [a.body for a in watch.shown.values()] == ["second"]
    assert await relays.close_notification("test", "7")
    assert watch.shown == {}
    assert not await relays.close_notification("test", "7")


@pytest.mark.parametrize(
    ("policy", "app", "verdict"),
    [
        (RelayPolicy(granted=frozenset({Feature.NOTIFICATIONS})), "chat", None),
        (
            RelayPolicy(granted=frozenset({Feature.NOTIFICATIONS}), app_rules={"chat": False}),
            "chat",
            "app not allowed",
        ),
        (
            RelayPolicy(granted=frozenset({Feature.NOTIFICATIONS}), app_mode=AppMode.ALLOW_LIST),
            "chat",
            "app not allowed",
        ),
        (
            RelayPolicy(
                granted=frozenset({Feature.NOTIFICATIONS}),
                app_mode=AppMode.ALLOW_LIST,
                app_rules={"chat": True},
            ),
            "chat",
            None,
        ),
        (
            RelayPolicy(
                granted=frozenset({Feature.NOTIFICATIONS}),
                quiet_hours=QuietHours.parse("11:30-13:00"),
            ),
            "chat",
            "quiet hours",
        ),
        (RelayPolicy(granted=frozenset({Feature.CALLS})), "chat", "notifications not granted"),
    ],
)
def test_notification_gate__PR_NOTIF(policy: RelayPolicy, app: str, verdict: str | None) -> None:
    assert policy.notification_verdict(app, NOON) == verdict


def test_quiet_hours_span_midnight_and_refuse_nonsense() -> None:
    night = QuietHours.parse("22:00-07:00")
    assert night.contains(time(23, 59)) and night.contains(time(6, 59))
    assert not night.contains(time(7, 0)) and not night.contains(time(21, 59))
    assert str(night) == "22:00-07:00"
    for bad in ("22:00", "25:00-07:00", "07:00-07:00", "7-8"):
        with pytest.raises(RelayPermissionError):
            QuietHours.parse(bad)


def test_a_caller_number_never_becomes_a_display_name__PR_CALL() -> None:
    named = RelayPolicy(granted=frozenset({Feature.CALLS}))
    assert named.caller_display("Mum") == "Mum"
    assert named.caller_display("+44 20 7946 0000") == ""
    assert named.caller_display("(555) 123-4567") == ""
    assert named.caller_display(None) == ""
    hidden = RelayPolicy(granted=frozenset({Feature.CALLS}), call_privacy=CallPrivacy.HIDDEN)
    assert hidden.caller_display("Mum") == ""


async def test_call_rings_until_it_ends_on_the_phone__PR_CALL() -> None:
    relays, watch, _, call_id = await ringing()
    assert await relays.call_event("test", "c1", CallStatus.INCOMING) == call_id  # ignored
    await relays.call_event("test", "c1", CallStatus.ACCEPTED)
    await relays.call_event("test", "c1", CallStatus.ENDED)
    assert [(c.call_id, c.status, c.display_name) for c in watch.calls] == [
        (call_id, CallStatus.INCOMING, "Mum"),
        (call_id, CallStatus.ACCEPTED, "Mum"),
        (call_id, CallStatus.ENDED, "Mum"),
    ]
    assert relays.active_calls == []


async def test_watch_buttons_reach_the_phone_only_with_the_grant__PR_CALL() -> None:
    relays, watch, phone, call_id = await ringing()
    await relays.call_action(CallAction(call_id, CallActionKind.REJECT))
    await relays.call_action(CallAction(call_id, CallActionKind.MUTE))
    assert phone.asked == [("hangup", "c1")]
    await relays.set_policy(RelayPolicy())  # revoked while ringing: the watch stops ringing
    assert watch.calls[-1] == CallState(call_id, CallStatus.ENDED, "Mum")
    await relays.call_action(CallAction(call_id, CallActionKind.ACCEPT))
    assert phone.asked == [("hangup", "c1")]
    assert await relays.call_event("test", "c2", CallStatus.INCOMING, "Bob", phone) is None


async def test_revocation_withdraws_what_the_watch_shows__PR_WITHDRAW() -> None:
    relays = hub()
    watch = RecordingWatch()
    await relays.attach(watch)
    await relays.notify(note("1", app="chat"))
    await relays.notify(note("2", app="mail", title="Bob"))
    await relays.music_changed(MusicState(Playback.PLAYING, 50, 1, 100, "Song", "Band"))
    await relays.set_policy(
        RelayPolicy(granted=frozenset({Feature.NOTIFICATIONS}), app_rules={"chat": False})
    )
    assert [a.app for a in watch.shown.values()] == ["mail"]
    assert watch.music[-1] == CLEARED_MUSIC
    await relays.set_policy(RelayPolicy())
    assert watch.shown == {}
    assert relays.status()["notifications_held"] == 0


async def test_music_pushed_on_change_only__PR_MUSIC() -> None:
    relays = hub()
    watch = RecordingWatch()
    await relays.attach(watch)
    playing = MusicState(Playback.PLAYING, 50, 1, 100, "Song", "Band")
    await relays.music_changed(playing)
    await relays.music_changed(playing)
    assert watch.music == [playing]
    assert not await RelayHub(RelayPolicy()).music_event(MusicEvent(MusicCommand.PLAY))


def test_modem_states_map_to_the_watch_call_states() -> None:
    ringing, active, over = MMCallState.RINGING_IN, MMCallState.ACTIVE, MMCallState.TERMINATED
    assert call_status(ringing, active, 3, False) is CallStatus.ACCEPTED
    assert call_status(active, over, 4, False) is CallStatus.ENDED
    assert call_status(ringing, over, 4, True) is CallStatus.REJECTED
    assert call_status(ringing, over, 5, False) is CallStatus.REJECTED
    assert call_status(ringing, over, 4, False) is CallStatus.MISSED
    assert call_status(MMCallState.UNKNOWN, ringing, 2, False) is None


def test_notify_arguments_and_player_properties_parse() -> None:
    from dbus_fast import Variant

    hints = {"category": Variant("s", "im.received")}
    body = ["Chat", 0, "", "Ann", "<b>Hi</b> &amp; bye", [], hints, -1]
    assert parse_notify(body) == ("Chat", "Ann", "Hi & bye", AlertCategory.MESSAGE)
    props = {
        "PlaybackStatus": "Paused",
        "Volume": 0.42,
        "Position": 61_500_000,
        "Metadata": {
            "xesam:title": Variant("s", "Song"),
            "xesam:artist": Variant("as", ["A", "B"]),
            "mpris:length": Variant("x", 245_000_000),
        },
    }
    assert music_state(props) == MusicState(Playback.PAUSED, 42, 61, 245, "Song", "A, B")
