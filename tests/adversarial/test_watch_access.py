"""Every protected characteristic by every ATT access method, from hostile centrals in
every state short of a passkey pairing: nothing is read, written or pushed to them."""

from __future__ import annotations

import pytest
from bumble.pairing import PairingDelegate
from bumble.smp import ErrorCode

from tests.adversarial.conftest import SECURITY_CODES, Arena
from tests.adversarial.hostile import IoCapability, Pairing, RawCentral, Typist

ATTACKER = "D1:00:00:00:00:01"
INSUFFICIENT_AUTHENTICATION = 0x05


@pytest.mark.parametrize("mtu", [None, 517])
async def test_unpaired_central_gets_an_error_for_every_access__PR_LINK(
    arena: Arena, mtu: int | None
) -> None:
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    if mtu is not None:
        assert await attacker.exchange_mtu(mtu) == mtu
    codes = await arena.refused_then_holds(attacker)
    # Past the property checks, an unbonded central is told to pair.
    assert {c for c in codes.values() if c in SECURITY_CODES} == {INSUFFICIENT_AUTHENTICATION}


# A central that can show a number but not type one: with the watch's display, Just Works.
DISPLAY_ONLY = PairingDelegate(io_capability=IoCapability.DISPLAY_OUTPUT_ONLY)
# (name, SMP parameters, the reason the watch refuses with)
WEAK_PAIRINGS = [
    ("just-works", Pairing(), ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("just-works-no-bonding", Pairing(bonding=False), ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("legacy", Pairing(sc=False, mitm=True), ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("no-io-mitm", Pairing(mitm=True), ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("display-only-mitm", Pairing(DISPLAY_ONLY, mitm=True), ErrorCode.AUTHENTICATION_REQUIREMENTS),
    ("key-size-7", Pairing(mitm=True, key_size=7), ErrorCode.ENCRYPTION_KEY_SIZE),
]


@pytest.mark.parametrize(
    ("pairing", "reason"),
    [case[1:] for case in WEAK_PAIRINGS],
    ids=[case[0] for case in WEAK_PAIRINGS],
)
async def test_weak_pairing_is_refused_and_stores_no_bond__PR_LINK(
    arena: Arena, pairing: Pairing, reason: ErrorCode
) -> None:
    bonds = arena.bonds()
    attacker = RawCentral(arena.link, ATTACKER, pairing)
    await attacker.connect(arena.watch.address)
    assert await attacker.pairing_refused() == reason
    assert not attacker.connection.is_encrypted
    assert arena.screen.shown == 1  # no passkey shown for a refused pairing
    await arena.refused_then_holds(attacker)
    assert arena.bonds() == bonds


async def test_legacy_passkey_pairing_is_refused_before_a_passkey_is_shown(
    arena: Arena,
) -> None:
    """A legacy passkey can be cracked from a recording: the watch is Secure
    Connections Only, even for a central that could type the passkey."""
    typist = Typist(arena.screen.read_passkey)
    attacker = RawCentral(arena.link, ATTACKER, Pairing(typist, sc=False, mitm=True))
    assert typist.io_capability == IoCapability.KEYBOARD_INPUT_ONLY
    await attacker.connect(arena.watch.address)
    assert await attacker.pairing_refused() == ErrorCode.AUTHENTICATION_REQUIREMENTS
    assert arena.screen.shown == 1
    await arena.refused_then_holds(attacker)
