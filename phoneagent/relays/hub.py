"""The relay hub: what the phone shows the watches, held only in RAM.

Sources (D-Bus notifications, MPRIS, ModemManager, injection) hand events in; the hub
applies the current ``RelayPolicy``, keeps what the watches may show and pushes it to
every connected watch. Watch buttons come back through ``handle_call_action`` /
``handle_music_event`` and go to the source that owns the call or the player.

Privacy (PR-NOTIF, PR-CALL, PR-MUSIC): content is truncated to the watch's budgets on
arrival, held in dicts bounded in count and age, and never handed to the store, the
logs (only ids, apps never, and verdicts are logged) or the uploader. A notification
the policy refuses is not held at all. Callers are reduced to a display name (or
nothing) before they are held; numbers never are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final, Protocol, TypeVar

from bleak.exc import BleakError

from phoneagent.relays.permissions import CallPrivacy, Feature, RelayPolicy
from protocol.alerts import (
    AlertCategory,
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
)
from protocol.music import MusicEvent, MusicState, Playback

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MAX_NOTIFICATIONS: Final = 50
DEFAULT_TTL_S: Final = 3600.0
_MAX_ID: Final = 0xFFFFFFFF
_FINAL: Final = frozenset({CallStatus.REJECTED, CallStatus.ENDED, CallStatus.MISSED})
# The states a known call may move to; the watch refuses anything else.
_NEXT: Final = {
    CallStatus.INCOMING: frozenset(CallStatus) - {CallStatus.INCOMING},
    CallStatus.ACCEPTED: frozenset({CallStatus.ENDED}),
}
# What the watch shows once music is revoked: nothing playing, no titles.
CLEARED_MUSIC: Final = MusicState(Playback.STOPPED, 0, 0, 0, "", "")
# A write to a watch that fails like this means the link is going: the engine notices
# the disconnect and detaches; what was not delivered is delivered on reconnect.
_LINK_ERRORS: Final = (BleakError, TimeoutError, ConnectionError)


class WatchSink(Protocol):
    """A connected watch as the hub uses it (``phoneagent.sync.WatchClient`` is one)."""

    @property
    def address(self) -> str: ...

    async def subscribe_relays(
        self,
        on_call_action: Callable[[CallAction], None],
        on_music_event: Callable[[MusicEvent], None],
    ) -> None: ...

    async def write_alert(self, alert: AlertNotification) -> None: ...

    async def write_alert_removal(self, removal: AlertRemoval) -> None: ...

    async def write_call_state(self, state: CallState) -> None: ...

    async def write_music_state(self, state: MusicState) -> None: ...


class CallControl(Protocol):
    """The phone side of a call: what a watch button does to it."""

    async def accept(self, key: str) -> None: ...

    async def hangup(self, key: str) -> None: ...


class MusicControl(Protocol):
    async def command(self, event: MusicEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification as a source saw it; ``key`` is the source's own handle for it."""

    source: str
    key: str
    app: str
    title: str
    body: str
    category: AlertCategory = AlertCategory.OTHER


@dataclass
class _Held:
    alert: AlertNotification
    app: str  # the untruncated app id the rules match on
    keys: set[tuple[str, str]]
    expires: float
    delivered: set[str] = field(default_factory=set)


@dataclass
class _Call:
    state: CallState
    key: tuple[str, str]
    control: CallControl | None


class RelayHub:
    def __init__(
        self,
        policy: RelayPolicy | None = None,
        *,
        max_notifications: int = DEFAULT_MAX_NOTIFICATIONS,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._policy = policy or RelayPolicy()
        self.max_notifications = max_notifications
        self.ttl_s = ttl_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._by_key: dict[tuple[str, str], int] = {}
        self._calls: dict[int, _Call] = {}
        self._call_ids: dict[tuple[str, str], int] = {}
        self._next_id = 1
        self._music: MusicState | None = None
        self._music_shown: dict[str, MusicState] = {}
        self._music_control: MusicControl | None = None
        self._watches: dict[str, WatchSink] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Future[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.refused = 0  # how many events the policy kept from the watches

    @property
    def policy(self) -> RelayPolicy:
        return self._policy

    def _new_id(self) -> int:
        taken = self._held.keys() | self._calls.keys()
        while self._next_id in taken:
            self._next_id = self._next_id % _MAX_ID + 1
        new, self._next_id = self._next_id, self._next_id % _MAX_ID + 1
        return new

    # --- watches ----------------------------------------------------------------------

    async def attach(self, watch: WatchSink) -> None:
        """A watch connected: listen to its buttons, then bring it up to date.

        A watch that cannot subscribe (no relay service, or the link is going) is left
        out: relays are never a reason for its history sync to fail.
        """
        try:
            await watch.subscribe_relays(self.handle_call_action, self.handle_music_event)
        except _LINK_ERRORS as error:
            log.info("watch not attached for relays: %s", error)
            return
        self._watches[watch.address] = watch
        self._music_shown.pop(watch.address, None)
        await self.expire()
        policy = self._policy
        for held in list(self._held.values()):
            if watch.address not in held.delivered and self._may_show(held):
                await self._deliver(watch, held)
        if policy.allows(Feature.CALLS):
            for call in list(self._calls.values()):
                await self._write(watch, watch.write_call_state, call.state)
        await self._push_music(watch)

    def detach(self, address: str) -> None:
        self._watches.pop(address, None)
        self._music_shown.pop(address, None)

    @property
    def watches(self) -> list[str]:
        return sorted(self._watches)

    async def _write(
        self, watch: WatchSink, write: Callable[[T], Awaitable[None]], value: T
    ) -> bool:
        """One write, in order with the others to that watch; False if the link failed."""
        lock = self._locks.setdefault(watch.address, asyncio.Lock())
        async with lock:
            try:
                await write(value)
            except _LINK_ERRORS as error:
                log.info("relay write to a watch failed (%s); retried on reconnect", error)
                return False
        return True

    async def _to_all(self, send: Callable[[WatchSink], Awaitable[object]]) -> None:
        await asyncio.gather(*(send(w) for w in self._connected()))

    async def _broadcast_call(self, state: CallState) -> None:
        await self._to_all(lambda w: self._write(w, w.write_call_state, state))

    # --- notifications ----------------------------------------------------------------

    def _may_show(self, held: _Held) -> bool:
        policy = self._policy
        return policy.allows(Feature.NOTIFICATIONS) and policy.app_allowed(held.app)

    async def notify(self, note: Notification) -> str:
        """Take a notification; returns what happened: delivered, queued, or why not."""
        await self.expire()
        refusal = self._policy.notification_verdict(note.app, self._wall_clock())
        if refusal is not None:
            self.refused += 1
            log.info("notification not relayed: %s", refusal)
            return refusal
        alert_id = self._by_key.get((note.source, note.key))
        if alert_id is None:
            alert_id = self._duplicate_of(note)
        alert = AlertNotification.truncated(
            alert_id or 0, note.category, note.app, note.title, note.body
        )
        if alert_id is not None:
            held = self._held[alert_id]
            held.keys.add((note.source, note.key))
            held.expires = self._clock() + self.ttl_s
            self._held.move_to_end(alert_id)
            if held.alert == alert:
                return "duplicate"
            # Replaced (same source handle, new content): the watches show the new one.
            held.alert, held.app, held.delivered = alert, note.app, set()
        else:
            alert_id = self._new_id()
            alert = replace(alert, notification_id=alert_id)
            held = _Held(alert, note.app, {(note.source, note.key)}, self._clock() + self.ttl_s)
            self._held[alert_id] = held
            while len(self._held) > self.max_notifications:
                self._forget(next(iter(self._held)))
        self._by_key[(note.source, note.key)] = alert_id
        self._arm_timer()
        sent = await asyncio.gather(*(self._deliver(w, held) for w in self._connected()))
        return "delivered" if any(sent) else "queued"

    def _connected(self) -> list[WatchSink]:
        return list(self._watches.values())

    def _duplicate_of(self, note: Notification) -> int | None:
        wanted = AlertNotification.truncated(0, note.category, note.app, note.title, note.body)
        for alert_id, held in self._held.items():
            if _texts(held.alert) == _texts(wanted):
                return alert_id
        return None

    async def _deliver(self, watch: WatchSink, held: _Held) -> bool:
        if await self._write(watch, watch.write_alert, held.alert):
            held.delivered.add(watch.address)
            return True
        return False

    async def close_notification(self, source: str, key: str) -> bool:
        """The phone dismissed it: forget it and take it off every watch that shows it."""
        alert_id = self._by_key.get((source, key))
        if alert_id is None:
            return False
        await self._withdraw(alert_id)
        return True

    async def _withdraw(self, alert_id: int) -> None:
        held = self._forget(alert_id)
        removal = AlertRemoval(alert_id)
        await asyncio.gather(
            *(
                self._write(w, w.write_alert_removal, removal)
                for w in self._connected()
                if w.address in held.delivered
            )
        )

    def _forget(self, alert_id: int) -> _Held:
        held = self._held.pop(alert_id)
        for key in held.keys:
            self._by_key.pop(key, None)
        return held

    async def expire(self) -> int:
        """Drop notifications past their time to live (and from the watches); returns how many."""
        now = self._clock()
        old = [i for i, held in self._held.items() if held.expires <= now]
        for alert_id in old:
            await self._withdraw(alert_id)
        return len(old)

    def _arm_timer(self) -> None:
        """Wake up at the next expiry, so content never outlives its TTL in memory."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        delay = min(h.expires for h in self._held.values()) - self._clock()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._spawn(self._expire_and_rearm())

    async def _expire_and_rearm(self) -> None:
        await self.expire()
        self._arm_timer()

    def _spawn(self, work: Awaitable[object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # A source that failed to act (a player gone, a call already over): the
            # type only, the message might quote content.
            log.warning("relay action failed: %s", type(error).__name__)

    # --- calls --------------------------------------------------------------------------

    async def call_event(
        self,
        source: str,
        key: str,
        status: CallStatus,
        caller: str | None = None,
        control: CallControl | None = None,
    ) -> int | None:
        """A call changed on the phone; returns its call id, None if it is not relayed.

        ``caller`` is used only to build the display name and is never kept: with privacy
        mode hidden, or when it is a number, the watch gets no caller at all.
        """
        call_id = self._call_ids.get((source, key))
        if not self._policy.allows(Feature.CALLS):
            self.refused += 1
            return None
        if call_id is None:
            if status is not CallStatus.INCOMING:
                return None  # outgoing, or one that rang before the calls grant
            call_id = self._new_id()
            name = self._policy.caller_display(caller)
            call = _Call(CallState(call_id, status, name), (source, key), control)
            self._calls[call_id] = call
            self._call_ids[(source, key)] = call_id
        else:
            call = self._calls[call_id]
            if status not in _NEXT[call.state.status]:
                log.info("call %d: ignored %s after %s", call_id, status.name, call.state.status)
                return call_id
            call.state = replace(call.state, status=status)
        if status in _FINAL:
            del self._calls[call_id]
            del self._call_ids[(source, key)]
        log.info("call %d %s", call_id, status.name.lower())
        await self._broadcast_call(call.state)
        return call_id

    def handle_call_action(self, action: CallAction) -> None:
        self._spawn(self.call_action(action))

    async def call_action(self, action: CallAction) -> None:
        """A call button on a watch: accept/reject go to the call's source."""
        call = self._calls.get(action.call_id)
        if not self._policy.allows(Feature.CALLS) or call is None:
            log.info("call action %s for call %d dropped", action.action.name, action.call_id)
            return
        log.info("call %d: watch pressed %s", action.call_id, action.action.name.lower())
        if call.control is None or action.action is CallActionKind.MUTE:
            return  # mute silences the watch itself; the phone keeps the call as it is
        if action.action is CallActionKind.ACCEPT:
            await call.control.accept(call.key[1])
        else:
            await call.control.hangup(call.key[1])

    @property
    def active_calls(self) -> list[int]:
        return sorted(self._calls)

    # --- music --------------------------------------------------------------------------

    def set_music_control(self, control: MusicControl | None) -> None:
        self._music_control = control

    async def music_changed(self, state: MusicState | None) -> None:
        """Now playing changed (None: no player); pushed to the watches if music is granted."""
        self._music = state
        await self._to_all(self._push_music)

    async def _push_music(self, watch: WatchSink) -> None:
        """Bring one watch's now-playing up to date; without the grant, clear what it shows."""
        shown = self._music_shown.get(watch.address)
        wanted = self._music if self._policy.allows(Feature.MUSIC) else None
        if wanted is None and shown is not None:
            wanted = CLEARED_MUSIC
        if wanted is None or wanted == shown:
            return
        if await self._write(watch, watch.write_music_state, wanted):
            if wanted is CLEARED_MUSIC:
                self._music_shown.pop(watch.address, None)
            else:
                self._music_shown[watch.address] = wanted

    def handle_music_event(self, event: MusicEvent) -> None:
        self._spawn(self.music_event(event))

    async def music_event(self, event: MusicEvent) -> bool:
        """A music button on a watch; True if it reached a player."""
        control = self._music_control
        if not self._policy.allows(Feature.MUSIC) or control is None:
            log.info("music button %s dropped", event.command.name.lower())
            return False
        await control.command(event)
        return True

    # --- policy -------------------------------------------------------------------------

    async def set_policy(self, policy: RelayPolicy) -> None:
        """A permission changed: effective at once, withdrawn content leaves the watches."""
        before, self._policy = self._policy, policy
        for alert_id, held in list(self._held.items()):
            if not self._may_show(held):
                await self._withdraw(alert_id)
        if not policy.allows(Feature.CALLS):
            calls, self._calls, self._call_ids = list(self._calls.values()), {}, {}
            for call in calls:
                await self._broadcast_call(replace(call.state, status=CallStatus.ENDED))
        elif policy.call_privacy is CallPrivacy.HIDDEN and before.call_privacy is CallPrivacy.NAME:
            for call in self._calls.values():
                call.state = replace(call.state, display_name="")
                await self._broadcast_call(call.state)
        await self._to_all(self._push_music)

    def status(self) -> dict[str, object]:
        """Counts only: safe to print and to log."""
        return {
            "watches": len(self._watches),
            "notifications_held": len(self._held),
            "active_calls": len(self._calls),
            "music": self._music is not None,
            "refused": self.refused,
            "granted": sorted(self._policy.granted),
        }

    async def aclose(self) -> None:
        """Forget everything (it was only ever in memory) and stop background work."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._held.clear()
        self._by_key.clear()
        self._calls.clear()
        self._call_ids.clear()
        self._music = None


def _texts(alert: AlertNotification) -> tuple[AlertCategory, str, str, str]:
    return alert.category, alert.app, alert.title, alert.body
