"""Inside the BlueZ VM: wait for bluetoothd's two adapters, and name their addresses.

These tests run only through ``scripts/bluez-vm/run-tests`` (marker ``bluez_vm``): hci0
is the watch's adapter, hci1 the agent's, both Bumble controllers on one virtual link.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

ADAPTERS = ("hci0", "hci1")
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Adapters:
    watch: str  # hci0's address
    agent: str  # hci1's address


async def _powered_addresses(bus: MessageBus) -> dict[str, str] | None:
    """hciN -> address once every adapter is powered; None while bluetoothd is not there yet."""
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path="/",
            interface="org.freedesktop.DBus.ObjectManager",
            member="GetManagedObjects",
        )
    )
    if reply is None or reply.message_type is MessageType.ERROR:
        return None
    found: dict[str, str] = {}
    for path, interfaces in reply.body[0].items():
        adapter = interfaces.get("org.bluez.Adapter1")
        if adapter is not None and adapter["Powered"].value:
            found[path.rsplit("/", 1)[-1]] = adapter["Address"].value
    return found if all(name in found for name in ADAPTERS) else None


async def wait_for_adapters() -> Adapters:
    """Re-check on every bluetoothd signal (no polling); fail clearly after a timeout."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    changed = asyncio.Event()

    def on_message(message: Message) -> None:
        if message.message_type is MessageType.SIGNAL:
            changed.set()

    bus.add_message_handler(on_message)
    for rule in (
        "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
        "type='signal',sender='org.bluez'",
    ):
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            while (found := await _powered_addresses(bus)) is None:
                await changed.wait()
                changed.clear()
    except TimeoutError:
        raise RuntimeError(
            f"bluetoothd did not power {', '.join(ADAPTERS)} within {READY_TIMEOUT:g} s"
        ) from None
    finally:
        bus.disconnect()
    return Adapters(watch=found["hci0"], agent=found["hci1"])


class Screen:
    """The watch's display: passkeys shown (and numbers confirmed), in order."""

    def __init__(self) -> None:
        self.passkeys: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    async def show_passkey(self, peer_address: str, passkey: int) -> None:
        self.passkeys.put_nowait((peer_address, passkey))

    async def confirm_number(self, peer_address: str, number: int) -> bool:
        self.passkeys.put_nowait((peer_address, number))
        return True


@pytest.fixture(scope="session")
def adapters() -> Adapters:
    return asyncio.run(wait_for_adapters())


async def _call(bus: MessageBus, message: Message) -> Message:
    reply = await bus.call(message)
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise RuntimeError(f"{message.interface}.{message.member}: {reply.error_name} {reply.body}")
    return reply


async def _devices(bus: MessageBus) -> dict[str, dict[str, Any]]:
    """Device object path -> its org.bluez.Device1 properties, on every adapter."""
    reply = await _call(
        bus,
        Message(
            destination="org.bluez",
            path="/",
            interface="org.freedesktop.DBus.ObjectManager",
            member="GetManagedObjects",
        ),
    )
    return {
        path: interfaces["org.bluez.Device1"]
        for path, interfaces in reply.body[0].items()
        if "org.bluez.Device1" in interfaces
    }


async def _remove(bus: MessageBus, path: str) -> None:
    await _call(
        bus,
        Message(
            destination="org.bluez",
            path=path.rsplit("/", 1)[0],
            interface="org.bluez.Adapter1",
            member="RemoveDevice",
            signature="o",
            body=[path],
        ),
    )


def _device_path(adapter: str, address: str) -> str:
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"


async def forget_all_devices() -> None:
    """Remove every device (and so every bond) bluetoothd knows, on both adapters."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        for path in await _devices(bus):
            await _remove(bus, path)
    finally:
        bus.disconnect()


async def remove_device(adapter: str, address: str) -> None:
    """Forget one device (its keys included) on one adapter only."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        await _remove(bus, _device_path(adapter, address))
    finally:
        bus.disconnect()


async def device_property(adapter: str, address: str, name: str) -> Any:
    """A Device1 property as bluetoothd reports it; None when it does not know the device."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        device = (await _devices(bus)).get(_device_path(adapter, address))
    finally:
        bus.disconnect()
    return None if device is None else device[name].value


@pytest.fixture(autouse=True)
async def fresh_bluez(adapters: Adapters) -> AsyncIterator[Adapters]:
    """Each test starts with no bonds and no cached devices on either adapter."""
    await forget_all_devices()
    yield adapters
    await forget_all_devices()
