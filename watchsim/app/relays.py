"""What the phone relays to the watch (notifications, calls, now playing) and the
buttons the wearer presses in return (call actions, music commands).

This is on-watch display state: it lives in RAM, survives the radio dropping out but
not a reboot. Button presses come from the control channel (``watchsim ctl press``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from protocol import uuids
from protocol.alerts import (
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
)
from protocol.music import MusicCommand, MusicEvent, MusicState
from watchsim.peripheral.port import AttError, AttErrorCode, Peer, Peripheral

MAX_NOTIFICATIONS: Final = 20
MAX_RECENT_CALLS: Final = 10
_FINAL: Final = frozenset({CallStatus.REJECTED, CallStatus.ENDED, CallStatus.MISSED})
# Which phone-reported state may follow which (the phone is authoritative, but a call
# cannot be answered after it ended nor ring again once answered).
_NEXT: Final = {
    CallStatus.INCOMING: frozenset(CallStatus),
    CallStatus.ACCEPTED: frozenset({CallStatus.ACCEPTED, CallStatus.ENDED}),
}
# The call a button may act on: accept needs a ringing call; reject also hangs up.
_PRESSABLE: Final = {
    CallActionKind.ACCEPT: frozenset({CallStatus.INCOMING}),
    CallActionKind.REJECT: frozenset({CallStatus.INCOMING, CallStatus.ACCEPTED}),
    CallActionKind.MUTE: frozenset({CallStatus.INCOMING, CallStatus.ACCEPTED}),
}


class RelayError(Exception):
    """A button press that has nothing to act on; the message is for the person pressing."""


class RelayScreen(Protocol):
    """What the watch app and its control channel need of the relay screens, whichever
    profile carries them (ours here, InfiniTime's in ``watchsim.app.infinitime``)."""

    def attach(self, peripheral: Peripheral | None) -> None: ...

    async def press(self, action: CallActionKind) -> dict[str, Any]: ...

    async def music_command(self, command: MusicCommand, volume: int | None = None) -> int: ...

    def status(self) -> dict[str, Any]: ...


async def send_to(peripheral: Peripheral | None, uuid: str, value: bytes) -> int:
    """Notify ``value`` on a relay screen's ``uuid``: the centrals it reached, or why not."""
    if peripheral is None:
        raise RelayError("the radio is off (out of range or rebooting)")
    return await peripheral.notify(uuid, value)


@dataclass
class _Call:
    state: CallState
    muted: bool = False


class Relays:
    def __init__(self, on_change: Callable[[str], None] = lambda _line: None) -> None:
        self._peripheral: Peripheral | None = None
        self._on_change = on_change
        self.notifications: deque[AlertNotification] = deque(maxlen=MAX_NOTIFICATIONS)
        self._calls: dict[int, _Call] = {}
        self.recent_calls: deque[CallState] = deque(maxlen=MAX_RECENT_CALLS)
        self.music: MusicState | None = None

    def attach(self, peripheral: Peripheral | None) -> None:
        """Serve the relay characteristics on ``peripheral`` (None: radio off)."""
        self._peripheral = peripheral
        if peripheral is None:
            return
        peripheral.set_write_handler(uuids.ALERT_NOTIFICATION, self._on_notification)
        peripheral.set_write_handler(uuids.ALERT_REMOVAL, self._on_removal)
        peripheral.set_write_handler(uuids.CALL_STATE, self._on_call_state)
        peripheral.set_write_handler(uuids.MUSIC_STATE, self._on_music_state)

    # --- phone -> watch ------------------------------------------------------------------

    async def _on_notification(self, _peer: Peer, value: bytes) -> None:
        alert = AlertNotification.decode(value)
        self._remove(alert.notification_id)
        self.notifications.appendleft(alert)
        self._on_change(f"notification {alert.notification_id} from {alert.app}: {alert.title}")

    async def _on_removal(self, _peer: Peer, value: bytes) -> None:
        removal = AlertRemoval.decode(value)
        if self._remove(removal.notification_id):
            self._on_change(f"notification {removal.notification_id} removed")

    def _remove(self, notification_id: int) -> bool:
        kept = [n for n in self.notifications if n.notification_id != notification_id]
        removed = len(kept) != len(self.notifications)
        self.notifications = deque(kept, maxlen=MAX_NOTIFICATIONS)
        return removed

    async def _on_call_state(self, _peer: Peer, value: bytes) -> None:
        state = CallState.decode(value)
        call = self._calls.get(state.call_id)
        if call is not None and state.status not in _NEXT[call.state.status]:
            raise AttError(
                AttErrorCode.VALUE_NOT_ALLOWED,
                f"call {state.call_id} cannot go from {call.state.status.name} "
                f"to {state.status.name}",
            )
        name = state.display_name or "hidden caller"
        if state.status in _FINAL:
            self._calls.pop(state.call_id, None)
            self.recent_calls.appendleft(state)
        elif call is None:
            self._calls[state.call_id] = _Call(state)
        else:
            call.state = state
        self._on_change(f"call {state.call_id} {state.status.name.lower()}: {name}")

    async def _on_music_state(self, _peer: Peer, value: bytes) -> None:
        self.music = MusicState.decode(value)
        self._on_change(
            f"music {self.music.playback.name.lower()}: {self.music.title} - {self.music.artist}"
        )

    # --- watch buttons -> phone ---------------------------------------------------------

    def current_call(self, action: CallActionKind) -> CallState | None:
        """The newest call ``action`` may act on."""
        for call in reversed(self._calls.values()):
            if call.state.status in _PRESSABLE[action]:
                return call.state
        return None

    async def press(self, action: CallActionKind) -> dict[str, Any]:
        state = self.current_call(action)
        if state is None:
            wanted = " or ".join(s.name.lower() for s in _PRESSABLE[action])
            raise RelayError(f"no {wanted} call to {action.name.lower()}")
        if action is CallActionKind.MUTE:
            self._calls[state.call_id].muted = True
        sent = await send_to(
            self._peripheral, uuids.CALL_ACTION, CallAction(state.call_id, action).encode()
        )
        self._on_change(f"pressed {action.name.lower()} on call {state.call_id}")
        return {"call_id": state.call_id, "action": action.name.lower(), "sent_to": sent}

    async def music_command(self, command: MusicCommand, volume: int | None = None) -> int:
        sent = await send_to(
            self._peripheral, uuids.MUSIC_EVENT, MusicEvent(command, volume).encode()
        )
        self._on_change(f"music button {command.name.lower()}")
        return sent

    def status(self) -> dict[str, Any]:
        music = self.music
        return {
            "notifications": [
                {
                    "id": n.notification_id,
                    "category": n.category.name.lower(),
                    "app": n.app,
                    "title": n.title,
                    "body": n.body,
                }
                for n in self.notifications
            ],
            "calls": [
                {
                    "id": c.state.call_id,
                    "state": c.state.status.name.lower(),
                    "name": c.state.display_name,
                    "muted": c.muted,
                }
                for c in self._calls.values()
            ],
            "recent_calls": [
                {"id": c.call_id, "state": c.status.name.lower(), "name": c.display_name}
                for c in self.recent_calls
            ],
            "music": None
            if music is None
            else {
                "playback": music.playback.name.lower(),
                "title": music.title,
                "artist": music.artist,
                "volume": music.volume,
                "position_s": music.position_s,
                "duration_s": music.duration_s,
            },
        }
