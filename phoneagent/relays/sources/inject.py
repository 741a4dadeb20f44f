"""Events typed in by ``phoneagent inject``: a stand-in phone for demos and tests.

They enter the hub exactly like the D-Bus sources' events, so the same permission
gate applies. For injected calls this source plays the phone: a watch's accept answers
the call, reject hangs it up. What the watches pressed is kept (ids and button names
only, bounded) so a demo or a test can see that the action reached the phone.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeVar

from phoneagent.control import ControlUsageError
from phoneagent.relays.hub import Notification, RelayHub
from phoneagent.relays.permissions import Feature
from protocol.alerts import AlertCategory, CallStatus
from protocol.errors import ProtocolError
from protocol.music import MusicEvent, MusicState, Playback

SOURCE: Final = "inject"
E = TypeVar("E", bound=enum.Enum)
MAX_ACTIONS: Final = 100


def _text(request: dict[str, Any], name: str, default: str | None = None) -> str:
    value = request.get(name, default)
    if not isinstance(value, str):
        raise ControlUsageError(f"{name} must be text")
    return value


def _int(request: dict[str, Any], name: str) -> int:
    value = request.get(name, 0)
    if not isinstance(value, int) or value < 0:
        raise ControlUsageError(f"{name} must be a whole number >= 0")
    return value


def _member(kind: type[E], word: str) -> E:
    try:
        return kind[word.upper()]
    except KeyError:
        names = ", ".join(m.name.lower() for m in kind)
        raise ControlUsageError(f"{word!r} is not one of {names}") from None


class InjectSource:
    def __init__(self, hub: RelayHub) -> None:
        self._hub = hub
        self._keys = itertools.count(1)
        self._ringing: set[str] = set()
        self.actions: deque[dict[str, str]] = deque(maxlen=MAX_ACTIONS)
        self.action_listeners: list[Callable[[dict[str, str]], None]] = []

    def _key(self, request: dict[str, Any]) -> str:
        return _text(request, "key", "") or f"{SOURCE}-{next(self._keys)}"

    async def notify(self, request: dict[str, Any]) -> dict[str, Any]:
        key = self._key(request)
        note = Notification(
            SOURCE,
            key,
            _text(request, "app"),
            _text(request, "title", ""),
            _text(request, "body", ""),
            _member(AlertCategory, _text(request, "category", "other")),
        )
        return {"key": key, "result": await self._hub.notify(note)}

    async def close(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"removed": await self._hub.close_notification(SOURCE, _text(request, "key"))}

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        status = _member(CallStatus, _text(request, "state"))
        key = self._key(request)
        caller = _text(request, "caller", "")
        try:
            call_id = await self._hub.call_event(SOURCE, key, status, caller, self)
        except ProtocolError as error:
            raise ControlUsageError(str(error)) from None
        self._track(key, status)
        return {"key": key, "call_id": call_id, "relayed": call_id is not None}

    def _track(self, key: str, status: CallStatus) -> None:
        if status is CallStatus.INCOMING:
            self._ringing.add(key)
        else:
            self._ringing.discard(key)

    async def music(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            state = MusicState.truncated(
                _member(Playback, _text(request, "playback")),
                _int(request, "volume"),
                _int(request, "position_s"),
                _int(request, "duration_s"),
                _text(request, "title", ""),
                _text(request, "artist", ""),
            )
            state.encode()  # refuses an out-of-range volume or position here, not at a watch
        except ProtocolError as error:
            raise ControlUsageError(str(error)) from None
        self._hub.set_music_control(self)
        await self._hub.music_changed(state)
        return {
            "watches": len(self._hub.watches),
            "relayed": self._hub.policy.allows(Feature.MUSIC),
        }

    async def status(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {**self._hub.status(), "watch_actions": list(self.actions)}

    # --- the stand-in phone: what the watch buttons do ----------------------------------

    async def accept(self, key: str) -> None:
        self._record({"key": key, "action": "accept"})
        self._track(key, CallStatus.ACCEPTED)
        await self._hub.call_event(SOURCE, key, CallStatus.ACCEPTED)

    async def hangup(self, key: str) -> None:
        ringing = key in self._ringing
        self._record({"key": key, "action": "reject" if ringing else "hang up"})
        status = CallStatus.REJECTED if ringing else CallStatus.ENDED
        self._track(key, status)
        await self._hub.call_event(SOURCE, key, status)

    async def command(self, event: MusicEvent) -> None:
        entry = {"key": "music", "action": event.command.name.lower()}
        if event.volume is not None:
            entry["volume"] = str(event.volume)
        self._record(entry)

    def _record(self, action: dict[str, str]) -> None:
        self.actions.append(action)
        for listener in tuple(self.action_listeners):
            listener(action)
