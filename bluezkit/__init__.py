"""What both ends need to answer BlueZ's pairing questions (``org.bluez.Agent1`` over
dbus-fast): the watch shows or confirms, the agent types or compares; the D-Bus plumbing
of registering an agent with bluetoothd is the same for both.
"""

from __future__ import annotations

from typing import Annotated, Final

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature

REJECTED: Final = "org.bluez.Error.Rejected"
# A D-Bus method with no out-arguments (dbus-fast reads a bare None as a bad signature).
NoReply = Annotated[None, DBusSignature("")]


def device_address(path: str) -> str:
    """``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`` -> ``AA:BB:CC:DD:EE:FF``."""
    return path.rsplit("/", 1)[-1].removeprefix("dev_").replace("_", ":")


async def agent_manager(bus: MessageBus, member: str, signature: str, body: list[object]) -> None:
    """Call ``org.bluez.AgentManager1.member``; ``DBusError`` if bluetoothd refuses."""
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
        raise DBusError(
            reply.error_name if reply is not None and reply.error_name else REJECTED,
            f"AgentManager1.{member} failed: {detail}",
        )
