"""Device Information service 0x180A: the UTF-8 strings and PnP ID 0x2A50."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from protocol import uuids
from protocol._bytes import Reader, Writer, decode_utf8, encode_utf8, enum_member
from protocol.errors import TextError

# An attribute value is at most 512 bytes (Core spec, ATT).
MAX_STRING_BYTES = 512

# Characteristic names of the string characteristics, by UUID (errors name them).
STRING_CHARACTERISTICS: dict[str, str] = {
    uuids.MANUFACTURER_NAME: "Manufacturer Name String",
    uuids.MODEL_NUMBER: "Model Number String",
    uuids.SERIAL_NUMBER: "Serial Number String",
    uuids.HARDWARE_REVISION: "Hardware Revision String",
    uuids.FIRMWARE_REVISION: "Firmware Revision String",
    uuids.SOFTWARE_REVISION: "Software Revision String",
}


@dataclass(frozen=True)
class DeviceInfoString:
    """One of the Device Information strings: UTF-8, no terminator, at most 512 bytes."""

    text: str
    characteristic: str = "Device Information String"

    def encode(self) -> bytes:
        return encode_utf8(self.text, self.characteristic, "text", MAX_STRING_BYTES)

    @classmethod
    def decode(cls, data: bytes, characteristic: str = "Device Information String") -> Self:
        if len(data) > MAX_STRING_BYTES:
            fault = f"text is {len(data)} bytes, at most {MAX_STRING_BYTES}"
            raise TextError(characteristic, fault)
        return cls(decode_utf8(data, characteristic), characteristic)


class VendorIdSource(enum.IntEnum):
    """Who assigned the vendor id (0 and 3-255 reserved)."""

    BLUETOOTH_SIG = 1
    USB_IMPLEMENTERS_FORUM = 2


@dataclass(frozen=True)
class PnpId:
    """PnP ID 0x2A50: 7 bytes. ``product_version`` is 0xJJMN: major JJ, minor M, sub-minor N."""

    vendor_id_source: VendorIdSource
    vendor_id: int
    product_id: int
    product_version: int

    CHARACTERISTIC: ClassVar[str] = "PnP ID"

    @property
    def version(self) -> tuple[int, int, int]:
        """(major, minor, sub-minor) of ``product_version``."""
        v = self.product_version
        return v >> 8, (v >> 4) & 0xF, v & 0xF

    def encode(self) -> bytes:
        name = self.CHARACTERISTIC
        source = enum_member(VendorIdSource, self.vendor_id_source, name, "vendor id source")
        writer = Writer(name).u8(source, "vendor id source").u16(self.vendor_id, "vendor id")
        writer.u16(self.product_id, "product id").u16(self.product_version, "product version")
        return writer.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        name = cls.CHARACTERISTIC
        reader = Reader(data, name)
        source = enum_member(
            VendorIdSource, reader.u8("vendor id source"), name, "vendor id source"
        )
        value = cls(
            source, reader.u16("vendor id"), reader.u16("product id"), reader.u16("product version")
        )
        reader.end()
        return value
