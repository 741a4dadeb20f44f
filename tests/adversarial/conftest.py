"""The arena: a watch started the project's own way (``start_on_link``), its legitimate
phone paired with the passkey and subscribed to everything, and what to check after
every attack: the phone is still served, nothing reached the attacker, no per-link
state is left behind, and no traceback was logged."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bumble.link import LocalLink

from protocol import uuids
from protocol.profile import PROFILE, CharacteristicSpec, Property, Security
from tests.adversarial.hostile import (
    ATTEMPTS,
    ERROR_RSP,
    READ_REQ,
    SUBSCRIPTIONS,
    WRITE_REQ,
    Pairing,
    RawCentral,
    Typist,
    refused,
    u16,
)
from watchsim.peripheral.bumble_adapter import BumblePeripheral, start_on_link
from watchsim.peripheral.port import Peer

PHONE_ADDRESS = "C2:11:22:33:44:55"
# Short enough that a hanging pairing is dropped within a test, long enough that a
# legitimate one on a loaded machine finishes.
SMP_TIMEOUT_S = 2.0

# The shortest the specification allows: each of the many connections is found sooner.
ADVERTISING_INTERVAL_MS = 20.0

PROTECTED: tuple[CharacteristicSpec, ...] = tuple(
    c for s in PROFILE for c in s.characteristics if c.security is not Security.OPEN
)
SUBSCRIBABLE = Property.NOTIFY | Property.INDICATE
# Read/Write Not Permitted, Insufficient Authentication, Insufficient Encryption.
REFUSALS = frozenset({0x02, 0x03, 0x05, 0x0F})
SECURITY_CODES = frozenset({0x05, 0x0F})


async def all_refused(attacker: RawCentral) -> dict[tuple[str, str], int]:
    """Every protected characteristic by every ATT access method: each request gets an
    Error Response with a refusal code; the codes, by (characteristic, method)."""
    codes: dict[tuple[str, str], int] = {}
    for c in PROTECTED:
        found = attacker.found[c.uuid]
        for name, attempt in ATTEMPTS.items():
            if name in SUBSCRIPTIONS and found.cccd is None:
                continue
            opcode, answer = await attempt(attacker, found)
            if answer is not None:
                codes[(c.name, name)] = refused(answer, opcode)
    assert set(codes.values()) <= REFUSALS, codes
    return codes


def secret(uuid: str) -> bytes:
    """What the watch holds for a protected characteristic: it must never reach an
    attacker, in any PDU."""
    return b"SECRET-" + uuid[4:8].encode()


class Screen:
    """The watch's display: every passkey it showed, in order."""

    def __init__(self) -> None:
        self.passkeys: asyncio.Queue[int] = asyncio.Queue()
        self.shown = 0

    async def show_passkey(self, peer_address: str, passkey: int) -> None:
        self.shown += 1
        self.passkeys.put_nowait(passkey)

    async def confirm_number(self, peer_address: str, number: int) -> bool:
        return False

    async def read_passkey(self) -> int:
        return await asyncio.wait_for(self.passkeys.get(), 5.0)


@dataclass
class Arena:
    link: LocalLink
    watch: BumblePeripheral
    screen: Screen
    phone: RawCentral
    state_dir: Path
    caplog: pytest.LogCaptureFixture
    writes: list[tuple[str, str, bytes]] = field(default_factory=list)

    def bonds(self) -> bytes:
        return (self.state_dir / "bonds.json").read_bytes()

    async def phone_back(self) -> None:
        """The phone reconnects, re-encrypts with its bond (no passkey) and subscribes
        to every protected characteristic that notifies or indicates."""
        phone = self.phone
        await phone.connect(self.watch.address)
        await asyncio.wait_for(phone.connection.encrypt(), 5.0)
        for c in PROTECTED:
            if c.properties & SUBSCRIBABLE:
                bits = 0x0001 if Property.NOTIFY in c.properties else 0x0002
                answer = await phone.request(
                    bytes([WRITE_REQ]) + u16(phone.cccd(c.uuid)) + u16(bits)
                )
                assert answer[0] != ERROR_RSP, (c.name, answer.hex())

    async def refused_then_holds(self, attacker: RawCentral) -> dict[tuple[str, str], int]:
        """Every access refused, then the attacker leaves and the arena ``holds``."""
        codes = await all_refused(attacker)
        await attacker.disconnect()
        await self.holds(attacker)
        return codes

    async def holds(self, *attackers: RawCentral) -> None:
        """After an attack: the phone is served, the attackers got nothing, the watch
        keeps no state of theirs and logged no traceback."""
        for attacker in attackers:
            assert attacker.device.connections == {}, "disconnect the attacker first"
            attacker.leave()  # a spoofer's address is the phone's
        self.assert_no_leftovers()
        phone = self.phone
        await self.phone_back()
        answer = await phone.request(
            bytes([READ_REQ]) + u16(phone.handle(uuids.BODY_SENSOR_LOCATION))
        )
        assert answer[1:] == secret(uuids.BODY_SENSOR_LOCATION), answer.hex()
        before = len(phone.pushed)
        pushes = [c for c in PROTECTED if c.properties & SUBSCRIBABLE]
        for c in pushes:
            if Property.NOTIFY in c.properties:
                assert await self.watch.notify(c.uuid, secret(c.uuid)) == 1
            else:
                assert await self.watch.indicate(c.uuid, secret(c.uuid)) == 1
        await phone.sync()
        assert len(phone.pushed) - before == len(pushes)
        for attacker in attackers:
            leaked = [pdu for pdu in attacker.received if b"SECRET" in pdu]
            assert not leaked, [pdu.hex() for pdu in leaked]
            assert not attacker.pushed, [pdu.hex() for pdu in attacker.pushed]
            address = str(attacker.device.static_address)
            assert not [w for w in self.writes if w[0] == address], self.writes
        self.assert_no_leftovers()

    def assert_no_leftovers(self) -> None:
        """Per-link state exists only for links that are up (memory stays flat)."""
        device = self.watch.device
        up = set(device.connections.values())
        assert len(self.watch.peers) == len(up)
        assert set(device.gatt_server.subscribers) <= up
        assert set(device.gatt_server.prepared_writes) <= up
        assert set(device.smp_manager.sessions) <= set(device.connections)
        tracebacks = [r for r in self.caplog.records if r.exc_info]
        assert not tracebacks, [r.getMessage() for r in tracebacks]


@pytest.fixture
async def arena(
    link: LocalLink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Arena]:
    caplog.set_level(logging.INFO)
    screen = Screen()
    watch = await start_on_link(
        link,
        tmp_path,
        display=screen,
        smp_timeout_s=SMP_TIMEOUT_S,
        advertising_interval_ms=ADVERTISING_INTERVAL_MS,
    )
    phone = RawCentral(
        link, PHONE_ADDRESS, Pairing(delegate=Typist(screen.read_passkey), mitm=True)
    )
    arena = Arena(link, watch, screen, phone, tmp_path, caplog)
    for c in PROTECTED:
        if Property.READ in c.properties:
            watch.set_read_handler(c.uuid, functools.partial(secret, c.uuid))
        if c.properties & (Property.WRITE | Property.WRITE_WITHOUT_RESPONSE):

            async def record(peer: Peer, value: bytes, uuid: str = c.uuid) -> None:
                arena.writes.append((peer.address, uuid, value))

            watch.set_write_handler(c.uuid, record)
    try:
        await phone.connect(watch.address)
        await phone.pair()
        assert screen.shown == 1
        # The watch serves one central at a time: the phone is away during an attack.
        await phone.disconnect()
        yield arena
    finally:
        await arena.watch.stop()  # a test may have restarted it
