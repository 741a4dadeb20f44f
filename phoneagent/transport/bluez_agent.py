"""The agent's ``org.bluez.Agent1``: BlueZ asks it for the passkey or a comparison.

BlueZ asks the agent registered by the D-Bus connection that called ``Device1.Pair``,
and bleak calls it on its own per-client connection; so the agent is exported on that
connection for the length of ``pair()`` (``agent_client``), never as the default agent
(which belongs to whoever owns the host's pairing UI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from bleak.backends.bluezdbus.client import BleakClientBlueZDBus
from bleak.exc import BleakError
from dbus_fast import DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

from bluezkit import REJECTED, NoReply, agent_manager, device_address
from phoneagent.transport.pairing import PairingAgent

AGENT_PATH: Final = "/org/phoneagent/agent"
# The phone has a keyboard and a display: the watch shows, the phone types or compares.
CAPABILITY: Final = "KeyboardDisplay"


class BlueZAgent(ServiceInterface):
    """Forwards BlueZ's questions to a ``PairingAgent``; Just Works is always refused."""

    def __init__(self, agent: PairingAgent) -> None:
        super().__init__("org.bluez.Agent1")
        self._agent = agent

    @dbus_method()
    def Release(self) -> NoReply:
        """bluetoothd dropped the agent; the registration ends with ``pair()`` anyway."""

    @dbus_method()
    async def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:
        passkey = await self._agent.enter_passkey(device_address(device))
        if passkey is None:
            raise DBusError(REJECTED, "no passkey entered")
        return passkey

    @dbus_method()
    async def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> NoReply:
        if not await self._agent.confirm_number(device_address(device), passkey):
            raise DBusError(REJECTED, "the numbers differ")

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> NoReply:
        """Just Works: no MITM protection, which health data needs."""
        raise DBusError(REJECTED, "Just Works refused")

    @dbus_method()
    def Cancel(self) -> NoReply:
        """The watch gave up; the pending question's answer is then ignored by BlueZ."""


async def _agent_manager(bus: MessageBus, member: str, signature: str, body: list[Any]) -> None:
    try:
        await agent_manager(bus, member, signature, body)
    except DBusError as error:
        raise BleakError(f"BlueZ {error.text}") from error


@asynccontextmanager
async def registered(bus: MessageBus, agent: PairingAgent) -> AsyncIterator[None]:
    """``agent`` answers for pairings started from ``bus`` while the block runs."""
    bus.export(AGENT_PATH, BlueZAgent(agent))
    try:
        await _agent_manager(bus, "RegisterAgent", "os", [AGENT_PATH, CAPABILITY])
        try:
            yield
        finally:
            await _agent_manager(bus, "UnregisterAgent", "o", [AGENT_PATH])
    finally:
        bus.unexport(AGENT_PATH)


def agent_client(agent: PairingAgent) -> type[BleakClientBlueZDBus]:
    """bleak's BlueZ client whose ``pair()`` is answered by ``agent``."""

    class AgentClient(BleakClientBlueZDBus):
        async def pair(self, *args: Any, **kwargs: Any) -> None:
            # bleak's own connection to the system bus, the caller of Device1.Pair.
            bus = self._bus
            if bus is None:
                raise BleakError("connect before pairing")
            async with registered(bus, agent):
                await super().pair(*args, **kwargs)

    return AgentClient
