"""The relay sources on real D-Bus daemons (private ones, started per test).

Phone side: the standard freedesktop ``Notify`` call, a fake MPRIS player and a fake
ModemManager, each a dbus-fast service written here. Watch side: a loopback watchsim
watch, paired and live-synced. The last test runs everything and then searches the
agent's data directory, decrypted database and logs for any of the content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from bumble.link import LocalLink
from dbus_fast import Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusDict,
    DBusDouble,
    DBusInt32,
    DBusInt64,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt32,
)
from dbus_fast.service import ServiceInterface, dbus_property, method, signal

from phoneagent.logs import setup_logging
from phoneagent.relays.permissions import Feature
from phoneagent.relays.service import RelayService
from phoneagent.relays.sources import modem, mpris, notifications
from phoneagent.store import Store
from phoneagent.store.db import connect
from tests.dbus_session import private_bus
from tests.integration.test_relays import Rig, hub_log, relay_rig, shown
from tests.integration.test_sync_engine import KEY, WAIT
from watchsim.control import request as ctl
from watchsim.controlops import Music, Press, Volume

pytestmark = pytest.mark.system

# Content that must never reach the disk: the scan looks for each of these.
TITLE = "Dinner-7f3a at Ann's"
BODY = "Bring the 9c2e wine"
CALLER = "Ursula Q. Caller"
NUMBER = "+44 20 7946 0123"
TRACK = "Nocturne-4b1d"
ARTIST = "Pianist-e58a"
SECRETS = (TITLE, BODY, CALLER, NUMBER, "2079460123", "7946 0123", TRACK, ARTIST)


@contextlib.asynccontextmanager
async def connected(address: str) -> AsyncIterator[MessageBus]:
    bus = await MessageBus(bus_address=address).connect()
    try:
        yield bus
    finally:
        bus.disconnect()


async def _notifications(
    bus: MessageBus, member: str, signature: str, body: list[Any]
) -> Message | None:
    """A call to the standard ``org.freedesktop.Notifications`` service."""
    return await bus.call(
        Message(
            destination=notifications.NAME,
            path=notifications.PATH,
            interface=notifications.NAME,
            member=member,
            signature=signature,
            body=body,
        )
    )


async def notify(bus: MessageBus, app: str, title: str, body: str, replaces: int = 0) -> int:
    """The standard ``Notify`` call, as any desktop app sends it."""
    reply = await _notifications(
        bus,
        "Notify",
        "susssasa{sv}i",
        [app, replaces, "", title, body, [], {"urgency": Variant("y", 1)}, -1],
    )
    assert reply is not None and reply.message_type is MessageType.METHOD_RETURN, reply
    return int(reply.body[0])


async def close(bus: MessageBus, notification_id: int) -> None:
    await _notifications(bus, "CloseNotification", "u", [notification_id])


# --- fakes of the phone's services ---------------------------------------------------
# dbus-fast reads annotations as D-Bus signatures: a method that returns nothing has no
# return annotation at all (``-> None`` would be taken for a signature and refused).


class FakeNotificationServer(ServiceInterface):
    """A desktop notification daemon: the agent must monitor it, not replace it."""

    def __init__(self) -> None:
        super().__init__(notifications.NAME)
        self.next_id = 100

    @method()
    def Notify(
        self,
        app_name: DBusStr,
        replaces_id: DBusUInt32,
        app_icon: DBusStr,
        summary: DBusStr,
        body: DBusStr,
        actions: Annotated[list[str], DBusSignature("as")],
        hints: DBusDict,
        expire_timeout: DBusInt32,
    ) -> DBusUInt32:
        self.next_id += 1
        return self.next_id

    @method()
    def CloseNotification(self, notification_id: DBusUInt32):
        self.NotificationClosed(notification_id, 3)

    @signal()
    def NotificationClosed(
        self, notification_id: int, reason: int
    ) -> Annotated[list[int], DBusSignature("uu")]:
        return [notification_id, reason]


class FakePlayer(ServiceInterface):
    """An MPRIS player that records the buttons pressed on it."""

    def __init__(self) -> None:
        super().__init__(mpris.PLAYER)
        self.status = "Playing"
        self.volume = 0.5
        self.pressed: asyncio.Queue[str] = asyncio.Queue()

    def _press(self, name: str, status: str | None = None) -> None:
        self.pressed.put_nowait(name)
        if status is not None:
            self.status = status
            self.emit_properties_changed({"PlaybackStatus": status})

    @method()
    def Play(self):
        self._press("Play", "Playing")

    @method()
    def Pause(self):
        self._press("Pause", "Paused")

    @method()
    def Next(self):
        self._press("Next")

    @method()
    def Previous(self):
        self._press("Previous")

    @dbus_property(access=PropertyAccess.READ)
    def PlaybackStatus(self) -> DBusStr:
        return self.status

    @dbus_property(access=PropertyAccess.READ)
    def Metadata(self) -> DBusDict:
        return {
            "xesam:title": Variant("s", TRACK),
            "xesam:artist": Variant("as", [ARTIST]),
            "mpris:length": Variant("x", 300_000_000),
        }

    @dbus_property(access=PropertyAccess.READ)
    def Position(self) -> DBusInt64:
        return 42_000_000

    @dbus_property()
    def Volume(self) -> DBusDouble:
        return self.volume

    @Volume.setter  # type: ignore[no-redef]
    def Volume(self, value: DBusDouble):
        self.volume = value
        self.pressed.put_nowait(f"Volume {value:.2f}")


class FakeCall(ServiceInterface):
    """One ModemManager call object; its number is set but must never be read."""

    def __init__(self) -> None:
        super().__init__(modem.CALL)
        self.state = modem.MMCallState.RINGING_IN
        self.asked: asyncio.Queue[str] = asyncio.Queue()
        self.number_reads = 0

    def change(self, new: modem.MMCallState, reason: int) -> None:
        old, self.state = self.state, new
        self.StateChanged(int(old), int(new), reason)

    @method()
    def Accept(self):
        self.asked.put_nowait("Accept")

    @method()
    def Hangup(self):
        self.asked.put_nowait("Hangup")

    @signal()
    def StateChanged(
        self, old: int, new: int, reason: int
    ) -> Annotated[list[int], DBusSignature("iiu")]:
        return [old, new, reason]

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> DBusInt32:
        return int(self.state)

    @dbus_property(access=PropertyAccess.READ)
    def Direction(self) -> DBusInt32:
        return modem.DIRECTION_INCOMING

    @dbus_property(access=PropertyAccess.READ)
    def Number(self) -> DBusStr:
        self.number_reads += 1
        return NUMBER


class FakeVoice(ServiceInterface):
    def __init__(self) -> None:
        super().__init__(modem.VOICE)

    @signal()
    def CallAdded(self, path: str) -> DBusObjectPath:
        return path


class FakeModemManager:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.voice = FakeVoice()
        self.calls = 0
        bus.export("/org/freedesktop/ModemManager1/Modem/0", self.voice)

    def ring(self) -> FakeCall:
        self.calls += 1
        call = FakeCall()
        path = f"/org/freedesktop/ModemManager1/Call/{self.calls}"
        self.bus.export(path, call)
        call.number_reads = 0  # exporting announces every property; the agent's reads count
        self.voice.CallAdded(path)
        return call


@contextlib.asynccontextmanager
async def modem_manager() -> AsyncIterator[tuple[str, FakeModemManager]]:
    with private_bus() as address:
        async with connected(address) as bus:
            manager = FakeModemManager(bus)
            await bus.request_name(modem.NAME)
            yield address, manager


async def granted(rig: Rig, *features: Feature) -> None:
    for feature in features:
        rig.grant(feature)
    await rig.service.reload()


# --- tests -----------------------------------------------------------------------------


async def test_notify_reaches_the_watch_only_when_granted_and_allowed__PR_NOTIF(
    link: LocalLink, tmp_path: Path, session_bus: str
) -> None:
    async with (
        relay_rig(link, tmp_path, session_bus=session_bus, system_bus=session_bus) as rig,
        connected(session_bus) as app,
    ):
        assert rig.service.sources["notifications"] == "server"  # nobody else owned the name
        await notify(app, "Chat", "before the grant", "x")
        await granted(rig, Feature.NOTIFICATIONS)
        rig.grant(Feature.NOTIFICATIONS, False, app="Spam")
        await rig.service.reload()
        await notify(app, "Spam", "an ad", "x")
        chat_id = await notify(app, "Chat", "Ann", "Hi <b>there</b>")
        status = await rig.screen.until(lambda s: shown(s) != [], "the chat notification")
        assert status["notifications"] == [
            {"id": status["notifications"][0]["id"], "category": "other", "app": "Chat",
             "title": "Ann", "body": "Hi there"}
        ]  # fmt: skip
        await notify(app, "Chat", "Ann", "edited", replaces=chat_id)
        await rig.screen.until(lambda s: s["notifications"][0]["body"] == "edited", "the edit")
        await close(app, chat_id)
        await rig.screen.until(lambda s: s["notifications"] == [], "the closed notification gone")


async def test_an_existing_notification_daemon_is_monitored_not_replaced__PR_NOTIF(
    link: LocalLink, tmp_path: Path, session_bus: str
) -> None:
    async with connected(session_bus) as desktop:
        desktop.export(notifications.PATH, FakeNotificationServer())
        await desktop.request_name(notifications.NAME)
        async with (
            relay_rig(link, tmp_path, session_bus=session_bus, system_bus=session_bus) as rig,
            connected(session_bus) as app,
        ):
            assert rig.service.sources["notifications"] == "monitor"
            await granted(rig, Feature.NOTIFICATIONS)
            first = await notify(app, "Chat", "Ann", "Hi")
            assert first == 101  # the desktop's daemon answered, not the agent
            await rig.screen.until(lambda s: shown(s) == ["Ann"], "the monitored notification")
            await close(app, first)  # the daemon emits NotificationClosed
            await rig.screen.until(lambda s: s["notifications"] == [], "the closed one gone")


async def test_a_bus_that_refuses_monitoring_leaves_the_other_sources_on(
    tmp_path: Path,
) -> None:
    refuse = (
        '<deny send_destination="org.freedesktop.DBus"'
        ' send_interface="org.freedesktop.DBus.Monitoring" send_member="BecomeMonitor"/>'
    )
    with private_bus(refuse) as bus:
        async with connected(bus) as desktop:
            desktop.export(notifications.PATH, FakeNotificationServer())
            await desktop.request_name(notifications.NAME)
            store = Store.open(tmp_path / "agent", KEY)
            service = RelayService(store, tmp_path / "agent", session_bus=bus, system_bus=bus)
            try:
                await service.start()  # no exception: the refusal only turns one source off
                assert service.sources == {"music": "mpris"}
            finally:
                await service.aclose()
                store.close()


async def test_mpris_player_obeys_the_watch_only_with_music_granted__PR_MUSIC(
    link: LocalLink, tmp_path: Path, session_bus: str
) -> None:
    async with connected(session_bus) as player_bus:
        player = FakePlayer()
        player_bus.export(mpris.PATH, player)
        await player_bus.request_name(mpris.PREFIX + "fake")
        async with relay_rig(
            link, tmp_path, session_bus=session_bus, system_bus=session_bus
        ) as rig:
            state_dir = rig.watch.app.config.state_dir
            with hub_log() as lines:
                await ctl(state_dir, Music("pause"))
                async with asyncio.timeout(WAIT):
                    assert await lines.get() == "music button pause dropped"
            assert player.pressed.empty()
            assert rig.watch.app.status()["music"] is None  # nothing pushed without the grant

            await granted(rig, Feature.MUSIC)
            status = await rig.screen.until(lambda s: s["music"] is not None, "now playing")
            assert status["music"] == {
                "playback": "playing", "title": TRACK, "artist": ARTIST, "volume": 50,
                "position_s": 42, "duration_s": 300,
            }  # fmt: skip
            await ctl(state_dir, Music("pause"))
            async with asyncio.timeout(WAIT):
                assert await player.pressed.get() == "Pause"
            await rig.screen.until(lambda s: s["music"]["playback"] == "paused", "paused")
            await ctl(state_dir, Music("play"))
            await ctl(state_dir, Volume(80))
            async with asyncio.timeout(WAIT):
                assert [await player.pressed.get() for _ in range(2)] == ["Play", "Volume 0.80"]


async def test_modem_calls_stop_ringing_and_reject_reaches_the_modem__PR_CALL(
    link: LocalLink, tmp_path: Path, session_bus: str
) -> None:
    async with (
        modem_manager() as (system_bus, manager),
        relay_rig(link, tmp_path, session_bus=session_bus, system_bus=system_bus) as rig,
    ):
        assert rig.service.sources["calls"] == "modemmanager"
        await granted(rig, Feature.CALLS)
        call = manager.ring()
        status = await rig.screen.until(lambda s: s["calls"] != [], "the modem call ringing")
        assert status["calls"][0]["name"] == ""  # a number is all the modem knows: hidden
        call.change(modem.MMCallState.ACTIVE, 3)
        await rig.screen.until(lambda s: s["calls"][0]["state"] == "accepted", "answered")
        call.change(modem.MMCallState.TERMINATED, 4)
        status = await rig.screen.until(lambda s: s["calls"] == [], "ringing stopped")
        assert status["recent_calls"][0]["state"] == "ended"

        second = manager.ring()
        await rig.screen.until(lambda s: s["calls"] != [], "the second call ringing")
        await ctl(rig.watch.app.config.state_dir, Press("reject"))
        async with asyncio.timeout(WAIT):
            assert await second.asked.get() == "Hangup"
        second.change(modem.MMCallState.TERMINATED, 4)
        status = await rig.screen.until(lambda s: s["calls"] == [], "the rejected call gone")
        assert status["recent_calls"][0]["state"] == "rejected"
        assert call.number_reads == second.number_reads == 0  # not even into memory


def _database_text(directory: Path) -> str:
    """Every row of every table, decrypted."""
    with Store.open(directory, KEY) as store:
        tables = store.ledger.table_columns()
        conn = connect(store.path, KEY)
        try:
            rows = [
                repr(row)
                for name in tables
                for row in conn.execute(f"SELECT * FROM {name}").fetchall()
            ]
        finally:
            conn.close()
    assert rows, "the database should hold the device, bond and consent ledger"
    return "\n".join(rows)


def _files(directory: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


async def test_nothing_of_the_relayed_content_reaches_the_disk__PR_NOTIF_PR_CALL_PR_MUSIC(
    link: LocalLink, tmp_path: Path, session_bus: str
) -> None:
    data_dir = tmp_path / "agent"
    data_dir.mkdir(mode=0o700)
    agent_log = logging.getLogger("phoneagent")
    handler = setup_logging(data_dir, logging.DEBUG, logger=agent_log)
    try:
        async with (
            connected(session_bus) as player_bus,
            modem_manager() as (system_bus, manager),
        ):
            player = FakePlayer()
            player_bus.export(mpris.PATH, player)
            await player_bus.request_name(mpris.PREFIX + "fake")
            async with (
                relay_rig(link, tmp_path, session_bus=session_bus, system_bus=system_bus) as rig,
                connected(session_bus) as app,
            ):
                await granted(rig, Feature.NOTIFICATIONS, Feature.CALLS, Feature.MUSIC)
                await notify(app, "Chat", TITLE, BODY)
                await rig.screen.until(lambda s: shown(s) == [TITLE], "the notification")
                await rig.inject(op="call", state="incoming", caller=CALLER)
                await rig.screen.until(lambda s: s["calls"] != [], "the injected call")
                await ctl(rig.watch.app.config.state_dir, Press("reject"))
                await rig.inject(op="call", state="incoming", caller=NUMBER)
                manager.ring()
                await rig.screen.until(lambda s: len(s["calls"]) == 2, "two calls ringing")
                await rig.screen.until(lambda s: (s["music"] or {}).get("title") == TRACK, "music")
                await ctl(rig.watch.app.config.state_dir, Music("next"))
                async with asyncio.timeout(WAIT):
                    assert await player.pressed.get() == "Next"
                await rig.cli("permissions", "revoke", "notifications")
                await rig.cli("inject", "status")
    finally:
        agent_log.removeHandler(handler)
        handler.close()

    logs = list((data_dir / "logs").glob("*"))
    assert logs and any(p.stat().st_size for p in logs), "the agent should have logged"
    found = [(s, "database") for s in SECRETS if s in _database_text(data_dir)]
    for path, data in _files(data_dir):
        found += [(s, str(path)) for s in SECRETS if s.encode() in data]
    assert found == []
