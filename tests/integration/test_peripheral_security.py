"""The Bumble adapter enforces each characteristic's security (Bumble itself does not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bumble.core import ProtocolError
from bumble.device import Peer as BumblePeer
from bumble.pairing import PairingDelegate
from bumble.smp import SMP_CONFIRM_VALUE_FAILED_ERROR, SMP_NUMERIC_COMPARISON_FAILED_ERROR

from protocol import uuids
from tests.integration.test_peripheral_bumble import (
    CENTRAL_ADDRESS,
    WAIT,
    Central,
    Comparison,
    EventLog,
    PasskeyEntry,
    Screen,
    characteristic,
    disconnected,
)
from watchsim.peripheral.bumble_adapter import new_link, start_on_link
from watchsim.peripheral.port import AttErrorCode, Connected, PairingMode, Peer


async def _noop_write(_peer: Peer, _value: bytes) -> None:
    return None


async def assert_refused(peer: BumblePeer, code: int) -> None:
    """Read, write and subscribe on protected characteristics all get ``code``."""
    with pytest.raises(ProtocolError) as read:
        await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION))
    assert read.value.error_code == code
    with pytest.raises(ProtocolError) as write:
        await peer.write_value(
            characteristic(peer, uuids.USER_PROFILE), b"\x01", with_response=True
        )
    assert write.value.error_code == code
    with pytest.raises(ProtocolError) as subscribe:
        await peer.subscribe(characteristic(peer, uuids.HEART_RATE_MEASUREMENT))
    assert subscribe.value.error_code == code


async def test_unpaired_central_is_refused_on_protected_characteristics__PR_LINK(
    tmp_path: Path,
) -> None:
    link = new_link()
    watch = await start_on_link(link, tmp_path, display=Screen())
    watch.set_write_handler(uuids.USER_PROFILE, _noop_write)
    try:
        peer = await Central(link, CENTRAL_ADDRESS).connect(watch.address)
        await assert_refused(peer, AttErrorCode.INSUFFICIENT_AUTHENTICATION)
        # Open characteristics stay readable without pairing.
        assert await peer.read_value(characteristic(peer, uuids.MODEL_NUMBER)) == b""
    finally:
        await watch.stop()


async def test_write_to_read_only_characteristic_is_refused(tmp_path: Path) -> None:
    link = new_link()
    watch = await start_on_link(link, tmp_path, display=Screen())
    try:
        peer = await Central(link, CENTRAL_ADDRESS).connect(watch.address)
        with pytest.raises(ProtocolError) as write:
            await peer.write_value(
                characteristic(peer, uuids.BATTERY_LEVEL), b"\x05", with_response=True
            )
        assert write.value.error_code == AttErrorCode.WRITE_NOT_PERMITTED
    finally:
        await watch.stop()


async def test_just_works_bond_is_refused_where_authentication_is_required__PR_LINK(
    tmp_path: Path,
) -> None:
    link = new_link()
    watch = await start_on_link(link, tmp_path, mode=PairingMode.JUST_WORKS)
    watch.set_write_handler(uuids.USER_PROFILE, _noop_write)
    try:
        central = Central(
            link,
            CENTRAL_ADDRESS,
            PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
        )
        peer = await central.connect(watch.address)
        await asyncio.wait_for(peer.connection.pair(), WAIT)
        assert peer.connection.encryption
        await assert_refused(peer, AttErrorCode.INSUFFICIENT_AUTHENTICATION)
    finally:
        await watch.stop()


async def test_passkey_bond_survives_restart_and_reencrypts_without_passkey(
    tmp_path: Path,
) -> None:
    link = new_link()
    screen = Screen()
    watch = await start_on_link(link, tmp_path, display=screen)
    watch.set_read_handler(uuids.BODY_SENSOR_LOCATION, lambda: b"\x02")
    central = Central(link, CENTRAL_ADDRESS, PasskeyEntry(screen.read_passkey))
    peer = await central.connect(watch.address)
    await asyncio.wait_for(peer.connection.pair(), WAIT)
    assert await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION)) == b"\x02"
    await disconnected(peer.connection)
    await watch.stop()
    assert screen.shown == 1

    # Same state directory: same identity address and the bond from disk.
    watch = await start_on_link(link, tmp_path, display=screen)
    watch.set_read_handler(uuids.BODY_SENSOR_LOCATION, lambda: b"\x03")
    log = EventLog()
    watch.add_listener(log)
    try:
        peer = await central.connect(watch.address)
        assert (await log.wait_for(Connected)).peer.bonded
        # A bonded but unencrypted link is told to encrypt, not to pair.
        with pytest.raises(ProtocolError) as read:
            await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION))
        assert read.value.error_code == AttErrorCode.INSUFFICIENT_ENCRYPTION
        await asyncio.wait_for(peer.connection.encrypt(), WAIT)
        value = await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION))
        assert value == b"\x03"
        assert screen.shown == 1
    finally:
        await watch.stop()


class WatchButton:
    """The watch's numeric-comparison prompt, answered with ``answer``."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.numbers: list[int] = []

    async def show_passkey(self, peer_address: str, passkey: int) -> None:
        raise AssertionError("numeric comparison must not show a passkey")

    async def confirm_number(self, peer_address: str, number: int) -> bool:
        self.numbers.append(number)
        return self.answer


@pytest.mark.parametrize("answer", [True, False])
async def test_numeric_comparison_follows_the_watch_answer(tmp_path: Path, answer: bool) -> None:
    link = new_link()
    button = WatchButton(answer)
    watch = await start_on_link(link, tmp_path, mode=PairingMode.NUMERIC, display=button)
    watch.set_read_handler(uuids.BODY_SENSOR_LOCATION, lambda: b"\x01")
    try:
        central = Comparison()
        peer = await Central(link, CENTRAL_ADDRESS, central).connect(watch.address)
        if answer:
            await asyncio.wait_for(peer.connection.pair(), WAIT)
            value = await peer.read_value(characteristic(peer, uuids.BODY_SENSOR_LOCATION))
            assert value == b"\x01"
        else:
            with pytest.raises(ProtocolError) as failed:
                await asyncio.wait_for(peer.connection.pair(), WAIT)
            # Bumble answers a "no" with Confirm Value Failed; either code means refused.
            assert failed.value.error_code in {
                SMP_CONFIRM_VALUE_FAILED_ERROR,
                SMP_NUMERIC_COMPARISON_FAILED_ERROR,
            }
        assert button.numbers == central.numbers
        assert len(button.numbers) == 1
    finally:
        await watch.stop()
