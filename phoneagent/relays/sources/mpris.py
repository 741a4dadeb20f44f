"""Now playing from MPRIS players on the session bus, and the watch's buttons back to them.

Players are the names ``org.mpris.MediaPlayer2.*``; the active one is the one that
played last (else the first seen). Its ``PlaybackStatus``, ``Metadata`` and ``Volume``
are followed through ``PropertiesChanged``; ``Position`` is not signalled by the spec,
so it is read whenever anything else changes or the player ``Seeked``. Nothing of it
is kept beyond the current state in the hub (PR-MUSIC).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from dbus_fast import DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from phoneagent.relays.hub import RelayHub
from phoneagent.relays.sources.bus import (
    DBUS,
    DBUS_PATH,
    PROPERTIES,
    add_match,
    call,
    connect,
    get_all,
)
from protocol.music import MAX_VOLUME, MusicCommand, MusicEvent, MusicState, Playback

log = logging.getLogger(__name__)

PREFIX: Final = "org.mpris.MediaPlayer2."
PATH: Final = "/org/mpris/MediaPlayer2"
PLAYER: Final = "org.mpris.MediaPlayer2.Player"
VOLUME_STEP: Final = 0.1
_PLAYBACK: Final = {"Playing": Playback.PLAYING, "Paused": Playback.PAUSED}
_METHODS: Final = {
    MusicCommand.PLAY: "Play",
    MusicCommand.PAUSE: "Pause",
    MusicCommand.NEXT: "Next",
    MusicCommand.PREVIOUS: "Previous",
}
_MICROS: Final = 1_000_000


def music_state(props: dict[str, Any]) -> MusicState:
    """The watch's view of a player's properties (times in whole seconds)."""
    meta = props.get("Metadata", {})
    value = {k: v.value if isinstance(v, Variant) else v for k, v in meta.items()}
    artists = value.get("xesam:artist", [])
    artist = ", ".join(artists) if isinstance(artists, list) else str(artists)
    duration = max(int(value.get("mpris:length", 0)) // _MICROS, 0)
    position = max(int(props.get("Position", 0)) // _MICROS, 0)
    if duration:
        position = min(position, duration)
    volume = round(float(props.get("Volume", 1.0)) * MAX_VOLUME)
    return MusicState.truncated(
        _PLAYBACK.get(str(props.get("PlaybackStatus", "")), Playback.STOPPED),
        min(max(volume, 0), MAX_VOLUME),
        position,
        duration,
        str(value.get("xesam:title", "")),
        artist,
    )


class MprisSource:
    """Follows the session bus's media players; the hub's music control while one exists."""

    def __init__(self, hub: RelayHub, bus_address: str | None = None) -> None:
        self._hub = hub
        self._address = bus_address
        self._bus: MessageBus | None = None
        self._owners: dict[str, str] = {}  # unique name -> player's well-known name
        self.active: str | None = None
        self._refresh: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and follow players. Raises ``BusUnavailableError``."""
        bus = await connect(self._address)
        self._bus = bus
        bus.add_message_handler(self._on_message)
        await add_match(bus, f"type='signal',interface='{PROPERTIES}',path='{PATH}'")
        await add_match(bus, f"type='signal',interface='{PLAYER}',member='Seeked'")
        await add_match(
            bus,
            f"type='signal',sender='{DBUS}',member='NameOwnerChanged',arg0namespace='org.mpris'",
        )
        (names,) = await call(bus, DBUS, DBUS_PATH, DBUS, "ListNames")
        for name in names:
            if name.startswith(PREFIX):
                owner = await call(bus, DBUS, DBUS_PATH, DBUS, "GetNameOwner", "s", [name])
                self._owners[str(owner[0])] = name
        self._worker = asyncio.create_task(self._work(), name="mpris source")
        if self._owners:
            self._refresh.put_nowait(next(iter(self._owners.values())))

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type is not MessageType.SIGNAL:
            return False
        if msg.member == "NameOwnerChanged" and msg.sender == DBUS:
            name, old, new = (str(x) for x in msg.body)
            if name.startswith(PREFIX):
                self._owners.pop(old, None)
                if new:
                    self._owners[new] = name
                    self._refresh.put_nowait(name)
                elif name == self.active:
                    self._refresh.put_nowait(None)  # the active player went away
        elif (
            msg.path == PATH
            and msg.sender in self._owners
            and (
                msg.member == "Seeked"
                or (msg.member == "PropertiesChanged" and msg.body[0] == PLAYER)
            )
        ):
            self._refresh.put_nowait(self._owners[msg.sender])
        return False

    async def _work(self) -> None:
        while True:
            name = await self._refresh.get()
            try:
                await self._update(name)
            except DBusError as error:
                log.info("music player did not answer: %s", error.type)

    async def _update(self, name: str | None) -> None:
        """Re-read ``name`` (None: pick another player) and publish the active player's state."""
        bus = self._bus
        if bus is None:
            return
        if name is None:
            name = next(iter(self._owners.values()), None)
            self.active = name
            if name is None:
                self._hub.set_music_control(None)
                await self._hub.music_changed(None)
                return
        props = await get_all(bus, name, PATH, PLAYER)
        state = music_state(props)
        if self.active is None or state.playback is Playback.PLAYING:
            self.active = name
        if name != self.active:
            return
        self._hub.set_music_control(self)
        await self._hub.music_changed(state)

    async def command(self, event: MusicEvent) -> None:
        """A watch button, on the active player."""
        bus, name = self._bus, self.active
        if bus is None or name is None:
            return
        method = _METHODS.get(event.command)
        if method is not None:
            await call(bus, name, PATH, PLAYER, method)
            return
        if event.command is MusicCommand.SET_VOLUME and event.volume is not None:
            volume = event.volume / MAX_VOLUME
        else:
            (current,) = await call(bus, name, PATH, PROPERTIES, "Get", "ss", [PLAYER, "Volume"])
            step = VOLUME_STEP if event.command is MusicCommand.VOLUME_UP else -VOLUME_STEP
            volume = min(max(float(current.value) + step, 0.0), 1.0)
        await call(
            bus, name, PATH, PROPERTIES, "Set", "ssv", [PLAYER, "Volume", Variant("d", volume)]
        )

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._bus is not None:
            self._bus.disconnect()
