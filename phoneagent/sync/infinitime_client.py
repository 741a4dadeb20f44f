"""InfiniTime's GATT profile as typed calls over one connected ``BleakClient``: live values
in, and the relay hub's notifications, calls and music out in InfiniTime's formats (a
``phoneagent.relays.hub.WatchSink``).

What InfiniTime cannot show is said here once (docs/infinitime.md): it has no way to
take a notification back (a removal is not sent), no "call ended" (the agent sends a
short alert instead: "Missed call" with the caller for a missed one, "Call ended" for one
rejected or hung up elsewhere, and forgets the call so that a later button press on the
stale call screen is dropped), no call id (a button answers the call last shown) and no
volume level.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime
from typing import Final

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from phoneagent.sync.watch_client import DeviceInfo, WatchClient
from protocol import infinitime as it
from protocol import uuids
from protocol._bytes import Reader
from protocol.alerts import (
    AlertCategory,
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
)
from protocol.errors import ProtocolError
from protocol.heart_rate import HeartRateMeasurement
from protocol.music import MusicCommand, MusicEvent, MusicState, Playback

_CATEGORIES: Final = {
    AlertCategory.OTHER: it.AlertCategory.SIMPLE_ALERT,
    AlertCategory.MESSAGE: it.AlertCategory.INSTANT_MESSAGE,
    AlertCategory.EMAIL: it.AlertCategory.EMAIL,
    AlertCategory.SOCIAL: it.AlertCategory.INSTANT_MESSAGE,
    AlertCategory.CALENDAR: it.AlertCategory.SCHEDULE,
}
_BUTTONS: Final[dict[int, CallActionKind]] = {
    it.CallResponse.REJECT: CallActionKind.REJECT,
    it.CallResponse.ANSWER: CallActionKind.ACCEPT,
    it.CallResponse.MUTE: CallActionKind.MUTE,
}
_MUSIC: Final[dict[int, MusicCommand]] = {
    code: MusicCommand[code.name]
    for code in it.MusicEventCode
    if code.name in MusicCommand.__members__
}
UNKNOWN_CALLER: Final = "Unknown caller"


def alert_bytes(category: it.AlertCategory, *parts: str) -> bytes:
    """New Alert: the 3-byte header, then the NUL-separated parts, cut to what InfiniTime
    keeps (at a character boundary, so the screen shows no broken character)."""
    message = "\x00".join(parts).encode()[: it.ALERT_MESSAGE_MAX]
    text = message.decode("utf-8", errors="ignore").encode()
    return it.NewAlert(category, 1, text).encode()


class InfiniTimeClient:
    """A connected InfiniTime watch: its live values, its clock and the relays."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self._sig = WatchClient(client)  # Device Information and Current Time are SIG's
        self._call: int | None = None  # the call the watch shows (it names none)

    @property
    def address(self) -> str:
        return self._sig.address

    async def read_device_info(self) -> DeviceInfo:
        return await self._sig.read_device_info()

    async def set_clock(self, clock: Callable[[], datetime]) -> bool:
        return await self._sig.set_clock(clock)

    # --- live values -------------------------------------------------------------------

    async def read_step_count(self) -> int:
        return _steps(bytes(await self.client.read_gatt_char(it.STEP_COUNT)))

    async def subscribe_live(
        self, on_steps: Callable[[int], None], on_bpm: Callable[[int], None]
    ) -> None:
        """Step Count (cumulative since local midnight) and Heart Rate notifications; a
        garbled value is dropped, never guessed."""

        def steps(_: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                on_steps(_steps(bytes(data)))
            except ProtocolError:
                return

        def bpm(_: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                on_bpm(HeartRateMeasurement.decode(bytes(data)).bpm)
            except ProtocolError:
                return

        await self.client.start_notify(it.STEP_COUNT, steps)
        await self.client.start_notify(uuids.HEART_RATE_MEASUREMENT, bpm)

    # --- relays: the hub's WatchSink -------------------------------------------------

    async def subscribe_relays(
        self,
        on_call_action: Callable[[CallAction], None],
        on_music_event: Callable[[MusicEvent], None],
    ) -> None:
        def call_event(_: BleakGATTCharacteristic, data: bytearray) -> None:
            if self._call is None or len(data) != 1 or data[0] not in _BUTTONS:
                return
            on_call_action(CallAction(self._call, _BUTTONS[data[0]]))

        def music_event(_: BleakGATTCharacteristic, data: bytearray) -> None:
            command = _MUSIC.get(data[0]) if len(data) == 1 else None
            if command is not None:  # "music app opened" asks nothing of a player
                on_music_event(MusicEvent(command))

        await self.client.start_notify(it.CALL_EVENT, call_event)
        await self.client.start_notify(it.MUSIC_EVENT, music_event)

    async def write_alert(self, alert: AlertNotification) -> None:
        title = alert.title or alert.app
        await self._alert(alert_bytes(_CATEGORIES[alert.category], title, alert.body))

    async def write_alert_removal(self, removal: AlertRemoval) -> None:
        """InfiniTime cannot take a notification back: it stays until the wearer clears it."""

    async def write_call_state(self, state: CallState) -> None:
        if state.status is CallStatus.INCOMING:
            self._call = state.call_id
            name = state.display_name or UNKNOWN_CALLER
            await self._alert(alert_bytes(it.AlertCategory.CALL, name))
        elif state.status is not CallStatus.ACCEPTED and state.call_id == self._call:
            self._call = None
            if state.status is CallStatus.MISSED:
                name = state.display_name or UNKNOWN_CALLER
                await self._alert(alert_bytes(it.AlertCategory.MISSED_CALL, "Missed call", name))
            else:
                await self._alert(alert_bytes(it.AlertCategory.SIMPLE_ALERT, "Call ended"))

    async def write_music_state(self, state: MusicState) -> None:
        """Status, track, artist, position and length (big-endian, as InfiniTime reads
        them); the album is left empty, the volume has no place."""
        playing = b"\x01" if state.playback is Playback.PLAYING else b"\x00"
        writes = (
            (it.MUSIC_TRACK, state.title.encode()),
            (it.MUSIC_ARTIST, state.artist.encode()),
            (it.MUSIC_ALBUM, b""),
            (it.MUSIC_POSITION, struct.pack(">I", state.position_s)),
            (it.MUSIC_LENGTH, struct.pack(">I", state.duration_s)),
            (it.MUSIC_STATUS, playing),
        )
        for uuid, value in writes:
            await self.client.write_gatt_char(uuid, value, True)

    async def _alert(self, value: bytes) -> None:
        await self.client.write_gatt_char(it.NEW_ALERT, value, True)


def _steps(data: bytes) -> int:
    reader = Reader(data, "Step Count")
    steps = reader.u32("steps")
    reader.end()
    return steps
