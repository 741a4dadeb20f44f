"""Little-endian reader and writer that fail only with our own ``ProtocolError`` family.

Every codec reads through ``Reader`` so that a short buffer, trailing bytes or bad UTF-8
surface as ``LengthError`` / ``TextError`` naming the characteristic, never as
``struct.error``, ``IndexError`` or ``UnicodeDecodeError``. ``Writer`` range-checks each
field so that encoders refuse values the wire cannot carry (``RangeError``).
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Self, TypeVar

from protocol.errors import LengthError, RangeError, ReservedValueError, TextError

_E = TypeVar("_E", bound=enum.IntEnum)


def check_range(characteristic: str, field: str, value: int, low: int, high: int) -> int:
    """Return ``value`` if ``low <= value <= high``, else raise ``RangeError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RangeError(characteristic, f"{field} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise RangeError(characteristic, f"{field} {value} outside {low}..{high}")
    return value


class Reader:
    """Consumes a buffer front to back; call ``end()`` once the layout is complete."""

    def __init__(self, data: bytes, characteristic: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self.characteristic = characteristic

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, count: int, what: str = "field") -> bytes:
        """The next ``count`` bytes; ``what`` names the field in the error message."""
        if count < 0 or count > self.remaining:
            raise LengthError(
                self.characteristic,
                f"{what} needs {count} byte(s) at offset {self._pos}, "
                f"only {self.remaining} left (length {len(self._data)})",
            )
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def uint(self, size: int, what: str = "field") -> int:
        return int.from_bytes(self.take(size, what), "little")

    def sint(self, size: int, what: str = "field") -> int:
        return int.from_bytes(self.take(size, what), "little", signed=True)

    def u8(self, what: str = "field") -> int:
        return self.uint(1, what)

    def u16(self, what: str = "field") -> int:
        return self.uint(2, what)

    def u24(self, what: str = "field") -> int:
        return self.uint(3, what)

    def u32(self, what: str = "field") -> int:
        return self.uint(4, what)

    def u64(self, what: str = "field") -> int:
        return self.uint(8, what)

    def s8(self, what: str = "field") -> int:
        return self.sint(1, what)

    def s16(self, what: str = "field") -> int:
        return self.sint(2, what)

    def s32(self, what: str = "field") -> int:
        return self.sint(4, what)

    def rest(self) -> bytes:
        """All bytes not read yet (possibly none)."""
        return self.take(self.remaining)

    def utf8(self, count: int, what: str = "text") -> str:
        return decode_utf8(self.take(count, what), self.characteristic, what)

    def end(self) -> None:
        """Raise ``LengthError`` if bytes are left over."""
        if self.remaining:
            raise LengthError(
                self.characteristic,
                f"{self.remaining} unexpected trailing byte(s) after offset {self._pos} "
                f"(length {len(self._data)})",
            )


class Writer:
    """Appends range-checked little-endian fields; chainable."""

    def __init__(self, characteristic: str) -> None:
        self._parts = bytearray()
        self.characteristic = characteristic

    def raw(self, data: bytes) -> Self:
        self._parts += data
        return self

    def uint(self, size: int, value: int, what: str = "field") -> Self:
        check_range(self.characteristic, what, value, 0, (1 << (8 * size)) - 1)
        return self.raw(value.to_bytes(size, "little"))

    def sint(self, size: int, value: int, what: str = "field") -> Self:
        half = 1 << (8 * size - 1)
        check_range(self.characteristic, what, value, -half, half - 1)
        return self.raw(value.to_bytes(size, "little", signed=True))

    def u8(self, value: int, what: str = "field") -> Self:
        return self.uint(1, value, what)

    def u16(self, value: int, what: str = "field") -> Self:
        return self.uint(2, value, what)

    def u24(self, value: int, what: str = "field") -> Self:
        return self.uint(3, value, what)

    def u32(self, value: int, what: str = "field") -> Self:
        return self.uint(4, value, what)

    def u64(self, value: int, what: str = "field") -> Self:
        return self.uint(8, value, what)

    def s8(self, value: int, what: str = "field") -> Self:
        return self.sint(1, value, what)

    def s16(self, value: int, what: str = "field") -> Self:
        return self.sint(2, value, what)

    def s32(self, value: int, what: str = "field") -> Self:
        return self.sint(4, value, what)

    def utf8(self, text: str, what: str = "text", max_bytes: int | None = None) -> Self:
        return self.raw(encode_utf8(text, self.characteristic, what, max_bytes))

    def getvalue(self) -> bytes:
        return bytes(self._parts)


def decode_utf8(data: bytes, characteristic: str, what: str = "text") -> str:
    """UTF-8 text, or ``TextError`` naming the characteristic and the offending offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(characteristic, f"{what} is not valid UTF-8 at byte {exc.start}") from None


def encode_utf8(
    text: str, characteristic: str, what: str = "text", max_bytes: int | None = None
) -> bytes:
    """UTF-8 bytes of ``text``; ``TextError`` if it has lone surrogates or exceeds ``max_bytes``."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        fault = f"{what} cannot be encoded as UTF-8: {exc.reason}"
        raise TextError(characteristic, fault) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise TextError(characteristic, f"{what} is {len(data)} bytes, at most {max_bytes}")
    return data


def check_reserved_bits(characteristic: str, field: str, value: int, allowed: int) -> int:
    """Return ``value`` if it sets no bit outside ``allowed``, else ``ReservedValueError``."""
    extra = value & ~allowed
    if extra:
        raise ReservedValueError(
            characteristic, f"{field} 0x{value:x} sets reserved bits 0x{extra:x}"
        )
    return value


def enum_member(kind: type[_E], value: int, characteristic: str, field: str) -> _E:
    """The member of ``kind`` for ``value``; ``ReservedValueError`` for values it lacks."""
    try:
        return kind(value)
    except ValueError:
        raise ReservedValueError(characteristic, f"{field} {value} is reserved") from None


class ByteEnum(enum.IntEnum):
    """A characteristic that is exactly one byte naming a member; other values are reserved.

    Subclasses name the characteristic and the field for error messages:
    ``class Kind(ByteEnum, characteristic="Body Sensor Location", field="location")``.
    """

    _characteristic: ClassVar[str]
    _field: ClassVar[str]

    def __init_subclass__(cls, *, characteristic: str, field: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._characteristic = characteristic
        cls._field = field

    def encode(self) -> bytes:
        return bytes([int(self)])

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls._characteristic)
        value = reader.u8(cls._field)
        reader.end()
        return enum_member(cls, value, cls._characteristic, cls._field)
