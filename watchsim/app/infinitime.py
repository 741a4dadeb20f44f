"""The InfiniTime personality: the same wearer, clock and scenarios behind InfiniTime
1.15's GATT table (``protocol.infinitime``), for companions written for a PineTime.

What differs from our own watch (``docs/infinitime.md``): no history is served (the
model's samples are still kept in the state dir, so restarts keep their timeline, but
nothing on the air reads them: a companion gets live values only); nothing needs an
encrypted link (bonding with a passkey stays possible); notifications, calls and music
take InfiniTime's formats; weather and navigation writes are shown in the status. DFU
and the file system answer every request with the refusal InfiniTime's own error codes
give (``protocol.infinitime.dfu_refusal``, ``fs_refusal``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Final

from protocol import infinitime as it
from protocol import uuids
from protocol.alerts import CallActionKind
from protocol.metrics import Metric
from protocol.music import MusicCommand
from watchsim.app.device_info_service import constant
from watchsim.app.live import Push
from watchsim.app.radios import Radio
from watchsim.app.relays import RelayError, RelayScreen, send_to
from watchsim.app.time_service import TimeService
from watchsim.app.watch import WatchApp, WatchConfig
from watchsim.model import Measurement, WatchState
from watchsim.peripheral.port import Peer, Peripheral

# InfiniTime keeps this many notifications (NotificationManager::TotalNbNotifications).
MAX_NOTIFICATIONS: Final = 5
SECURITY_NOTE: Final = (
    "InfiniTime personality: no characteristic needs encryption (anyone in range may read "
    "and write every value); pairing with a passkey is optional"
)
_CALL_BUTTONS: Final = {
    CallActionKind.ACCEPT: it.CallResponse.ANSWER,
    CallActionKind.REJECT: it.CallResponse.REJECT,
    CallActionKind.MUTE: it.CallResponse.MUTE,
}
# Wrist tilted about 30 degrees, in binary milli-g (1 g = 1024).
_WRIST_Y, _WRIST_Z = -512, 887
_SWING_PER_STEP: Final = 200
Writer = Callable[[Peer, bytes], Awaitable[None]]
_NAVIGATION_FIELDS: Final = {
    it.NAVIGATION_FLAG: "flag",
    it.NAVIGATION_NARRATIVE: "narrative",
    it.NAVIGATION_DISTANCE: "distance",
    it.NAVIGATION_PROGRESS: "progress",
}


def motion(state: WatchState, steps_before: int) -> bytes:
    """Raw motion from the model: flat face up off the wrist; on it, tilted, with the
    arm swinging by the steps of the last second."""
    if not state.on_wrist:
        return it.raw_motion(0, 0, 1024)
    swing = min(1024, _SWING_PER_STEP * max(0, state.steps_today - steps_before))
    side = 1 if state.steps_today % 2 else -1
    return it.raw_motion(side * swing, _WRIST_Y, _WRIST_Z)


class InfiniTimeRelays(RelayScreen):
    """InfiniTime's notification list, call screen and music app."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._peripheral: Peripheral | None = None
        self._on_change = on_change
        self.notifications: deque[str] = deque(maxlen=MAX_NOTIFICATIONS)
        self.call: str | None = None  # the caller of the ringing or answered call
        self.call_muted = False
        self.music: dict[str, Any] = {
            "playing": False,
            "artist": "Waiting for",  # what InfiniTime shows before the first write
            "track": "track information..",
            "album": "",
            "position_s": 0,
            "length_s": 0,
            "track_number": 0,
            "track_total": 0,
            "playback_speed": 1.0,
            "repeat": False,
            "shuffle": False,
        }

    def attach(self, peripheral: Peripheral | None) -> None:
        self._peripheral = peripheral
        if peripheral is None:
            return
        peripheral.set_write_handler(it.NEW_ALERT, self._on_new_alert)
        texts = {it.MUSIC_ARTIST: "artist", it.MUSIC_TRACK: "track", it.MUSIC_ALBUM: "album"}
        for uuid, key in texts.items():
            peripheral.set_write_handler(uuid, self._music_text(key))
        numbers = {
            it.MUSIC_POSITION: "position_s",
            it.MUSIC_LENGTH: "length_s",
            it.MUSIC_TRACK_NUMBER: "track_number",
            it.MUSIC_TRACK_TOTAL: "track_total",
            it.MUSIC_PLAYBACK_SPEED: "playback_speed",
        }
        for uuid, key in numbers.items():
            peripheral.set_write_handler(uuid, self._music_number(uuid, key))
        flags = {it.MUSIC_STATUS: "playing", it.MUSIC_REPEAT: "repeat", it.MUSIC_SHUFFLE: "shuffle"}
        for uuid, key in flags.items():
            peripheral.set_write_handler(uuid, self._music_flag(uuid, key))

    def show(self, message: str) -> None:
        """A simple alert on screen (also Immediate Alert's "Alert : High")."""
        self.notifications.appendleft(message)
        self._on_change(f"notification: {message}")

    # --- phone -> watch ------------------------------------------------------------------

    async def _on_new_alert(self, _peer: Peer, value: bytes) -> None:
        alert = it.NewAlert.decode(value)
        if alert is None:
            return  # a header alone: InfiniTime ignores it
        parts = alert.parts
        if alert.is_call:
            self.call, self.call_muted = (parts[0] if parts else "unknown caller"), False
            self._on_change(f"incoming call: {self.call}")
        else:
            self.show(" / ".join(parts))

    def _music_text(self, key: str) -> Writer:
        async def write(_peer: Peer, value: bytes) -> None:
            self.music[key] = it.music_text(value)
            self._on_change(f"music {key}: {self.music[key]}")

        return write

    def _music_number(self, uuid: str, key: str) -> Writer:
        name = it.CHARACTERISTIC_NAMES[uuid]

        async def write(_peer: Peer, value: bytes) -> None:
            number = it.music_u32(value, name)
            self.music[key] = number / 100 if key == "playback_speed" else number

        return write

    def _music_flag(self, uuid: str, key: str) -> Writer:
        name = it.CHARACTERISTIC_NAMES[uuid]

        async def write(_peer: Peer, value: bytes) -> None:
            self.music[key] = it.music_flag(value, name)
            if key == "playing":
                self._on_change("music playing" if self.music[key] else "music paused")

        return write

    # --- watch buttons -> phone ---------------------------------------------------------

    async def press(self, action: CallActionKind) -> dict[str, Any]:
        """A button of the call screen; InfiniTime's screen closes on answer or reject."""
        if self.call is None:
            raise RelayError("no call on screen (InfiniTime shows a call from a New Alert 0x03)")
        caller = self.call
        response = _CALL_BUTTONS[action]
        sent = await send_to(self._peripheral, it.CALL_EVENT, bytes([response]))
        if action is CallActionKind.MUTE:
            self.call_muted = True
        else:
            self.call = None
        self._on_change(f"pressed {response.name.lower()} on the call from {caller}")
        return {"caller": caller, "action": response.name.lower(), "sent_to": sent}

    async def music_command(self, command: MusicCommand, volume: int | None = None) -> int:
        if command is MusicCommand.SET_VOLUME:
            raise RelayError("InfiniTime's music app has no volume level: use volume-up/down")
        code = it.MusicEventCode[command.name]
        sent = await send_to(self._peripheral, it.MUSIC_EVENT, bytes([code]))
        self._on_change(f"music button {command.name.lower()}")
        return sent

    def status(self) -> dict[str, Any]:
        return {
            "notifications": list(self.notifications),
            "call": None if self.call is None else {"caller": self.call, "muted": self.call_muted},
            "music": dict(self.music),
        }


class InfiniTimeApp(WatchApp):
    """A PineTime running InfiniTime 1.15, driven by the same model as our watch."""

    profile = it.PROFILE

    def __init__(self, config: WatchConfig, radio: Radio) -> None:
        super().__init__(config, radio)
        self.weather: dict[str, Any] | None = None
        self.forecast: dict[str, Any] | None = None
        self.navigation: dict[str, Any] = {
            "flag": "",
            "narrative": "",
            "distance": "",
            "progress": 0,
        }
        self._steps: int | None = None
        self._battery: int | None = None
        self._motion = it.raw_motion(0, 0, 1024)  # the newest tick's, also what a read gets

    def _new_relays(self) -> InfiniTimeRelays:
        return InfiniTimeRelays(self.log)

    @property
    def screens(self) -> InfiniTimeRelays:
        assert isinstance(self.relays, InfiniTimeRelays)
        return self.relays

    async def _advertise(self, peripheral: Peripheral) -> None:
        await peripheral.start_advertising(
            self.config.name,
            it.APPEARANCE,
            it.ADVERTISED_SERVICE_UUIDS,
            name_in_scan_response=True,
        )

    # --- the GATT table -----------------------------------------------------------------

    def _bind(self, peripheral: Peripheral) -> None:
        constants = {uuid: text.encode() for uuid, text in it.DEVICE_INFORMATION.items()}
        constants[it.DFU_REVISION] = it.DFU_REVISION_VALUE
        constants[it.FS_VERSION] = it.FS_VERSION_VALUE
        for uuid, value in constants.items():
            peripheral.set_read_handler(uuid, constant(value))
        model = self.model
        peripheral.set_read_handler(uuids.BATTERY_LEVEL, lambda: self.live.battery(model.state()))
        peripheral.set_read_handler(
            uuids.HEART_RATE_MEASUREMENT, lambda: it.heart_rate(self._bpm(model.state()))
        )
        peripheral.set_read_handler(it.STEP_COUNT, lambda: it.step_count(model.state().steps_today))
        peripheral.set_read_handler(it.RAW_MOTION, lambda: self._motion)
        # Our clock rule (docs/protocol.md, Current Time) holds for this personality too.
        TimeService(peripheral, self.clock, model, self.log)
        self.relays.attach(peripheral)
        writes: dict[str, Writer] = {
            it.WEATHER_DATA: self._on_weather,
            it.ALERT_LEVEL: self._on_alert_level,
            it.DFU_CONTROL_POINT: self._on_dfu_control_point,
            it.DFU_PACKET: _ignored,
            it.FS_TRANSFER: self._on_fs_transfer,
        }
        for uuid, key in _NAVIGATION_FIELDS.items():
            writes[uuid] = self._navigation_write(key)
        for uuid, handler in writes.items():
            peripheral.set_write_handler(uuid, handler)

    @staticmethod
    def _bpm(state: WatchState) -> int:
        return state.heart_rate if state.on_wrist else 0

    async def _on_weather(self, _peer: Peer, value: bytes) -> None:
        weather = it.decode_weather(value)
        if isinstance(weather, it.CurrentWeather):
            self.weather = asdict(weather)
            self.log(f"weather: {weather.temperature / 100:.1f} °C in {weather.location}")
        elif isinstance(weather, it.Forecast):
            self.forecast = asdict(weather)
            self.log(f"forecast: {len(weather.days)} day(s)")

    def _navigation_write(self, key: str) -> Writer:
        async def write(_peer: Peer, value: bytes) -> None:
            if key == "progress":
                self.navigation[key] = value[0] if value else 0
            else:
                self.navigation[key] = it.display_text(value)
            if key == "narrative":
                self.log(f"navigation: {self.navigation[key]}")

        return write

    async def _on_alert_level(self, _peer: Peer, value: bytes) -> None:
        level = value[0] if value else 0
        text = {1: "Mild", 2: "High"}.get(level, "None")
        self.screens.show(f"Alert : {text}")

    async def _on_dfu_control_point(self, _peer: Peer, value: bytes) -> None:
        """A firmware update is not simulated: its start is refused (NotSupported); the
        other opcodes arrive in a state where InfiniTime ignores them too."""
        if value[:2] == bytes([it.DFU_START, it.DFU_IMAGE_APPLICATION]):
            self.log("firmware update refused: not simulated")
            self._notify_after_write(it.DFU_CONTROL_POINT, it.dfu_refusal(it.DFU_START))

    async def _on_fs_transfer(self, _peer: Peer, value: bytes) -> None:
        try:
            command = it.FsCommand(value[0]) if value else None
        except ValueError:
            command = None  # continuation commands (data, pacing) with no transfer open
        if command is not None:
            self._notify_after_write(it.FS_TRANSFER, it.fs_refusal(command, value))

    def _notify_after_write(self, uuid: str, value: bytes) -> None:
        """Answer on a notification once the write that asked was acknowledged."""
        self._chore(self._push(Push(uuid, value)))

    # --- live values ----------------------------------------------------------------------

    def _live_pushes(
        self, measured: list[Measurement], listened: Callable[[str], bool]
    ) -> list[Push]:
        state = self.model.state()
        pushes = []
        if listened(uuids.HEART_RATE_MEASUREMENT) and any(
            m.metric is Metric.HEART_RATE for m in measured
        ):
            pushes.append(Push(uuids.HEART_RATE_MEASUREMENT, it.heart_rate(self._bpm(state))))
        steps_before = state.steps_today if self._steps is None else self._steps
        if state.steps_today != self._steps:
            self._steps = state.steps_today
            pushes.append(Push(it.STEP_COUNT, it.step_count(state.steps_today)))
        self._motion = motion(state, steps_before)
        if listened(it.RAW_MOTION):
            pushes.append(Push(it.RAW_MOTION, self._motion))
        if state.battery_percent != self._battery:
            self._battery = state.battery_percent
            pushes.append(Push(uuids.BATTERY_LEVEL, self.live.battery(state)))
        return pushes

    # --- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        status = super().status()
        for ours_only in ("history", "metrics", "spo2", "skin_temperature"):
            status.pop(ours_only, None)
        return {
            **status,
            "personality": "infinitime",
            "firmware": it.FIRMWARE_VERSION,
            "security": SECURITY_NOTE,
            "weather": self.weather,
            "forecast": self.forecast,
            "navigation": dict(self.navigation),
        }


async def _ignored(_peer: Peer, _value: bytes) -> None:
    """DFU Packet outside a transfer: InfiniTime drops it, and no transfer ever starts."""
