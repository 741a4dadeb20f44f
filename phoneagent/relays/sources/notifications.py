"""Desktop notifications (freedesktop Notifications spec 1.2) from the session bus.

Two ways in, chosen at start, both feeding the same parser:

- **server**: nobody owns ``org.freedesktop.Notifications`` (a headless box, a phone
  shell without one, the tests' private bus). We take the name and answer ``Notify``
  ourselves, so senders get an id instead of an error. Nothing is shown locally.
- **monitor**: a notification daemon already owns the name. We never take it over;
  a second connection becomes a bus monitor (``BecomeMonitor``) and watches ``Notify``
  calls plus the daemon's replies (for the ids), ``CloseNotification`` calls and
  ``NotificationClosed`` signals. The session bus lets its own user monitor; if the
  bus refuses, the source reports that and stays off. A monitor may never send: its
  message handler claims every message so dbus-fast never answers one.

The owner is looked up once at start; a notification daemon started later is not seen
(restart the agent). Markup in bodies is stripped; only the first bytes the watch can
show are kept (the hub truncates).
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final

from dbus_fast import Message, MessageType, NameFlag, RequestNameReply
from dbus_fast.aio import MessageBus

from phoneagent.relays.hub import Notification, RelayHub
from phoneagent.relays.sources.bus import DBUS, DBUS_PATH, call, connect, name_owner
from protocol.alerts import AlertCategory

log = logging.getLogger(__name__)

NAME: Final = "org.freedesktop.Notifications"
PATH: Final = "/org/freedesktop/Notifications"
SOURCE: Final = "dbus"
_NOTIFY_SIGNATURE: Final = "susssasa{sv}i"
_CLOSED_BY_CALL: Final = 3  # NotificationClosed reason: closed by CloseNotification
_MAX_PENDING: Final = 64  # Notify calls whose reply (with the id) the monitor awaits
_TAG = re.compile(r"<[^>]*>")
_CATEGORIES: Final = {
    "im": AlertCategory.MESSAGE,
    "email": AlertCategory.EMAIL,
    "presence": AlertCategory.SOCIAL,
}


def parse_notify(body: list[Any]) -> tuple[str, str, str, AlertCategory]:
    """app, title, body and category from a ``Notify`` call's arguments."""
    app_name, _replaces, _icon, summary, text, _actions, hints, _timeout = body
    if not app_name and "desktop-entry" in hints:
        app_name = str(hints["desktop-entry"].value)
    category = AlertCategory.OTHER
    if "category" in hints:
        category = _CATEGORIES.get(str(hints["category"].value).split(".")[0], category)
    plain = html.unescape(_TAG.sub("", str(text)))
    return str(app_name) or "unknown", str(summary), plain, category


class NotificationSource:
    """Relays the session bus's notifications to the hub; ``mode`` says how it listens."""

    def __init__(self, hub: RelayHub, bus_address: str | None = None) -> None:
        self._hub = hub
        self._address = bus_address
        self._bus: MessageBus | None = None
        self.mode: str | None = None
        self._next_id = 1
        self._pending: OrderedDict[tuple[str, int], list[Any]] = OrderedDict()
        # Events are applied in bus order: a close must not overtake its notify.
        self._queue: asyncio.Queue[Callable[[], Awaitable[object]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Connect and listen; returns "server" or "monitor". Raises ``BusUnavailableError``."""
        bus = await connect(self._address)
        self._bus = bus
        self._worker = asyncio.create_task(self._work(), name="notification source")
        if await bus.request_name(NAME, NameFlag.DO_NOT_QUEUE) is RequestNameReply.PRIMARY_OWNER:
            bus.add_message_handler(functools.partial(self._serve, bus))
            self.mode = "server"
        else:
            owner = await name_owner(bus, NAME)
            rules = [
                f"type='method_call',interface='{NAME}',member='Notify'",
                f"type='method_call',interface='{NAME}',member='CloseNotification'",
                f"type='signal',interface='{NAME}',member='NotificationClosed'",
                f"type='method_return',sender='{owner}'",
                f"type='error',sender='{owner}'",
            ]
            bus.add_message_handler(functools.partial(self._monitor, bus.unique_name))
            await call(
                bus, DBUS, DBUS_PATH, f"{DBUS}.Monitoring", "BecomeMonitor", "asu", [rules, 0]
            )
            self.mode = "monitor"
        log.info("notifications: listening as %s", self.mode)
        return self.mode

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await event()
            except Exception as error:  # one bad event must not end the relay
                log.warning("notification event failed: %s", type(error).__name__)

    def _post(self, key: int, body: list[Any]) -> None:
        app, title, text, category = parse_notify(body)
        note = Notification(SOURCE, str(key), app, title, text, category)
        self._queue.put_nowait(lambda: self._hub.notify(note))

    def _close(self, key: int) -> None:
        self._queue.put_nowait(lambda: self._hub.close_notification(SOURCE, str(key)))

    # --- server mode ------------------------------------------------------------------

    def _serve(self, bus: MessageBus, msg: Message) -> Message | bool:
        if msg.message_type is not MessageType.METHOD_CALL or msg.interface != NAME:
            return False
        if msg.member == "Notify" and msg.signature == _NOTIFY_SIGNATURE:
            key = int(msg.body[1]) or self._new_id()
            self._post(key, list(msg.body))
            return Message.new_method_return(msg, "u", [key])
        if msg.member == "CloseNotification" and msg.signature == "u":
            key = int(msg.body[0])
            self._close(key)
            bus.send(
                Message.new_signal(PATH, NAME, "NotificationClosed", "uu", [key, _CLOSED_BY_CALL])
            )
            return Message.new_method_return(msg)
        if msg.member == "GetCapabilities":
            return Message.new_method_return(msg, "as", [["body"]])
        if msg.member == "GetServerInformation":
            return Message.new_method_return(msg, "ssss", ["phoneagent", "watchsync", "1", "1.2"])
        return False

    def _new_id(self) -> int:
        new, self._next_id = self._next_id, self._next_id % 0xFFFFFFFF + 1
        return new

    # --- monitor mode -----------------------------------------------------------------

    def _monitor(self, own_name: str | None, msg: Message) -> bool:
        """Claims every message but the replies to our own calls (BecomeMonitor's): a
        monitor that answered anything would be disconnected."""
        kind = msg.message_type
        if msg.destination == own_name and kind in (MessageType.METHOD_RETURN, MessageType.ERROR):
            return False
        if kind is MessageType.METHOD_CALL and msg.interface == NAME:
            if msg.member == "Notify" and msg.signature == _NOTIFY_SIGNATURE and msg.sender:
                self._pending[(msg.sender, msg.serial)] = list(msg.body)
                while len(self._pending) > _MAX_PENDING:
                    self._pending.popitem(last=False)
            elif msg.member == "CloseNotification" and msg.signature == "u":
                self._close(int(msg.body[0]))
        elif kind is MessageType.SIGNAL and msg.interface == NAME:
            if msg.member == "NotificationClosed" and msg.signature == "uu":
                self._close(int(msg.body[0]))
        elif kind in (MessageType.METHOD_RETURN, MessageType.ERROR) and msg.destination:
            body = self._pending.pop((msg.destination, msg.reply_serial or 0), None)
            if body is not None and kind is MessageType.METHOD_RETURN and msg.signature == "u":
                self._post(int(msg.body[0]), body)
        return True

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        if self._bus is not None:
            self._bus.disconnect()
        self._pending.clear()
