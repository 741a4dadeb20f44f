"""The watch's ``org.bluez.Agent1``: BlueZ asks it to show a passkey or confirm a number.

Registered as bluetoothd's default agent, since BlueZ routes a pairing that a central
starts to the default agent, and it sets the adapter's I/O capability from it. The
questions go to the same ``PairingDisplay`` the Bumble adapter uses.
"""

from __future__ import annotations

from typing import Final

from dbus_fast import BusType, DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt16, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

from bluezkit import REJECTED, NoReply, agent_manager, device_address
from watchsim.peripheral.port import PairingDisplay, PairingMode

AGENT_PATH: Final = "/org/watchsim/agent"
CAPABILITY: Final = {
    PairingMode.PASSKEY: "DisplayOnly",
    PairingMode.NUMERIC: "DisplayYesNo",
    PairingMode.JUST_WORKS: "NoInputNoOutput",
}


class WatchAgent(ServiceInterface):
    """Answers bluetoothd for the watch; Just Works is refused unless the watch has no display."""

    def __init__(self, display: PairingDisplay, mode: PairingMode) -> None:
        super().__init__("org.bluez.Agent1")
        self._display = display
        self._mode = mode

    @dbus_method()
    def Release(self) -> NoReply:
        """bluetoothd dropped the agent (it is going away); nothing to free."""

    @dbus_method()
    async def DisplayPasskey(
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> NoReply:
        # Called again per digit typed on keyboards that report keypresses; show once.
        if entered == 0:
            await self._display.show_passkey(device_address(device), passkey)

    @dbus_method()
    async def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> NoReply:
        if not await self._display.confirm_number(device_address(device), passkey):
            raise DBusError(REJECTED, "the wearer declined the number")

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> NoReply:
        """Just Works pairing: no MITM protection, so only a watch without a display allows it."""
        if self._mode is not PairingMode.JUST_WORKS:
            raise DBusError(REJECTED, "Just Works refused: pair with the passkey")

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> NoReply:
        """Every service of a paired central is allowed; GATT permissions do the guarding."""

    @dbus_method()
    def Cancel(self) -> NoReply:
        """The peer gave up; the passkey simply stays on screen until the next one."""


class RegisteredAgent:
    """The watch's agent on its own system-bus connection, default until ``close``."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    @classmethod
    async def register(cls, display: PairingDisplay, mode: PairingMode) -> RegisteredAgent:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            bus.export(AGENT_PATH, WatchAgent(display, mode))
            await agent_manager(bus, "RegisterAgent", "os", [AGENT_PATH, CAPABILITY[mode]])
            await agent_manager(bus, "RequestDefaultAgent", "o", [AGENT_PATH])
        except BaseException:
            bus.disconnect()
            raise
        return cls(bus)

    async def close(self) -> None:
        """Unregister (bluetoothd also drops it when the connection closes) and disconnect."""
        try:
            await agent_manager(self._bus, "UnregisterAgent", "o", [AGENT_PATH])
        finally:
            self._bus.disconnect()
