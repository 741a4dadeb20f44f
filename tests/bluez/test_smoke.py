"""bless on hci0 and bleak on hci1 see each other through the real kernel and bluetoothd."""

from __future__ import annotations

import pytest

from phoneagent.sync.discovery import wait_for_advertising
from phoneagent.transport import parse_transport
from phoneagent.transport.factory import bluez_transport
from protocol.profile import PROFILE
from protocol.uuids import MODEL_NUMBER
from tests.bluez.conftest import Adapters
from watchsim.peripheral.bless_adapter import BlessPeripheral

pytestmark = pytest.mark.bluez_vm

WAIT = 30.0


async def test_scan_connect_read(adapters: Adapters) -> None:
    watch = BlessPeripheral("hci0", "Smoke")
    watch.set_read_handler(MODEL_NUMBER, lambda: b"smoke-model")
    await watch.start(PROFILE)
    try:
        await watch.start_advertising("Smoke", 0, ())
        transport = bluez_transport(parse_transport("bluez:hci1"))
        device = await wait_for_advertising(transport, adapters.watch, WAIT)
        async with transport.client(device, timeout=WAIT) as client:
            assert await client.read_gatt_char(MODEL_NUMBER) == b"smoke-model"
    finally:
        await watch.stop()
