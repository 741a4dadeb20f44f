"""The few raw D-Bus calls the sources share (dbus-fast, no introspection round trips)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from dbus_fast import BusType, DBusError, DBusFastError, Message, MessageType
from dbus_fast.aio import MessageBus

DBUS: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"
PROPERTIES: Final = "org.freedesktop.DBus.Properties"


class BusUnavailableError(Exception):
    """No bus to connect to (no session bus in this environment, no system bus, ...)."""


async def connect(address: str | None, bus_type: BusType = BusType.SESSION) -> MessageBus:
    """Connect to ``address`` (None: the session or system bus of this environment)."""
    try:
        return await MessageBus(bus_address=address, bus_type=bus_type).connect()
    except (OSError, DBusFastError) as error:
        raise BusUnavailableError(f"no {bus_type.name.lower()} bus: {error}") from error


async def call(
    bus: MessageBus,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: Sequence[Any] = (),
) -> list[Any]:
    """One method call; its reply body, or ``DBusError``."""
    reply = await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
    )
    if reply is None:
        return []
    if reply.message_type is MessageType.ERROR:
        raise DBusError(reply.error_name or "org.freedesktop.DBus.Error.Failed", str(reply.body))
    return list(reply.body)


async def add_match(bus: MessageBus, rule: str) -> None:
    await call(bus, DBUS, DBUS_PATH, DBUS, "AddMatch", "s", [rule])


async def name_owner(bus: MessageBus, name: str) -> str | None:
    """The unique name owning ``name``, None when nobody does."""
    try:
        return str((await call(bus, DBUS, DBUS_PATH, DBUS, "GetNameOwner", "s", [name]))[0])
    except DBusError:
        return None


async def get_all(bus: MessageBus, destination: str, path: str, interface: str) -> dict[str, Any]:
    """Every property of ``interface``, variants unwrapped."""
    (props,) = await call(bus, destination, path, PROPERTIES, "GetAll", "s", [interface])
    return {str(k): v.value for k, v in props.items()}


async def get_property(
    bus: MessageBus, destination: str, path: str, interface: str, name: str
) -> Any:
    """One property, unwrapped: for objects whose other properties we must not even read."""
    (value,) = await call(bus, destination, path, PROPERTIES, "Get", "ss", [interface, name])
    return value.value
