"""Advertising payload -> bleak's ``AdvertisementData``, from the raw AD structures."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bleak.backends.scanner import AdvertisementData

# AD types (Bluetooth Assigned Numbers, "Common Data Types").
_UUID16 = (0x02, 0x03)
_UUID32 = (0x04, 0x05)
_UUID128 = (0x06, 0x07)
_NAMES = (0x08, 0x09)
_TX_POWER = 0x0A
_SERVICE_DATA = {0x16: 2, 0x20: 4, 0x21: 16}
_APPEARANCE = 0x19
_MANUFACTURER = 0xFF

_SIG_BASE = uuid.UUID("00000000-0000-1000-8000-00805f9b34fb").bytes


def uuid_from_le(raw: bytes) -> str:
    """128-bit lower-case UUID string (bleak's form) from a little-endian 2, 4 or 16 byte UUID."""
    big = raw[::-1]
    full = big if len(big) == 16 else big.rjust(4, b"\0") + _SIG_BASE[4:]
    return str(uuid.UUID(bytes=full))


def _uuids(data: bytes, width: int) -> list[str]:
    return [uuid_from_le(data[i : i + width]) for i in range(0, len(data) - width + 1, width)]


@dataclass(frozen=True)
class BumbleAdvertisement:
    """What ``AdvertisementData.platform_data`` carries: fields bleak has no slot for."""

    appearance: int | None
    connectable: bool


def advertisement_data(
    structures: Sequence[tuple[int, bytes]], rssi: int, connectable: bool
) -> AdvertisementData:
    """Decode AD structures; the appearance travels in ``platform_data[0]``."""
    name: str | None = None
    services: list[str] = []
    service_data: dict[str, bytes] = {}
    manufacturer: dict[int, bytes] = {}
    tx_power: int | None = None
    appearance: int | None = None
    for kind, data in structures:
        if kind in _NAMES:
            # A complete name wins over a shortened one, whatever the order.
            if name is None or kind == 0x09:
                name = data.decode("utf-8", errors="replace")
        elif kind in _UUID16:
            services += _uuids(data, 2)
        elif kind in _UUID32:
            services += _uuids(data, 4)
        elif kind in _UUID128:
            services += _uuids(data, 16)
        elif kind in _SERVICE_DATA and len(data) >= _SERVICE_DATA[kind]:
            width = _SERVICE_DATA[kind]
            service_data[uuid_from_le(data[:width])] = data[width:]
        elif kind == _MANUFACTURER and len(data) >= 2:
            manufacturer[struct.unpack_from("<H", data)[0]] = data[2:]
        elif kind == _TX_POWER and len(data) == 1:
            tx_power = struct.unpack("b", data)[0]
        elif kind == _APPEARANCE and len(data) == 2:
            appearance = struct.unpack("<H", data)[0]
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=services,
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(BumbleAdvertisement(appearance, connectable),),
    )


def appearance(data: AdvertisementData) -> int | None:
    """The advertised GAP appearance, when a Bumble scanner saw one."""
    for item in data.platform_data:
        if isinstance(item, BumbleAdvertisement):
            return item.appearance
    return None
