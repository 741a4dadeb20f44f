"""Attacks on pairing and on bonds: a spoofed bonded address, a forged or lost key,
wrong passkeys, a pairing left hanging, parameters the watch never offered."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os

import pytest
from bumble.smp import ErrorCode

from protocol import uuids
from tests.adversarial.conftest import (
    PHONE_ADDRESS,
    SECURITY_CODES,
    Arena,
    Screen,
    all_refused,
    secret,
)
from tests.adversarial.hostile import (
    READ_REQ,
    Pairing,
    RawCentral,
    Stalling,
    Typist,
    refused,
    u16,
)
from watchsim.peripheral.bumble_adapter import start_on_link
from watchsim.peripheral.port import PairingMode

INSUFFICIENT_ENCRYPTION = 0x0F
MIC_FAILURE = 0x3D
AUTHENTICATION_FAILURE = 0x05
# SMP (Core Vol 3 Part H 3.5): Pairing Request, Pairing Failed.
PAIRING_REQUEST, PAIRING_RESPONSE, PAIRING_FAILED = 0x01, 0x02, 0x05


@pytest.mark.parametrize("withhold_keys", [False, True], ids=["keys-sent", "keys-withheld"])
async def test_spoofed_bonded_address_pairing_just_works_gets_nothing__PR_LINK(
    arena: Arena, withhold_keys: bool
) -> None:
    """Finding 1: the phone's address, Just Works, and (or not) its own keys never sent."""
    bonds = arena.bonds()
    arena.phone.leave()
    spoofer = RawCentral(arena.link, PHONE_ADDRESS, Pairing(withhold_keys=withhold_keys))
    await spoofer.connect(arena.watch.address)
    pairing = asyncio.ensure_future(spoofer.try_pairing())
    # Withheld keys leave a pairing the watch accepted unfinished: the link is
    # encrypted once the watch has handed out its own keys.
    await asyncio.wait_for(_encrypted_or_done(spoofer, pairing), 5.0)
    profile = bytes([READ_REQ]) + u16(spoofer.handle(uuids.USER_PROFILE))
    assert refused(await spoofer.request(profile), READ_REQ) == INSUFFICIENT_ENCRYPTION
    assert await pairing == ErrorCode.AUTHENTICATION_REQUIREMENTS
    codes = await arena.refused_then_holds(spoofer)
    # A bonded address on an unencrypted link is told to encrypt, never served.
    assert {c for c in codes.values() if c in SECURITY_CODES} == {INSUFFICIENT_ENCRYPTION}
    assert arena.bonds() == bonds  # the phone's authenticated bond is untouched


async def _encrypted_or_done(central: RawCentral, pairing: asyncio.Future[int | None]) -> None:
    encrypted = asyncio.get_running_loop().create_future()
    central.connection.once("connection_encryption_change", lambda: encrypted.set_result(None))
    await asyncio.wait({pairing, encrypted}, return_when=asyncio.FIRST_COMPLETED)


async def test_spoofed_bonded_address_with_a_forged_key_is_dropped(arena: Arena) -> None:
    """Encrypting with a key of its own choosing: the watch gives the bond's LTK, the
    keys differ, the link ends (MIC failure) before any request."""
    arena.phone.leave()
    spoofer = RawCentral(arena.link, PHONE_ADDRESS)
    await spoofer.connect(arena.watch.address, discover=False)
    assert await spoofer.encryption_dropped(os.urandom(16)) == MIC_FAILURE
    await arena.holds(spoofer)


async def test_central_that_lost_its_bond_is_refused_until_it_pairs_again(
    arena: Arena,
) -> None:
    """The phone itself, after losing its keys: its stale key fails, its unencrypted
    link is told to encrypt, and only a new passkey pairing gives access again."""
    phone = arena.phone
    await phone.connect(arena.watch.address)
    assert await phone.encryption_dropped(os.urandom(16)) == MIC_FAILURE
    await phone.connect(arena.watch.address)
    codes = await all_refused(phone)
    assert {c for c in codes.values() if c in SECURITY_CODES} == {INSUFFICIENT_ENCRYPTION}
    await phone.pair()
    assert arena.screen.shown == 2
    answer = await phone.request(bytes([READ_REQ]) + u16(phone.handle(uuids.USER_PROFILE)))
    assert answer[1:] == secret(uuids.USER_PROFILE)
    await phone.disconnect()
    await arena.holds()


async def test_wrong_passkeys_back_off_with_repeated_attempts(arena: Arena) -> None:
    """One wrong passkey fails the pairing; the next attempts from that address are
    refused (Repeated Attempts) without the watch showing another passkey, on this
    link and on a new one."""
    wrong = Typist(lambda: _wrong_passkey(arena.screen))
    attacker = RawCentral(arena.link, "D1:00:00:00:00:02", Pairing(wrong, mitm=True))
    await attacker.connect(arena.watch.address)
    assert await attacker.pairing_refused() in {
        ErrorCode.CONFIRM_VALUE_FAILED,
        ErrorCode.PASSKEY_ENTRY_FAILED,
    }
    assert arena.screen.shown == 2
    for _ in range(4):
        assert await attacker.pairing_refused() == ErrorCode.REPEATED_ATTEMPTS
    await attacker.disconnect()
    await attacker.connect(arena.watch.address)
    assert await attacker.pairing_refused() == ErrorCode.REPEATED_ATTEMPTS
    assert arena.screen.shown == 2
    await arena.refused_then_holds(attacker)


async def _wrong_passkey(screen: Screen) -> int:
    return (await screen.read_passkey() + 1) % 1_000_000


async def test_pairing_left_hanging_is_dropped_after_the_smp_timeout(arena: Arena) -> None:
    """A central that starts a passkey pairing and never types: the watch drops the
    link once the SMP timeout passes (short in this test) and stores nothing."""
    bonds = arena.bonds()
    stalling = Stalling()
    attacker = RawCentral(arena.link, "D1:00:00:00:00:03", Pairing(stalling, mitm=True))
    await attacker.connect(arena.watch.address)
    dropped = asyncio.ensure_future(attacker.dropped())
    pairing = asyncio.ensure_future(attacker.connection.pair())
    assert await dropped == AUTHENTICATION_FAILURE
    pairing.cancel()
    with contextlib.suppress(BaseException):
        await pairing
    assert arena.bonds() == bonds
    # A hanging pairing counts as a failed one.
    await attacker.connect(arena.watch.address)
    assert await attacker.pairing_refused() == ErrorCode.REPEATED_ATTEMPTS
    await attacker.disconnect()
    await arena.holds(attacker)


# Raw Pairing Requests: (name, IO capability, OOB flag, AuthReq, max key size, reason).
RAW_REQUESTS = [
    ("oob-claimed", 0x02, 0x01, 0x0D, 16, ErrorCode.OOB_NOT_AVAILABLE),
    ("legacy-keyboard", 0x02, 0x00, 0x05, 16, ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("no-io-no-mitm", 0x03, 0x00, 0x09, 16, ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("key-size-15", 0x02, 0x00, 0x0D, 15, ErrorCode.ENCRYPTION_KEY_SIZE),
]


@pytest.mark.parametrize(
    ("io", "oob", "auth_req", "key_size", "reason"),
    [r[1:] for r in RAW_REQUESTS],
    ids=[r[0] for r in RAW_REQUESTS],
)
async def test_raw_pairing_request_the_watch_cannot_honour_is_refused(
    arena: Arena, io: int, oob: int, auth_req: int, key_size: int, reason: ErrorCode
) -> None:
    attacker = RawCentral(arena.link, "D1:00:00:00:00:04", raw_smp=True)
    await attacker.connect(arena.watch.address)
    request = bytes([PAIRING_REQUEST, io, oob, auth_req, key_size, 0x07, 0x07])
    assert await attacker.smp_request(request) == bytes([PAIRING_FAILED, reason])
    assert arena.screen.shown == 1
    await arena.refused_then_holds(attacker)


@pytest.mark.parametrize(
    "pdu",
    [bytes([PAIRING_REQUEST, 0x02]), bytes([0x03]) + bytes(16), bytes([0x0C]) + bytes(64)],
    ids=["truncated-request", "confirm-first", "public-key-first"],
)
async def test_malformed_or_out_of_order_smp_is_refused(arena: Arena, pdu: bytes) -> None:
    attacker = RawCentral(arena.link, "D1:00:00:00:00:05", raw_smp=True)
    await attacker.connect(arena.watch.address)
    answer = await attacker.smp_request(pdu)
    assert answer[0] == PAIRING_FAILED
    await arena.refused_then_holds(attacker)


async def test_just_works_watch_keeps_an_authenticated_bond_from_a_weaker_pairing(
    arena: Arena,
) -> None:
    """A watch switched to Just Works mode still holds the phone's passkey bond: a
    Just Works pairing from the phone's address would replace it with a weaker one,
    so it is refused, and the phone keeps its authenticated access."""
    await arena.watch.stop()
    arena.watch = await start_on_link(
        arena.link,
        arena.state_dir,
        mode=PairingMode.JUST_WORKS,
    )
    for c in (uuids.BODY_SENSOR_LOCATION, uuids.USER_PROFILE):
        arena.watch.set_read_handler(c, functools.partial(secret, c))
    bonds = arena.bonds()
    arena.phone.leave()
    spoofer = RawCentral(arena.link, PHONE_ADDRESS)
    await spoofer.connect(arena.watch.address)
    assert await spoofer.pairing_refused() == ErrorCode.AUTHENTICATION_REQUIREMENTS
    await all_refused(spoofer)
    assert arena.bonds() == bonds
    await spoofer.disconnect()
    spoofer.leave()
    phone = arena.phone
    await phone.connect(arena.watch.address)
    await asyncio.wait_for(phone.connection.encrypt(), 5.0)
    answer = await phone.request(bytes([READ_REQ]) + u16(phone.handle(uuids.USER_PROFILE)))
    assert answer[1:] == secret(uuids.USER_PROFILE)
    await phone.disconnect()
    arena.assert_no_leftovers()


async def test_encryption_in_the_middle_of_a_pairing_is_dropped(arena: Arena) -> None:
    """A spoofer of the phone's address starts a pairing, then encrypts with a key of
    its own before the pairing made one: no key matches, the link ends, no traceback."""
    arena.phone.leave()
    spoofer = RawCentral(arena.link, PHONE_ADDRESS, raw_smp=True)
    await spoofer.connect(arena.watch.address, discover=False)
    request = bytes([PAIRING_REQUEST, 0x02, 0x00, 0x0D, 16, 0x07, 0x07])
    assert (await spoofer.smp_request(request))[0] == PAIRING_RESPONSE
    assert await spoofer.encryption_dropped(os.urandom(16)) == MIC_FAILURE
    await arena.holds(spoofer)
