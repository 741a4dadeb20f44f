"""A central that does what InfiniTime's companions do, against ``--personality infinitime``.

The companion is plain Bumble on the loopback air: every UUID and byte below is written
from InfiniTime's public docs (doc/ble.md, doc/MotionService.md, doc/NavigationService.md,
doc/SimpleWeatherService.md) and from what Gadgetbridge and itd are documented to send,
not from ``protocol.infinitime``, so a mistake shared with the watch cannot hide here.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Device, DeviceConfiguration, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from protocol.alerts import CallActionKind  # the wearer's buttons, pressed on the watch
from protocol.music import MusicCommand
from watchsim.control import request
from watchsim.controlops import Status
from watchsim.testing import TEST_START, LoopbackWatch, start_loopback_watch

WAIT = 5.0
BASE = "-78fc-48fe-8e23-433b3a1942d0"
SIG = "-0000-1000-8000-00805f9b34fb"
DFU_SERVICE = "00001530-1212-efde-1523-785feabcd123"


def sig(short: int) -> UUID:
    return UUID(f"0000{short:04x}{SIG}")


def custom(short: str) -> UUID:
    return UUID(f"{short}{BASE}")


FIRMWARE = sig(0x2A26)
HEART_RATE = sig(0x2A37)
BATTERY = sig(0x2A19)
CURRENT_TIME = sig(0x2A2B)
NEW_ALERT = sig(0x2A46)
CALL_EVENT = custom("00020001")
STEP_COUNT = custom("00030001")
RAW_MOTION = custom("00030002")
MUSIC_EVENT, MUSIC_STATUS = custom("00000001"), custom("00000002")
MUSIC_ARTIST, MUSIC_TRACK, MUSIC_ALBUM = (custom(f"0000000{n}") for n in (3, 4, 5))
MUSIC_POSITION, MUSIC_LENGTH = custom("00000006"), custom("00000007")
WEATHER = custom("00050001")
NAV_NARRATIVE, NAV_PROGRESS = custom("00010002"), custom("00010004")
DFU_CONTROL_POINT = UUID("00001531-1212-efde-1523-785feabcd123")
FS_TRANSFER = UUID("adaf0200-4669-6c65-5472-616e73666572")


class Companion:
    """A phone app's view: scan by name, connect unpaired, discover, then read, write and
    subscribe by UUID; every notification is queued per characteristic."""

    def __init__(self, link: LocalLink) -> None:
        controller = virtual_controller("companion", link)
        config = DeviceConfiguration(name="companion", address=hci.Address("C0:11:22:33:44:66"))
        self.device = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
        self.peer: Peer | None = None
        self.pushed: dict[UUID, asyncio.Queue[bytes]] = {}

    async def find(self, name: str) -> Advertisement:
        """The first advertisement whose complete local name is ``name`` (Gadgetbridge and
        itd both match the name "InfiniTime")."""
        await self.device.power_on()
        found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

        def seen(advertisement: Advertisement) -> None:
            complete = advertisement.data.get(AdvertisingData.COMPLETE_LOCAL_NAME)
            if complete == name and not found.done():
                found.set_result(advertisement)

        self.device.on("advertisement", seen)
        await self.device.start_scanning(active=True, filter_duplicates=False)
        try:
            return await asyncio.wait_for(found, WAIT)
        finally:
            await self.device.stop_scanning()

    async def connect(self, advertisement: Advertisement) -> None:
        connection = await asyncio.wait_for(self.device.connect(advertisement.address), WAIT)
        self.peer = Peer(connection)
        await self.peer.discover_services()
        await self.peer.discover_characteristics()

    def characteristic(self, uuid: UUID) -> CharacteristicProxy[bytes]:
        assert self.peer is not None
        [found] = self.peer.get_characteristics_by_uuid(uuid)
        return found

    async def read(self, uuid: UUID) -> bytes:
        return bytes(await self.characteristic(uuid).read_value())

    async def write(self, uuid: UUID, value: bytes) -> None:
        await self.characteristic(uuid).write_value(value, with_response=True)

    async def subscribe(self, uuid: UUID) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.pushed[uuid] = queue
        await self.characteristic(uuid).subscribe(lambda value: queue.put_nowait(bytes(value)))

    async def next(self, uuid: UUID) -> bytes:
        return await asyncio.wait_for(self.pushed[uuid].get(), WAIT)


@pytest.fixture
async def watch(link: LocalLink, tmp_path: Path) -> AsyncIterator[LoopbackWatch]:
    started = await start_loopback_watch(
        link, tmp_path / "pinetime", name="InfiniTime", personality="infinitime"
    )
    yield started
    await started.stop()


@pytest.fixture
async def companion(link: LocalLink, watch: LoopbackWatch) -> Companion:
    phone = Companion(link)
    advertisement = await phone.find("InfiniTime")
    await phone.connect(advertisement)
    return phone


async def test_found_by_its_name_in_the_scan_response_with_its_advertised_services(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    advertisement = await Companion(link).find("InfiniTime")
    data = advertisement.data
    assert advertisement.is_scannable
    assert data.get(AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS) == [sig(0x180D)]
    assert data.get(AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS) == [
        UUID(DFU_SERVICE)
    ]
    assert str(advertisement.address).split("/")[0] == watch.address


async def test_unpaired_companion_reads_firmware_heart_rate_steps_and_sets_the_time(
    watch: LoopbackWatch, companion: Companion
) -> None:
    assert await companion.read(FIRMWARE) == b"1.15.0"
    heart = await companion.read(HEART_RATE)
    assert len(heart) == 2 and heart[0] == 0
    assert heart[1] == watch.app.model.state().heart_rate > 0  # Gadgetbridge: value[1]
    (steps,) = struct.unpack("<I", await companion.read(STEP_COUNT))
    assert steps == watch.app.model.state().steps_today
    assert len(await companion.read(RAW_MOTION)) == 6
    assert 0 < (await companion.read(BATTERY))[0] <= 100
    # itd: year u16, month, day, hour, minute, second, weekday, fractions, reason 1.
    later = TEST_START + timedelta(minutes=5)
    stamp = struct.pack("<HBBBBBBBB", later.year, later.month, later.day, later.hour,
                        later.minute, later.second, later.isoweekday(), 0, 1)  # fmt: skip
    await companion.write(CURRENT_TIME, stamp)
    assert watch.app.clock.now() >= later.timestamp()


class Keyboard(PairingDelegate):
    """The phone's side of a passkey pairing: types what the watch shows."""

    def __init__(self, shown: asyncio.Queue[int]) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY)
        self._shown = shown

    async def get_number(self) -> int | None:
        return await asyncio.wait_for(self._shown.get(), WAIT)


async def test_optional_passkey_bonding_then_the_same_values_encrypted(
    watch: LoopbackWatch, companion: Companion
) -> None:
    device = companion.device
    device.keystore = MemoryKeyStore()
    keyboard = Keyboard(watch.passkeys)
    device.pairing_config_factory = lambda _c: PairingConfig(
        sc=True, mitm=True, bonding=True, delegate=keyboard
    )
    assert companion.peer is not None
    connection = companion.peer.connection
    assert not connection.is_encrypted
    await asyncio.wait_for(connection.pair(), WAIT)
    assert connection.is_encrypted
    assert await companion.read(FIRMWARE) == b"1.15.0"
    status = await request(watch.app.config.state_dir, Status())
    assert [p["bonded"] for p in status["peers"]] == [True]


async def test_heart_rate_and_steps_are_notified_when_subscribed(
    watch: LoopbackWatch, companion: Companion
) -> None:
    await companion.subscribe(HEART_RATE)
    await companion.subscribe(STEP_COUNT)
    heart = await companion.next(HEART_RATE)
    assert len(heart) == 2 and heart[0] == 0 and heart[1] > 0
    (steps,) = struct.unpack("<I", await companion.next(STEP_COUNT))
    assert steps >= 0


async def test_itd_alert_and_a_call_answered_on_the_watch(
    watch: LoopbackWatch, companion: Companion
) -> None:
    await companion.write(NEW_ALERT, b"\x00\x01\x00Test Title\x00Test Body")
    await companion.subscribe(CALL_EVENT)
    await companion.write(NEW_ALERT, b"\x03\x01\x00Mary")
    status = await request(watch.app.config.state_dir, Status())
    assert status["notifications"] == ["Test Title / Test Body"]
    assert status["call"] == {"caller": "Mary", "muted": False}
    answered = await watch.app.relays.press(CallActionKind.ACCEPT)
    assert answered["sent_to"] == 1
    assert await companion.next(CALL_EVENT) == b"\x01"  # 0 reject, 1 answer, 2 mute
    assert (await request(watch.app.config.state_dir, Status()))["call"] is None


async def test_gadgetbridge_music_sequence_and_a_button_back(
    watch: LoopbackWatch, companion: Companion
) -> None:
    await companion.subscribe(MUSIC_EVENT)
    await companion.write(MUSIC_ARTIST, b"Artist")
    await companion.write(MUSIC_TRACK, b"Track")
    await companion.write(MUSIC_ALBUM, b"Album")
    await companion.write(MUSIC_POSITION, struct.pack(">I", 61))  # big-endian, unlike the rest
    await companion.write(MUSIC_LENGTH, struct.pack(">I", 245))
    await companion.write(MUSIC_STATUS, b"\x01")
    music = (await request(watch.app.config.state_dir, Status()))["music"]
    assert (music["artist"], music["track"], music["album"]) == ("Artist", "Track", "Album")
    assert (music["position_s"], music["length_s"], music["playing"]) == (61, 245, True)
    await watch.app.relays.music_command(MusicCommand.NEXT)
    assert await companion.next(MUSIC_EVENT) == b"\x03"


async def test_weather_and_navigation_are_shown_in_the_status(
    watch: LoopbackWatch, companion: Companion
) -> None:
    location = b"Lyon".ljust(32, b"\x00")
    current = struct.pack("<BBqhhh", 0, 0, int(TEST_START.timestamp()), 2150, 1200, 2500)
    await companion.write(WEATHER, current + location + b"\x02")
    await companion.write(NAV_NARRATIVE, b"At the roundabout take the first exit")
    await companion.write(NAV_PROGRESS, b"\x2a")
    status = await request(watch.app.config.state_dir, Status())
    assert status["weather"]["location"] == "Lyon"
    assert status["weather"]["temperature"] == 2150
    assert status["weather"]["icon"] == "clouds"
    assert status["navigation"]["narrative"] == "At the roundabout take the first exit"
    assert status["navigation"]["progress"] == 42
    assert status["personality"] == "infinitime" and status["firmware"] == "1.15.0"
    assert "history" not in status


async def test_dfu_and_file_system_answer_with_infinitime_error_codes(
    watch: LoopbackWatch, companion: Companion
) -> None:
    await companion.subscribe(DFU_CONTROL_POINT)
    await companion.write(DFU_CONTROL_POINT, b"\x01\x04")  # itd's step one
    assert await companion.next(DFU_CONTROL_POINT) == b"\x10\x01\x03"  # Not Supported
    assert companion.peer is not None
    await companion.peer.request_mtu(247)  # as file-transfer companions do: answers are long
    await companion.subscribe(FS_TRANSFER)
    path = b"/"
    await companion.write(FS_TRANSFER, b"\x50\x00" + struct.pack("<H", len(path)) + path)
    answer = await companion.next(FS_TRANSFER)
    assert answer[:2] == b"\x51\xfe"  # LISTDIR_ENTRY, LFS_ERR_NOENT
