"""Malformed ATT from a hostile central: truncated and unknown PDUs, bad CCCD values,
prepared-write and write-command floods, and many links opened and dropped. Every
request gets an answer, nothing is logged with a traceback, no state is left behind."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest
from bumble.device import Connection

from protocol import uuids
from protocol.profile import OPEN, CharacteristicSpec, Property, ServiceSpec
from tests.adversarial.conftest import Arena, Screen, secret
from tests.adversarial.hostile import (
    ATTRIBUTE_NOT_FOUND,
    ERROR_RSP,
    EXECUTE_WRITE_REQ,
    INVALID_ATTRIBUTE_VALUE_LENGTH,
    INVALID_PDU,
    PREPARE_QUEUE_FULL,
    PREPARE_WRITE_REQ,
    READ_REQ,
    REQUEST_NOT_SUPPORTED,
    VALUE_NOT_ALLOWED,
    WRITE_CMD,
    WRITE_REQ,
    RawCentral,
    refused,
    u16,
)
from watchsim.peripheral.bumble_adapter import new_link, start_on_link
from watchsim.peripheral.port import Peer

ATTACKER = "D2:00:00:00:00:01"
WRITE_NOT_PERMITTED = 0x03

# Known requests cut short: each gets Invalid PDU.
TRUNCATED = [
    bytes([0x02]),  # Exchange MTU without its MTU
    bytes([0x04, 0x01]),  # Find Information, half a handle
    bytes([0x06, 0x01, 0x00, 0xFF, 0xFF]),  # Find By Type Value without a type
    bytes([0x08, 0x01, 0x00, 0xFF]),  # Read By Type without a type
    bytes([READ_REQ, 0x03]),  # Read, half a handle
    bytes([0x0C, 0x03, 0x00, 0x00]),  # Read Blob, half an offset
    bytes([0x10, 0x01, 0x00]),  # Read By Group Type without an end
    bytes([WRITE_REQ, 0x03]),  # Write, half a handle
    bytes([PREPARE_WRITE_REQ, 0x03, 0x00, 0x00]),  # Prepare Write, half an offset
    bytes([EXECUTE_WRITE_REQ]),  # Execute Write without flags
]
# Opcodes no version of ATT defines (none has the command bit 0x40).
UNKNOWN = [0x00, 0x24, 0x30, 0x3F, 0x80, 0xA0]


async def test_truncated_and_unknown_requests_get_an_error_response(arena: Arena) -> None:
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    for pdu in TRUNCATED:
        assert refused(await attacker.request(pdu), pdu[0]) == INVALID_PDU, pdu.hex()
    for opcode in UNKNOWN:
        pdu = bytes([opcode, 0x01, 0x00])
        assert refused(await attacker.request(pdu), opcode) == REQUEST_NOT_SUPPORTED
    # Unknown and truncated commands get no answer (and break nothing).
    for pdu in (bytes([0x7F, 0x01]), bytes([WRITE_CMD, 0x03]), bytes([0xD2, 0x03])):
        await attacker.command(pdu)
    await arena.refused_then_holds(attacker)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"", INVALID_ATTRIBUTE_VALUE_LENGTH),
        (b"\x01", INVALID_ATTRIBUTE_VALUE_LENGTH),
        (b"\x01\x00\x00", INVALID_ATTRIBUTE_VALUE_LENGTH),
        (b"\xff\xff", VALUE_NOT_ALLOWED),
        (b"\x04\x00", VALUE_NOT_ALLOWED),
        (b"\x02\x00", VALUE_NOT_ALLOWED),  # Battery Level notifies, never indicates
    ],
    ids=["empty", "1-byte", "3-bytes", "ffff", "reserved-bit", "indicate-on-notify-only"],
)
async def test_cccd_write_of_wrong_length_or_value_is_refused(
    arena: Arena, value: bytes, code: int
) -> None:
    """Finding 4, on the one CCCD an unpaired central may write (Battery Level)."""
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    cccd = attacker.cccd(uuids.BATTERY_LEVEL)
    answer = await attacker.request(bytes([WRITE_REQ]) + u16(cccd) + value)
    assert refused(answer, WRITE_REQ) == code
    answer = await attacker.request(bytes([READ_REQ]) + u16(cccd))
    assert answer == bytes([READ_REQ + 1, 0, 0])  # still unsubscribed
    await attacker.disconnect()
    await arena.holds(attacker)


async def test_declarations_and_device_name_are_not_writable(arena: Arena) -> None:
    """Bumble writes any attribute a Write Request names; a declaration or the GAP
    device name would be overwritten for every central."""
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    declaration = attacker.handle(uuids.BODY_SENSOR_LOCATION) - 1
    name = attacker.handle("00002a00" + "-0000-1000-8000-00805f9b34fb")
    for handle in (0x0001, declaration, name):
        for method in (WRITE_REQ, PREPARE_WRITE_REQ):
            offset = u16(0) if method == PREPARE_WRITE_REQ else b""
            answer = await attacker.request(bytes([method]) + u16(handle) + offset + b"pwned")
            assert refused(answer, method) == WRITE_NOT_PERMITTED, hex(handle)
        await attacker.command(bytes([WRITE_CMD]) + u16(handle) + b"pwned")
        answer = await attacker.request(bytes([READ_REQ]) + u16(handle))
        assert b"pwned" not in answer
    await attacker.disconnect()
    await arena.holds(attacker)


async def test_write_command_flood_is_dropped_without_tracebacks(arena: Arena) -> None:
    """Finding 6: refused Write Commands to every protected characteristic, many times:
    nothing written, nothing logged above debug level."""
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    handles = [found.value for found in attacker.found.values()]
    for _ in range(20):
        for handle in handles:
            attacker.send(bytes([WRITE_CMD]) + u16(handle) + b"\x01\x02")
    await attacker.sync()
    noisy = [
        r for r in arena.caplog.records if r.name.startswith("watchsim") and r.levelname != "DEBUG"
    ]
    assert not noisy, [r.getMessage() for r in noisy]
    await attacker.disconnect()
    await arena.holds(attacker)


@pytest.mark.parametrize("mtu", [23, 517])
async def test_long_write_burst_is_bounded_and_refused(arena: Arena, mtu: int) -> None:
    """Prepared writes: refused on protected characteristics before anything is queued;
    on the one open writable attribute (a CCCD) the queue is bounded, and an over-long
    value is refused at execution."""
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    if mtu != 23:
        assert await attacker.exchange_mtu(mtu) == mtu
    part = bytes(mtu - 5)
    protected = attacker.handle(uuids.USER_PROFILE)
    for offset in range(0, 10 * len(part), len(part)):
        pdu = bytes([PREPARE_WRITE_REQ]) + u16(protected) + u16(offset) + part
        assert refused(await attacker.request(pdu), PREPARE_WRITE_REQ) == 0x05
    cccd = attacker.cccd(uuids.BATTERY_LEVEL)
    queued = 0
    while True:
        pdu = bytes([PREPARE_WRITE_REQ]) + u16(cccd) + u16(queued * len(part)) + part
        answer = await attacker.request(pdu)
        if answer[0] == ERROR_RSP:
            assert refused(answer, PREPARE_WRITE_REQ) == PREPARE_QUEUE_FULL
            break
        assert answer == bytes([PREPARE_WRITE_REQ + 1]) + pdu[1:]
        queued += 1
    assert queued < 100
    answer = await attacker.request(bytes([EXECUTE_WRITE_REQ, 0x01]))
    assert refused(answer, EXECUTE_WRITE_REQ) == INVALID_ATTRIBUTE_VALUE_LENGTH
    assert not arena.watch.device.gatt_server.prepared_writes.get(attacker_link(arena))
    await attacker.disconnect()
    await arena.holds(attacker)


def attacker_link(arena: Arena) -> Connection:
    (connection,) = arena.watch.device.connections.values()
    return connection


CYCLES = 100


async def test_rapid_connect_drop_cycles_leave_no_state(arena: Arena) -> None:
    """100 links opened and dropped at once, half of them mid-pairing or mid-request:
    the watch keeps nothing per link, and its memory does not grow with the cycles."""
    attacker = RawCentral(arena.link, ATTACKER, raw_smp=True)
    sizes = []
    snaps = []
    tracemalloc.start()
    try:
        for cycle in range(CYCLES):
            await attacker.connect(arena.watch.address, discover=False)
            if cycle % 2:
                attacker.send(bytes([READ_REQ]) + u16(0x0003))
                attacker.device.send_l2cap_pdu(
                    attacker.connection.handle, 0x0006, bytes([0x01, 0x02, 0, 0x0D, 16, 7, 7])
                )
            await attacker.disconnect()
            if cycle in (CYCLES // 2 - 1, CYCLES - 1):
                arena.assert_no_leftovers()
                gc.collect()
                sizes.append(tracemalloc.get_traced_memory()[0])
                snaps.append(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    # What the watch's own code holds does not grow with the cycles (a few objects of
    # slack: a timer, a log record in flight); all memory grows by less than what 50
    # links' state would take (the test's own log capture holds a record per cycle).
    ours = [tracemalloc.Filter(True, "*/watchsim/*")]
    growth = snaps[1].filter_traces(ours).compare_to(snaps[0].filter_traces(ours), "filename")
    assert sum(stat.size_diff for stat in growth) < 1024, growth[:5]
    assert sizes[1] - sizes[0] < 64 * 1024, sizes
    assert len(arena.watch.backoff) <= 1
    await arena.holds(attacker)


async def test_find_by_type_value_cannot_probe_a_protected_value(arena: Arena) -> None:
    """Find By Type Value compares values: a protected one is no match (never a silent
    request), even when the guess is right."""
    attacker = RawCentral(arena.link, ATTACKER)
    await attacker.connect(arena.watch.address)
    guess = secret(uuids.BODY_SENSOR_LOCATION)
    pdu = bytes([0x06]) + u16(0x0001) + u16(0xFFFF) + u16(0x2A38) + guess
    assert refused(await attacker.request(pdu), 0x06) == ATTRIBUTE_NOT_FOUND
    await attacker.disconnect()
    await arena.holds(attacker)


async def test_read_multiple_serves_the_paired_phone(arena: Arena) -> None:
    """The same requests the attackers are refused give the paired phone its values."""
    await arena.phone_back()
    phone = arena.phone
    handles = u16(phone.handle(uuids.BODY_SENSOR_LOCATION)) + u16(phone.handle(uuids.USER_PROFILE))
    expected = [secret(uuids.BODY_SENSOR_LOCATION), secret(uuids.USER_PROFILE)]
    answer = await phone.request(bytes([0x0E]) + handles)
    assert answer == bytes([0x0F]) + b"".join(expected)
    answer = await phone.request(bytes([0x20]) + handles)
    tuples = b"".join(u16(len(v)) + v for v in expected)
    assert answer == bytes([0x21]) + tuples[:22]  # cut at MTU 23 - 1, lengths kept whole


async def test_write_command_needs_the_write_without_response_property(arena: Arena) -> None:
    """No profile characteristic offers Write Without Response: not even the paired
    phone's Write Command reaches a handler (its Write Request does)."""
    await arena.phone_back()
    phone = arena.phone
    handle = u16(phone.handle(uuids.USER_PROFILE))
    await phone.command(bytes([WRITE_CMD]) + handle + bytes(2))
    assert arena.writes == []
    answer = await phone.request(bytes([WRITE_REQ]) + handle + bytes(3))
    assert answer == bytes([WRITE_REQ + 1])
    assert [len(value) for _, _, value in arena.writes] == [3]


COMMANDED = "f3a2ffff-0000-4000-8000-00000000c0de"


async def test_write_command_longer_than_any_attribute_is_dropped(tmp_path: Path) -> None:
    """Past 512 bytes (the longest attribute value GATT allows) a Write Command reaches
    no handler, even on an open characteristic that takes commands."""
    spec = CharacteristicSpec(COMMANDED, "Commanded", Property.WRITE_WITHOUT_RESPONSE, OPEN)
    link = new_link()
    watch = await start_on_link(
        link, tmp_path, display=Screen(), profile=(ServiceSpec(COMMANDED, "Test", (spec,)),)
    )
    written: list[bytes] = []

    async def record(_peer: Peer, value: bytes) -> None:
        written.append(value)

    watch.set_write_handler(COMMANDED, record)
    try:
        central = RawCentral(link, ATTACKER)
        await central.connect(watch.address)
        handle = u16(central.handle(COMMANDED))
        central.send(bytes([WRITE_CMD]) + handle + bytes(513))
        central.send(bytes([WRITE_CMD]) + handle + bytes(2))
        await central.request(bytes([0x02]) + u16(23))  # a round trip behind them
        assert written == [bytes(2)]
    finally:
        await watch.stop()
