"""``watchsim air`` as a separate process, joined by separate Bumble hosts over TCP."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from bumble import hci
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.device import Peer as BumblePeer
from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import Transport

from protocol import uuids
from tests.integration.test_peripheral_bumble import discover
from tests.processes import WAIT, line
from watchsim.peripheral.bumble_adapter import bumble_uuid, open_peripheral
from watchsim.peripheral.port import Disconnected, PairingMode, PeripheralEvent

pytestmark = pytest.mark.system

# The air must tell a dead client's peers this quickly (it has no supervision timeout).
DEAD_PEER_NOTICE = 1.0
WATCH = """
import asyncio, sys
from pathlib import Path
from watchsim.peripheral.bumble_adapter import open_peripheral
from watchsim.peripheral.port import PairingMode

async def run() -> None:
    watch = await open_peripheral(sys.argv[1], Path(sys.argv[2]), mode=PairingMode.JUST_WORKS)
    watch.set_read_handler(sys.argv[3], lambda: b"W1")
    print("watch at", watch.address, flush=True)
    await asyncio.Event().wait()

asyncio.run(run())
"""


async def _central(spec: str, address: str) -> tuple[Device, Transport]:
    transport = await open_transport(spec)
    config = DeviceConfiguration(name="central", address=hci.Address(address))
    device = Device(config=config, host=Host(transport.source, transport.sink))
    await device.power_on()
    return device, transport


def _disconnection(connection: Connection) -> asyncio.Future[int]:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    connection.once(Connection.EVENT_DISCONNECTION, future.set_result)
    return future


async def test_peer_of_a_killed_process_sees_a_disconnection(air: str, tmp_path: Path) -> None:
    watch_process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WATCH,
        air,
        str(tmp_path / "watch"),
        uuids.MODEL_NUMBER,
        stdout=asyncio.subprocess.PIPE,
    )
    device, transport = await _central(air, "F2:00:00:00:00:01")
    try:
        address = (await line(watch_process, r"watch at (\S+)"))[1]
        connection = await asyncio.wait_for(device.connect(hci.Address(address)), WAIT)
        peer = BumblePeer(connection)
        await asyncio.wait_for(discover(peer), WAIT)
        model = peer.get_characteristics_by_uuid(bumble_uuid(uuids.MODEL_NUMBER))[0]
        assert await asyncio.wait_for(peer.read_value(model), WAIT) == b"W1"

        gone = _disconnection(connection)
        watch_process.kill()
        reason = await asyncio.wait_for(gone, DEAD_PEER_NOTICE)
        assert reason == hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
    finally:
        if watch_process.returncode is None:
            watch_process.kill()
        await watch_process.wait()
        await transport.close()


async def test_watch_sees_central_leave_when_its_transport_closes(air: str, tmp_path: Path) -> None:
    watch = await open_peripheral(air, tmp_path / "watch", mode=PairingMode.JUST_WORKS)
    left: asyncio.Future[Disconnected] = asyncio.get_running_loop().create_future()

    def on_event(event: PeripheralEvent) -> None:
        if isinstance(event, Disconnected) and not left.done():
            left.set_result(event)

    watch.add_listener(on_event)
    try:
        device, transport = await _central(air, "F2:00:00:00:00:02")
        await asyncio.wait_for(device.connect(hci.Address(watch.address)), WAIT)
        await transport.close()
        event = await asyncio.wait_for(left, DEAD_PEER_NOTICE)
        assert event.peer.address == "F2:00:00:00:00:02"
        assert watch.peers == ()
    finally:
        await watch.stop()
