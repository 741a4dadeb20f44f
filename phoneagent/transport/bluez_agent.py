"""The agent's ``org.bluez.Agent1``: BlueZ asks it for the passkey or a comparison.

BlueZ asks the agent registered by the D-Bus connection that called ``Device1.Pair``,
and bleak calls it on its own per-client connection; so the agent is exported on that
connection for the length of ``pair()`` (``agent_client``), never as the default agent
(which belongs to whoever owns the host's pairing UI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

from bleak.backends.bluezdbus.client import BleakClientBlueZDBus
from bleak.exc import BleakError
from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusSignature, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

from phoneagent.transport.pairing import PairingAgent

AGENT_PATH: Final = "/org/phoneagent/agent"
# The phone has a keyboard and a display: the watch shows, the phone types or compares.
CAPABILITY: Final = "KeyboardDisplay"
REJECTED: Final = "org.bluez.Error.Rejected"
# A D-Bus method with no out-arguments (dbus-fast reads a bare None as a bad signature).
NoReply = Annotated[None, DBusSignature("")]


def device_address(path: str) -> str:
    """``/org/bluez/hci1/dev_AA_BB_CC_DD_EE_FF`` -> ``AA:BB:CC:DD:EE:FF``."""
    return path.rsplit("/", 1)[-1].removeprefix("dev_").replace("_", ":")


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
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez",
            interface="org.bluez.AgentManager1",
            member=member,
            signature=signature,
            body=body,
        )
    )
    if reply is None or reply.message_type is MessageType.ERROR:
        detail = reply.body[0] if reply is not None and reply.body else "no reply"
        raise BleakError(f"BlueZ AgentManager1.{member} failed: {detail}")


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
