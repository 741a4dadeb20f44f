"""InfiniTime 1.15's GATT table and byte layouts, as its public docs and sources define them.

The second personality of the watch (``watchsim run --personality infinitime``): the
services of a PineTime running InfiniTime, so that companions written for it
(Gadgetbridge, itd, Amazfish, Siglo) can be tested without the hardware. Nothing here is
our own profile's: InfiniTime has no history service and no characteristic that needs
encryption. Byte layouts and why they differ from ours: ``docs/infinitime.md``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final, Self

from protocol import uuids
from protocol._bytes import Reader
from protocol.profile import CharacteristicSpec, Property, Security, ServiceSpec

FIRMWARE_VERSION: Final = "1.15.0"
NAME: Final = "InfiniTime"
# GAP appearance InfiniTime sets (0x00C2, the same smartwatch value as ours).
APPEARANCE: Final = uuids.APPEARANCE_SMARTWATCH
DEVICE_INFORMATION: Final = {
    uuids.MANUFACTURER_NAME: "PINE64",
    uuids.MODEL_NUMBER: "PineTime",
    uuids.SERIAL_NUMBER: "0",
    uuids.FIRMWARE_REVISION: FIRMWARE_VERSION,
    uuids.HARDWARE_REVISION: "1.0.0",
    uuids.SOFTWARE_REVISION: "InfiniTime",
}

_CUSTOM_SUFFIX: Final = "-78fc-48fe-8e23-433b3a1942d0"


def custom_uuid(service: int, characteristic: int = 0) -> str:
    """InfiniTime's own UUIDs: SSSSCCCC-78fc-48fe-8e23-433b3a1942d0."""
    return f"{service:04x}{characteristic:04x}{_CUSTOM_SUFFIX}"


def _dfu_uuid(short: int) -> str:
    """Nordic's legacy DFU base, which InfiniTime's DFU service keeps."""
    return f"0000{short:04x}-1212-efde-1523-785feabcd123"


def _fs_uuid(short: int) -> str:
    """Adafruit's BLE file transfer base, which InfiniTime's file system service uses."""
    return f"adaf{short:04x}-4669-6c65-5472-616e73666572"


MUSIC_SERVICE: Final = custom_uuid(0x0000)
MUSIC_EVENT: Final = custom_uuid(0x0000, 0x01)
MUSIC_STATUS: Final = custom_uuid(0x0000, 0x02)
MUSIC_ARTIST: Final = custom_uuid(0x0000, 0x03)
MUSIC_TRACK: Final = custom_uuid(0x0000, 0x04)
MUSIC_ALBUM: Final = custom_uuid(0x0000, 0x05)
MUSIC_POSITION: Final = custom_uuid(0x0000, 0x06)
MUSIC_LENGTH: Final = custom_uuid(0x0000, 0x07)
MUSIC_TRACK_NUMBER: Final = custom_uuid(0x0000, 0x08)
MUSIC_TRACK_TOTAL: Final = custom_uuid(0x0000, 0x09)
MUSIC_PLAYBACK_SPEED: Final = custom_uuid(0x0000, 0x0A)
MUSIC_REPEAT: Final = custom_uuid(0x0000, 0x0B)
MUSIC_SHUFFLE: Final = custom_uuid(0x0000, 0x0C)
NAVIGATION_SERVICE: Final = custom_uuid(0x0001)
NAVIGATION_FLAG: Final = custom_uuid(0x0001, 0x01)
NAVIGATION_NARRATIVE: Final = custom_uuid(0x0001, 0x02)
NAVIGATION_DISTANCE: Final = custom_uuid(0x0001, 0x03)
NAVIGATION_PROGRESS: Final = custom_uuid(0x0001, 0x04)
CALL_EVENT: Final = custom_uuid(0x0002, 0x01)  # in the Alert Notification service
MOTION_SERVICE: Final = custom_uuid(0x0003)
STEP_COUNT: Final = custom_uuid(0x0003, 0x01)
RAW_MOTION: Final = custom_uuid(0x0003, 0x02)
WEATHER_SERVICE: Final = custom_uuid(0x0005)
WEATHER_DATA: Final = custom_uuid(0x0005, 0x01)
DFU_SERVICE: Final = _dfu_uuid(0x1530)
DFU_CONTROL_POINT: Final = _dfu_uuid(0x1531)
DFU_PACKET: Final = _dfu_uuid(0x1532)
DFU_REVISION: Final = _dfu_uuid(0x1534)
FS_SERVICE: Final = uuids.sig_uuid(0xFEBB)
FS_VERSION: Final = _fs_uuid(0x0100)
FS_TRANSFER: Final = _fs_uuid(0x0200)
ALERT_NOTIFICATION_SERVICE: Final = uuids.sig_uuid(0x1811)
NEW_ALERT: Final = uuids.sig_uuid(0x2A46)
IMMEDIATE_ALERT_SERVICE: Final = uuids.sig_uuid(0x1802)
ALERT_LEVEL: Final = uuids.sig_uuid(0x2A06)

R, W, N = Property.READ, Property.WRITE, Property.NOTIFY
WNR = Property.WRITE_WITHOUT_RESPONSE


def _service(
    uuid: str, name: str, *rows: tuple[str, str, Property], advertised: bool = False
) -> ServiceSpec:
    # Security as InfiniTime has it: nothing needs an encrypted link.
    chars = tuple(CharacteristicSpec(u, n, p, Security.OPEN) for u, n, p in rows)
    return ServiceSpec(uuid, name, chars, advertised=advertised)


# In InfiniTime's registration order (NimbleController::Init).
PROFILE: tuple[ServiceSpec, ...] = (
    _service(
        uuids.DEVICE_INFORMATION_SERVICE,
        "Device Information",
        (uuids.MANUFACTURER_NAME, "Manufacturer Name String", R),
        (uuids.MODEL_NUMBER, "Model Number String", R),
        (uuids.SERIAL_NUMBER, "Serial Number String", R),
        (uuids.FIRMWARE_REVISION, "Firmware Revision String", R),
        (uuids.HARDWARE_REVISION, "Hardware Revision String", R),
        (uuids.SOFTWARE_REVISION, "Software Revision String", R),
    ),
    _service(
        uuids.CURRENT_TIME_SERVICE,
        "Current Time",
        (uuids.LOCAL_TIME_INFORMATION, "Local Time Information", R | W),
        (uuids.CURRENT_TIME, "Current Time", R | W),
    ),
    _service(
        MUSIC_SERVICE,
        "Music",
        (MUSIC_EVENT, "Music Event", N),
        (MUSIC_STATUS, "Music Status", R | W),
        (MUSIC_TRACK, "Music Track", R | W),
        (MUSIC_ARTIST, "Music Artist", R | W),
        (MUSIC_ALBUM, "Music Album", R | W),
        (MUSIC_POSITION, "Music Position", R | W),
        (MUSIC_LENGTH, "Music Total Length", R | W),
        (MUSIC_TRACK_NUMBER, "Music Track Number", R | W),
        (MUSIC_TRACK_TOTAL, "Music Track Total", R | W),
        (MUSIC_PLAYBACK_SPEED, "Music Playback Speed", R | W),
        (MUSIC_REPEAT, "Music Repeat", R | W),
        (MUSIC_SHUFFLE, "Music Shuffle", R | W),
    ),
    _service(WEATHER_SERVICE, "Simple Weather", (WEATHER_DATA, "Weather Data", W)),
    _service(
        NAVIGATION_SERVICE,
        "Navigation",
        (NAVIGATION_FLAG, "Navigation Flag", R | W),
        (NAVIGATION_NARRATIVE, "Navigation Narrative", R | W),
        (NAVIGATION_DISTANCE, "Navigation Manoeuvre Distance", R | W),
        (NAVIGATION_PROGRESS, "Navigation Progress", R | W),
    ),
    _service(
        ALERT_NOTIFICATION_SERVICE,
        "Alert Notification",
        (NEW_ALERT, "New Alert", W),
        (CALL_EVENT, "Notification Event", N),
    ),
    _service(
        DFU_SERVICE,
        "DFU",
        (DFU_PACKET, "DFU Packet", WNR),
        (DFU_CONTROL_POINT, "DFU Control Point", W | N),
        (DFU_REVISION, "DFU Revision", R),
        advertised=True,
    ),
    _service(uuids.BATTERY_SERVICE, "Battery", (uuids.BATTERY_LEVEL, "Battery Level", R | N)),
    _service(IMMEDIATE_ALERT_SERVICE, "Immediate Alert", (ALERT_LEVEL, "Alert Level", WNR)),
    _service(
        uuids.HEART_RATE_SERVICE,
        "Heart Rate",
        (uuids.HEART_RATE_MEASUREMENT, "Heart Rate Measurement", R | N),
        advertised=True,
    ),
    _service(
        MOTION_SERVICE,
        "Motion",
        (STEP_COUNT, "Step Count", R | N),
        (RAW_MOTION, "Raw Motion", R | N),
    ),
    _service(
        FS_SERVICE,
        "File System",
        (FS_VERSION, "FS Version", R),
        (FS_TRANSFER, "FS Transfer", R | W | N),
    ),
)
CHARACTERISTIC_NAMES: dict[str, str] = {c.uuid: c.name for s in PROFILE for c in s.characteristics}
# Advertised as InfiniTime does: Heart Rate (16-bit) and DFU (128-bit) in the
# advertising data, the complete name in the scan response.
ADVERTISED_SERVICE_UUIDS: tuple[str, ...] = tuple(s.uuid for s in PROFILE if s.advertised)


# --- live values -------------------------------------------------------------------------


def heart_rate(bpm: int) -> bytes:
    """Heart Rate Measurement as InfiniTime sends it: flags 0, then u8 bpm (0: no reading)."""
    return bytes([0, max(0, min(0xFF, bpm))])


def step_count(steps: int) -> bytes:
    """Steps since local midnight, u32 little-endian."""
    return struct.pack("<I", steps)


def raw_motion(x: int, y: int, z: int) -> bytes:
    """Accelerometer x, y, z, i16 little-endian each, in binary milli-g (1 g = 1024)."""
    return struct.pack("<hhh", x, y, z)


# --- Alert Notification ------------------------------------------------------------------


class AlertCategory(enum.IntEnum):
    SIMPLE_ALERT = 0x00
    EMAIL = 0x01
    NEWS = 0x02
    CALL = 0x03
    MISSED_CALL = 0x04
    SMS_MMS = 0x05
    VOICEMAIL = 0x06
    SCHEDULE = 0x07
    HIGH_PRIORITIZED_ALERT = 0x08
    INSTANT_MESSAGE = 0x09
    ALL = 0xFF


ALERT_HEADER_SIZE: Final = 3
# What InfiniTime keeps of a message (NotificationManager::MessageSize).
ALERT_MESSAGE_MAX: Final = 100


@dataclass(frozen=True)
class NewAlert:
    """New Alert as InfiniTime takes it: category, count, 0, then the message, whose
    NUL bytes separate title and body (itd: ``"\\x00\\x01\\x00Title\\x00Body"``).

    InfiniTime files a call (0x03) as an incoming call with Reject/Answer/Mute buttons and
    every other category (known or not) as a simple alert; it keeps the first 100 bytes.
    """

    category: int
    count: int
    message: bytes

    @classmethod
    def decode(cls, data: bytes) -> Self | None:
        """None for a write of the header alone or less, which InfiniTime ignores."""
        if len(data) <= ALERT_HEADER_SIZE:
            return None
        return cls(data[0], data[1], data[ALERT_HEADER_SIZE:][:ALERT_MESSAGE_MAX])

    def encode(self) -> bytes:
        return bytes([self.category, self.count, 0]) + self.message

    @property
    def is_call(self) -> bool:
        return self.category == AlertCategory.CALL

    @property
    def parts(self) -> list[str]:
        """The message's NUL-separated parts as text (bad UTF-8 shown replaced, as a
        screen would, not refused: InfiniTime takes any bytes)."""
        text = self.message.decode("utf-8", errors="replace")
        return [part for part in text.split("\x00") if part]


class CallResponse(enum.IntEnum):
    """What the Notification Event characteristic notifies when a call button is tapped."""

    REJECT = 0x00
    ANSWER = 0x01
    MUTE = 0x02


class AlertLevel(enum.IntEnum):
    """Immediate Alert's Alert Level (InfiniTime shows it as a notification)."""

    NONE = 0
    MILD = 1
    HIGH = 2


# --- Music -------------------------------------------------------------------------------


class MusicEventCode(enum.IntEnum):
    """Bytes the Music Event characteristic notifies for the music app's buttons."""

    PLAY = 0x00
    PAUSE = 0x01
    NEXT = 0x03
    PREVIOUS = 0x04
    VOLUME_UP = 0x05
    VOLUME_DOWN = 0x06
    APP_OPENED = 0xE0


# InfiniTime keeps 40 bytes of a music text and ends a longer one with "...".
MUSIC_TEXT_MAX: Final = 40


def display_text(data: bytes) -> str:
    """A written string as the screen shows it: InfiniTime takes any bytes, so bad UTF-8
    is shown replaced rather than refused."""
    return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def music_text(data: bytes) -> str:
    """Artist, track or album as InfiniTime shows it."""
    if len(data) > MUSIC_TEXT_MAX:
        data = data[: MUSIC_TEXT_MAX - 3] + b"..."
    return display_text(data)


def music_u32(data: bytes, characteristic: str) -> int:
    """Position, length, track number/total, playback speed: u32 big-endian (unlike every
    other InfiniTime integer). InfiniTime reads four bytes whatever was written; a
    shorter write is refused here (Invalid Attribute Value Length)."""
    return int.from_bytes(Reader(data, characteristic).take(4, "value"), "big")


def music_flag(data: bytes, characteristic: str) -> bool:
    """Status (playing), repeat, shuffle: the first byte, non-zero for on."""
    return Reader(data, characteristic).u8("flag") != 0


# --- Simple Weather ----------------------------------------------------------------------


class WeatherIcon(enum.IntEnum):
    SUN = 0
    FEW_CLOUDS = 1
    CLOUDS = 2
    HEAVY_CLOUDS = 3
    CLOUDS_AND_RAIN = 4
    RAIN = 5
    THUNDERSTORM = 6
    SNOW = 7
    MIST = 8


def _icon(code: int) -> str:
    try:
        return WeatherIcon(code).name.lower()
    except ValueError:
        return "unknown"


@dataclass(frozen=True)
class CurrentWeather:
    """Message type 0, version 0: temperatures in hundredths of a degree Celsius;
    ``timestamp`` is local time in Unix seconds."""

    timestamp: int
    temperature: int
    minimum: int
    maximum: int
    location: str
    icon: str


@dataclass(frozen=True)
class ForecastDay:
    minimum: int
    maximum: int
    icon: str


@dataclass(frozen=True)
class Forecast:
    """Message type 1, version 0: up to 5 days."""

    timestamp: int
    days: tuple[ForecastDay, ...]


def decode_weather(data: bytes) -> CurrentWeather | Forecast | None:
    """A Weather Data write; None for a type or version InfiniTime 1.15 ignores (it takes
    version 0 only). A short message is refused (InfiniTime would read past it)."""
    reader = Reader(data, "Weather Data")
    kind, version = reader.u8("message type"), reader.u8("version")
    if version != 0 or kind not in (0, 1):
        return None
    timestamp = reader.uint(8, "timestamp")
    if kind == 0:
        temperature, low, high = (reader.s16(w) for w in ("temperature", "minimum", "maximum"))
        location = display_text(reader.take(32, "location"))
        return CurrentWeather(timestamp, temperature, low, high, location, _icon(reader.u8("icon")))
    count = min(5, reader.u8("number of days"))
    days = []
    for _ in range(5):
        low, high, icon = reader.s16("minimum"), reader.s16("maximum"), reader.u8("icon")
        days.append(ForecastDay(low, high, _icon(icon)))
    return Forecast(timestamp, tuple(days[:count]))


# --- DFU and the file system: what this simulator answers --------------------------------

DFU_REVISION_VALUE: Final = struct.pack("<H", 0x0008)
DFU_RESPONSE: Final = 0x10
DFU_START: Final = 0x01
DFU_IMAGE_APPLICATION: Final = 0x04
DFU_NOT_SUPPORTED: Final = 0x03  # InfiniTime's DFU error code "NotSupported"


def dfu_refusal(opcode: int) -> bytes:
    """Control Point notification: Response, the request's opcode, NotSupported."""
    return bytes([DFU_RESPONSE, opcode, DFU_NOT_SUPPORTED])


FS_VERSION_VALUE: Final = struct.pack("<H", 0x0004)


class FsCommand(enum.IntEnum):
    READ = 0x10
    WRITE = 0x20
    DELETE = 0x30
    MKDIR = 0x40
    LISTDIR = 0x50
    MOVE = 0x60


# littlefs error codes, sent as the status byte (int8).
LFS_ERR_NOENT: Final = -2
LFS_ERR_NOSPC: Final = -28
_NEEDS_ROOM: Final = frozenset({FsCommand.WRITE, FsCommand.MKDIR})


def fs_refusal(command: FsCommand, request: bytes) -> bytes:
    """The answer InfiniTime's file system service gives each command on an empty flash
    with no room: the command's response layout, status a littlefs error. Reads, listings,
    deletes and moves find nothing (NOENT); writes and new directories get NOSPC."""
    status = struct.pack("<b", LFS_ERR_NOSPC if command in _NEEDS_ROOM else LFS_ERR_NOENT)
    answer = bytes([command + 1]) + status
    if command is FsCommand.READ:
        offset = request[4:8].ljust(4, b"\x00")
        return answer + bytes(2) + offset + bytes(8)  # chunk offset, total 0, chunk 0
    if command is FsCommand.WRITE:
        offset = request[4:8].ljust(4, b"\x00")
        return answer + bytes(2) + offset + bytes(12)  # offset, mod time, free space 0
    if command is FsCommand.MKDIR:
        return answer + bytes(14)
    if command is FsCommand.LISTDIR:
        return answer + bytes(26)  # no path, entry 0 of 0
    return answer
