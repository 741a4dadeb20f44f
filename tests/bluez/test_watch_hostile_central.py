"""The watch on bless (hci0) against a hostile central on hci1 that is only BlueZ's own
tools: ``gatttool`` (raw ATT, lowest security unless asked) and ``bluetoothctl`` (its own
pairing agent). Issue 15, findings 7-9 and the Just Works and spoofed-address cases; the
table is in docs/security.md.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from protocol import infinitime
from protocol.profile import (
    CHARACTERISTICS,
    PROFILE,
    CharacteristicSpec,
    Property,
    Security,
    ServiceSpec,
)
from protocol.uuids import BATTERY_LEVEL, HISTORY_SERVICE, HISTORY_STATUS, MODEL_NUMBER
from tests.bluez.conftest import Adapters, Screen, device_property, remove_device
from tests.bluez.tools import Tool, btmon, characteristics, gatttool, primary_ranges, run
from watchsim.errors import WatchsimError
from watchsim.peripheral.bless_adapter import (
    FIRST_HANDLE,
    BlessPeripheral,
    attribute_count,
    service_handles,
)

pytestmark = pytest.mark.bluez_vm

NAME = "HostileWatch"
STATUS = b"\x01\x02\x03\x04"
SUBSCRIBABLE = Property.NOTIFY | Property.INDICATE
PROTECTED_SUBSCRIPTIONS = sorted(
    c.uuid
    for c in CHARACTERISTICS.values()
    if c.security > Security.OPEN and c.properties & SUBSCRIBABLE
)
# A service of some other application, at the handle the watch's first service pins.
BLOCKER = ServiceSpec(
    "7d1e0001-3c2b-4a59-8f60-2b4e9d0c1a77",
    "Blocker",
    (
        CharacteristicSpec(
            "7d1e0002-3c2b-4a59-8f60-2b4e9d0c1a77", "B", Property.READ, Security.OPEN
        ),
    ),
)
# btmon's decoding of what hci1 received: refused requests and pairing, a value sent to it.
REFUSED_WRITE = re.compile(
    r"ATT: Error Response \(0x01\) len 4\n\s+Write Request \(0x12\)\n\s+Handle: 0x(\w{4})[^\n]*\n"
    r"\s+Error: Insufficient Authentication \(0x05\)"
)
REFUSED_READ = (
    r"ATT: Error Response \(0x01\) len 4\n\s+Read By Type Request \(0x08\)\n"
    r"\s+Handle: 0x\w{4}[^\n]*\n\s+Error: Insufficient Authentication \(0x05\)"
)
REFUSED_PAIRING = r"SMP: Pairing Failed \(0x05\) len 1\n\s+Reason: Authentication requirements"
SENT_VALUE = re.compile(
    r"ATT: Handle Value (?:Notification|Indication) \(0x1[bd]\) len \d+\n\s+Handle: 0x(\w{4})"
)


@contextlib.asynccontextmanager
async def _started(
    profile: Sequence[ServiceSpec] = PROFILE,
) -> AsyncIterator[tuple[BlessPeripheral, Screen]]:
    """The watch with its passkey display, advertising; the wearer never touches BlueZ."""
    screen = Screen()
    peripheral = BlessPeripheral("hci0", NAME, display=screen)
    peripheral.set_read_handler(HISTORY_STATUS, lambda: STATUS)
    peripheral.set_read_handler(MODEL_NUMBER, lambda: b"hostile-model")
    await peripheral.start(profile)
    try:
        await peripheral.start_advertising(NAME, 0, ())
        yield peripheral, screen
    finally:
        await peripheral.stop()


@pytest.fixture
async def watch(adapters: Adapters) -> AsyncIterator[tuple[BlessPeripheral, Screen]]:
    async with _started() as started:
        yield started


async def _bluetoothctl(adapters: Adapters, *options: str) -> Tool:
    """bluetoothctl (its own agent unless ``--agent``) working on hci1."""
    ctl = await Tool.start("bluetoothctl", *options)
    await ctl.expect("Agent registered")  # it has the adapters from bluetoothd by then
    ctl.send(f"select {adapters.agent}")
    ctl.send("show")
    await ctl.expect(rf"Controller {adapters.agent} \(public\)")
    return ctl


async def _discover(ctl: Tool, adapters: Adapters, known: str = "NEW") -> None:
    """A plain ``scan on`` (BlueZ's default discovery, no filter) until the watch shows up:
    as a new device, or with ``known="NEW|CHG"`` one bluetoothd already knew."""
    ctl.send("scan on")
    await ctl.expect(rf"\[(?:{known})\] Device {adapters.watch}")
    ctl.send("scan off")


async def _read_protected(adapters: Adapters, *security: str) -> str:
    return await run(*gatttool(adapters.watch, *security, "--char-read", "-u", HISTORY_STATUS))


async def _read_witnessed(adapters: Adapters) -> str:
    """gatttool's unencrypted read of a protected characteristic, and btmon's trace of hci1
    until the link drops (gatttool answers a refusal by asking for security, which the
    watch refuses). Returns the trace, after checking that no value came back."""
    monitor = await btmon()
    try:
        answer = await _read_protected(adapters)
        await monitor.expect("Disconnect Complete")
    finally:
        trace = await monitor.stop()
    print(answer, trace, sep="\n")
    assert "failed" in answer and STATUS.hex(" ") not in answer, answer
    assert "Read By Type Response" not in trace, trace
    return trace


async def _paired_on_watch(adapters: Adapters) -> bool:
    """What the watch's bluetoothd says about the phone's address (raw D-Bus)."""
    return bool(await device_property("hci0", adapters.agent, "Paired"))


def _watch_keys(adapters: Adapters) -> list[tuple[str, str, str]]:
    """The long-term keys bluetoothd keeps for the phone on the watch's side: (section,
    key, Authenticated), where 1 and 3 are MITM-protected (legacy, Secure Connections)."""
    info = Path("/var/lib/bluetooth", adapters.watch, adapters.agent, "info").read_text()
    keys: list[tuple[str, str, str]] = re.findall(
        r"\[(\w*LongTermKey)\]\nKey=(\w+)\nAuthenticated=(\d)", info
    )
    return keys


async def test_primary_discovery_lists_every_service(adapters: Adapters, watch: object) -> None:
    """Finding 8: phones find services by primary discovery; bless declared only one."""
    listing = await run(*gatttool(adapters.watch, "--primary"))
    print(listing)
    assert primary_ranges(listing).keys() >= {s.uuid for s in PROFILE}, listing


@pytest.mark.parametrize("profile", [PROFILE, infinitime.PROFILE], ids=["ours", "infinitime"])
async def test_a_restarted_watch_keeps_its_handles(
    adapters: Adapters, profile: Sequence[ServiceSpec]
) -> None:
    """Each service at the handle the adapter pins, spanning the handles it counts, and the
    same after a restart: bluetoothd would otherwise move the services past every handle it
    gave out, and a bonded phone would rediscover them on its next connection (the CI
    failure of the kill-and-restart resync, where bleak then missed History Status)."""
    listings = []
    for _ in range(2):
        async with _started(profile):
            listings.append(primary_ranges(await run(*gatttool(adapters.watch, "--primary"))))
    assert listings[0] == listings[1]
    pinned = service_handles(profile)
    for spec in profile:
        first = pinned[spec.uuid]
        assert listings[0][spec.uuid] == (first, first + attribute_count(spec) - 1), listings[0]


async def test_a_watch_whose_handles_are_taken_says_so_and_leaves_them_alone(
    adapters: Adapters,
) -> None:
    """Another application on the adapter already holds a pinned handle: the watch does
    not start, and says which handles and what to do; the other application keeps its
    service (a different one: bluetoothd 5.66 would hand a second copy of the same service
    the first one's, remove it on failing, and crash later)."""
    blocker = BlessPeripheral("hci0", "Blocker")
    await blocker.start((BLOCKER,))
    watch = BlessPeripheral("hci0", NAME)
    try:
        await blocker.start_advertising("Blocker", 0, ())
        await watch.start(PROFILE)
        with pytest.raises(WatchsimError, match=r"at handles 0x0100-0x0157 on hci0 \("):
            await watch.start_advertising(NAME, 0, ())
        listing = await run(*gatttool(adapters.watch, "--primary"))
    finally:
        await watch.stop()
        await blocker.stop()
    print(listing)
    assert primary_ranges(listing)[BLOCKER.uuid] == (FIRST_HANDLE, FIRST_HANDLE + 2)
    assert HISTORY_SERVICE not in primary_ranges(listing)


async def test_plain_scan_finds_the_watch(adapters: Adapters, watch: object) -> None:
    """Finding 9: the advertisement is LE General Discoverable, no adapter setting needed."""
    ctl = await _bluetoothctl(adapters)
    try:
        await _discover(ctl, adapters)
    finally:
        print(await ctl.finish("quit"))


@pytest.mark.timeout(240)  # 13 connections and 12 refused pairings under TCG
async def test_unpaired_central_cannot_subscribe(
    adapters: Adapters, watch: tuple[BlessPeripheral, Screen]
) -> None:
    """Finding 7: every protected CCCD write is answered with Insufficient Authentication
    and nothing protected is sent to the central, while the open Battery Level subscribes.

    btmon is the witness: gatttool's ATT layer answers that error by asking for more
    security (a pairing the watch refuses, as no MITM protection is possible without
    the passkey), so the tool itself never prints the error."""
    peripheral, _ = watch
    handles = characteristics(await run(*gatttool(adapters.watch, "--char-desc")))
    assert len(PROTECTED_SUBSCRIPTIONS) == 12
    cccds = {h.cccd: uuid for uuid in PROTECTED_SUBSCRIPTIONS if (h := handles[uuid]).cccd}
    assert len(cccds) == 12, handles
    monitor = await btmon()
    try:
        for cccd, uuid in cccds.items():
            value = "0100" if Property.NOTIFY in CHARACTERISTICS[uuid].properties else "0200"
            await run(
                *gatttool(adapters.watch, "--char-write-req", "-a", f"0x{cccd:04x}", "-n", value)
            )
        battery = handles[BATTERY_LEVEL]
        listener = await Tool.start(
            *gatttool(
                adapters.watch,
                "--char-write-req",
                "-a",
                f"0x{battery.cccd:04x}",
                "-n",
                "0100",
                "--listen",
            )
        )
        try:
            await listener.expect("written successfully")
            for uuid in PROTECTED_SUBSCRIPTIONS:
                if Property.NOTIFY in CHARACTERISTICS[uuid].properties:
                    await peripheral.notify(uuid, b"\x5a\x5a")
                else:
                    await peripheral.indicate(uuid, b"\x5a\x5a")
            # One bearer, in order: the battery value comes after anything sent before it.
            await peripheral.notify(BATTERY_LEVEL, b"\x63")
            await listener.expect(rf"Notification handle = 0x{battery.value:04x} value: 63")
            await monitor.expect(
                rf"Handle Value Notification \(0x1b\) len 3\n\s+Handle: 0x{battery.value:04x}"
            )
        finally:
            received = await listener.stop()
    finally:
        trace = await monitor.stop()
    refused = [int(h, 16) for h in REFUSED_WRITE.findall(trace)]
    values = {int(h, 16) for h in SENT_VALUE.findall(trace)}
    print(f"refused: {refused}", f"values: {values}", received, sep="\n")
    # gatttool may repeat a refused write once while its pairing attempt runs.
    assert set(refused) == set(cccds), trace
    assert not values & {handles[uuid].value for uuid in PROTECTED_SUBSCRIPTIONS}, trace
    notified = re.findall(r"(?:Notification|Indication)\s+handle = 0x(\w{4})", received)
    assert notified == [f"{battery.value:04x}"], received


async def test_just_works_pairing_is_refused(
    adapters: Adapters, watch: tuple[BlessPeripheral, Screen]
) -> None:
    """bluetoothctl with a NoInputNoOutput agent: no MITM protection, no bond, no access."""
    _, screen = watch
    ctl = await _bluetoothctl(adapters, "--agent", "NoInputNoOutput")
    try:
        await _discover(ctl, adapters)
        ctl.send(f"pair {adapters.watch}")
        outcome = await ctl.expect(r"Pairing successful|Failed to pair: \S+")
    finally:
        print(await ctl.finish("quit"))
    assert outcome[0].startswith("Failed to pair"), outcome[0]
    assert screen.passkeys.empty()
    assert not await _paired_on_watch(adapters)
    assert re.search(REFUSED_READ, await _read_witnessed(adapters))


@pytest.mark.timeout(240)  # a passkey pairing, then three connections and two refused ones
async def test_spoofed_bonded_address_gets_nothing(
    adapters: Adapters, watch: tuple[BlessPeripheral, Screen]
) -> None:
    """The phone (hci1) bonds with the passkey, then loses its key: from then on hci1 is a
    central with exactly the bonded phone's address and no key, i.e. a spoofer. It reads
    nothing, its Just Works re-pairing is refused, and the watch's bond is unchanged."""
    _, screen = watch
    ctl = await _bluetoothctl(adapters)
    try:
        await _discover(ctl, adapters)
        ctl.send(f"pair {adapters.watch}")
        await ctl.expect(r"Enter passkey")
        _, passkey = await screen.passkeys.get()
        ctl.send(f"{passkey:06d}")
        await ctl.expect("Pairing successful")
        ctl.send(f"disconnect {adapters.watch}")  # gatttool needs the link for itself
        await ctl.expect("Successful disconnected")
    finally:
        print(await ctl.finish("quit"))
    bond = _watch_keys(adapters)
    assert bond and all(authenticated in "13" for _, _, authenticated in bond), bond
    assert STATUS.hex(" ") in await _read_protected(adapters, "--sec-level", "high")

    await remove_device("hci1", adapters.watch)  # the spoofer: same address, no key
    # The watch asks a bonded address for security at once; without the key the spoofer
    # can only pair anew, which cannot give MITM protection: refused, link dropped.
    assert re.search(REFUSED_PAIRING, await _read_witnessed(adapters))
    spoofer = await _bluetoothctl(adapters, "--agent", "NoInputNoOutput")
    try:
        await _discover(spoofer, adapters, known="NEW|CHG")
        spoofer.send(f"pair {adapters.watch}")
        outcome = await spoofer.expect(r"Pairing successful|Failed to pair: \S+")
    finally:
        print(await spoofer.finish("quit"))
    assert outcome[0].startswith("Failed to pair"), outcome[0]
    assert re.search(REFUSED_PAIRING, await _read_witnessed(adapters))
    assert await _paired_on_watch(adapters)
    assert _watch_keys(adapters) == bond
