"""Pairing, bonds that survive restarts, and lost pairings, through bleak's API."""

from __future__ import annotations

from pathlib import Path

import pytest
from bleak import BleakClient
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink

from phoneagent.transport import (
    BumbleRadio,
    JsonFileBondStore,
    MemoryBondStore,
    PairingFailedError,
    PairingLostError,
)
from tests.integration.test_bleak_bumble_backend import (
    SECRET_CHAR,
    WAIT,
    Agent,
    PlainWatch,
    agent_of,
)
from watchsim.peripheral.bumble_adapter import new_link, start_on_link
from watchsim.peripheral.port import PairingMode
from watchsim.testing import start_loopback_watch

WATCH = "C4:00:00:00:00:01"


async def paired_session(
    link: LocalLink, agent: Agent, bonds: JsonFileBondStore | MemoryBondStore, keys: MemoryKeyStore
) -> bytes:
    """Start a watch and a radio on ``link``, pair, and read the protected value."""
    await PlainWatch(link, WATCH, "W", keystore=keys).start()
    async with await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(agent)) as radio:
        client = BleakClient(WATCH, timeout=WAIT, pair=True, backend=radio.client_backend)
        async with client:
            return bytes(await client.read_gatt_char(SECRET_CHAR))


async def test_passkey_pairing_stores_bond(tmp_path: Path) -> None:
    agent, bonds = Agent(), JsonFileBondStore(tmp_path / "bonds.json")
    assert await paired_session(new_link(), agent, bonds, MemoryKeyStore()) == b"secret"
    assert agent.asked == 1
    assert bonds.peers() == [WATCH]


async def test_numeric_comparison(tmp_path: Path) -> None:
    link, agent, bonds = new_link(), Agent(passkey=None), MemoryBondStore()
    await PlainWatch(link, WATCH, "W", numeric=True).start()
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(agent)) as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        await client.pair()
        assert await client.read_gatt_char(SECRET_CHAR) == b"secret"
    assert agent.asked == 1 and bonds.peers() == [WATCH]


async def test_wrong_passkey_fails_cleanly() -> None:
    link, bonds = new_link(), MemoryBondStore()
    await PlainWatch(link, WATCH, "W", passkey=123456).start()
    agent = Agent(passkey=654321)
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(agent)) as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        with pytest.raises(PairingFailedError):
            await client.pair()
    assert bonds.peers() == []


async def test_a_wrong_passkey_and_the_retry_say_what_to_do(tmp_path: Path) -> None:
    """Bumble's words were all a person got: "ProtocolError(smp/CONFIRM_VALUE_FAILED
    [0x4])", then "ProtocolError(smp/REPEATED_ATTEMPTS [0x9])" from the watch's back-off."""
    link, bonds = new_link(), MemoryBondStore()
    watch = await start_loopback_watch(link, tmp_path)
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(Agent(passkey=1))) as radio,
        BleakClient(watch.address, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        with pytest.raises(PairingFailedError, match="the passkey did not match"):
            await client.pair()
        with pytest.raises(PairingFailedError, match="refuses new attempts for a while"):
            await client.pair()
    assert bonds.peers() == []
    await watch.stop()


async def test_a_just_works_watch_is_refused_and_told_why(tmp_path: Path) -> None:
    """The agent needs MITM protection: a watch with no display or input is refused, and
    the error says so (Bumble alone reports CONFIRM_VALUE_FAILED)."""
    link, bonds = new_link(), MemoryBondStore()
    watch = await start_on_link(link, tmp_path, mode=PairingMode.JUST_WORKS)
    agent = Agent()
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(agent)) as radio,
        BleakClient(watch.address, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        with pytest.raises(PairingFailedError, match="offers only Just Works pairing"):
            await client.pair()
    assert agent.asked == 0 and bonds.peers() == []
    await watch.stop()


async def test_reconnect_after_restart_reencrypts_without_passkey(tmp_path: Path) -> None:
    bond_file, watch_keys = tmp_path / "bonds.json", MemoryKeyStore()
    await paired_session(new_link(), Agent(), JsonFileBondStore(bond_file), watch_keys)
    # Both sides rebuilt from scratch on a new link; only the stored bonds carry over.
    link, agent = new_link(), Agent()
    await PlainWatch(link, WATCH, "W", keystore=watch_keys).start()
    bonds = JsonFileBondStore(bond_file)
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(agent)) as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        assert await client.read_gatt_char(SECRET_CHAR) == b"secret"
    assert agent.asked == 0


async def test_watch_forgot_bond_gives_pairing_lost() -> None:
    bonds, watch_keys = MemoryBondStore(), MemoryKeyStore()
    await paired_session(new_link(), Agent(), bonds, watch_keys)
    await watch_keys.delete_all()
    link = new_link()
    await PlainWatch(link, WATCH, "W", keystore=watch_keys).start()
    async with (
        await BumbleRadio.on_link(link, bonds=bonds, agent=agent_of(Agent())) as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        with pytest.raises(PairingLostError, match="run pair again"):
            await client.read_gatt_char(SECRET_CHAR)


async def test_unpair_forgets_bond() -> None:
    bonds = MemoryBondStore()
    await paired_session(new_link(), Agent(), bonds, MemoryKeyStore())
    link = new_link()
    await PlainWatch(link, WATCH, "W").start()
    async with await BumbleRadio.on_link(link, bonds=bonds) as radio:
        client = BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend)
        await client.connect()
        await client.unpair()
        assert not client.is_connected
    assert bonds.peers() == []
