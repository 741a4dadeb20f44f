"""LE Secure Connections pairing (passkey entry, numeric comparison) through our two Agent1
implementations.

The watch (bless on hci0) shows the passkey or the number through a ``PairingDisplay``; the
agent (bleak on hci1) types or compares it through a ``PairingAgent``: the same interfaces
as loopback.
"""

from __future__ import annotations

import asyncio

import pytest
from bleak.exc import BleakError

from phoneagent.sync.discovery import wait_for_advertising
from phoneagent.transport import PairingAgent, RefusingAgent, parse_transport
from phoneagent.transport.factory import bluez_transport
from protocol.profile import PROFILE
from protocol.uuids import HISTORY_STATUS, MODEL_NUMBER
from tests.bluez.conftest import Adapters, Screen
from watchsim.peripheral.bless_adapter import BlessPeripheral
from watchsim.peripheral.port import PairingMode

pytestmark = pytest.mark.bluez_vm

WAIT = 30.0
STATUS = b"\x01\x02\x03\x04"


class Typist:
    """The phone's user: types or compares what the watch shows, remembering what was asked."""

    def __init__(self, screen: Screen) -> None:
        self._screen = screen
        self.asked: list[tuple[str, str]] = []

    async def enter_passkey(self, peer: str) -> int | None:
        self.asked.append(("passkey", peer))
        async with asyncio.timeout(WAIT):
            _, passkey = await self._screen.passkeys.get()
        return passkey

    async def confirm_number(self, peer: str, number: int) -> bool:
        self.asked.append(("number", peer))
        async with asyncio.timeout(WAIT):
            _, shown = await self._screen.passkeys.get()
        return shown == number


async def _watch(screen: Screen, mode: PairingMode = PairingMode.PASSKEY) -> BlessPeripheral:
    watch = BlessPeripheral("hci0", "PairWatch", display=screen, mode=mode)
    watch.set_read_handler(HISTORY_STATUS, lambda: STATUS)
    watch.set_read_handler(MODEL_NUMBER, lambda: b"pair-model")
    await watch.start(PROFILE)
    await watch.start_advertising("PairWatch", 0, ())
    return watch


async def _read_protected(adapters: Adapters, agent: PairingAgent | None, pair: bool) -> bytes:
    transport = bluez_transport(parse_transport("bluez:hci1"), agent=agent)
    device = await wait_for_advertising(transport, adapters.watch, WAIT)
    async with transport.client(device, timeout=WAIT) as client:
        assert await client.read_gatt_char(MODEL_NUMBER) == b"pair-model"
        if pair:
            await client.pair()
        return bytes(await client.read_gatt_char(HISTORY_STATUS))


@pytest.mark.parametrize(
    ("mode", "question"), [(PairingMode.PASSKEY, "passkey"), (PairingMode.NUMERIC, "number")]
)
async def test_pairing_opens_protected_characteristics(
    adapters: Adapters, mode: PairingMode, question: str
) -> None:
    screen = Screen()
    typist = Typist(screen)
    watch = await _watch(screen, mode)
    try:
        assert await _read_protected(adapters, typist, pair=True) == STATUS
        # The bond alone opens it again: no second passkey on a new connection.
        assert await _read_protected(adapters, RefusingAgent(), pair=False) == STATUS
    finally:
        await watch.stop()
    assert typist.asked == [(question, adapters.watch)]
    assert screen.passkeys.empty()


@pytest.mark.parametrize("agent", [None, RefusingAgent()], ids=["no-agent", "refusing-agent"])
async def test_unbonded_central_is_refused(adapters: Adapters, agent: PairingAgent | None) -> None:
    screen = Screen()
    watch = await _watch(screen)
    try:
        with pytest.raises(BleakError) as refused:
            await _read_protected(adapters, agent, pair=agent is not None)
    finally:
        await watch.stop()
    print(f"refused with: {refused.value!r}")
