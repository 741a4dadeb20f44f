"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit): the medical number formats of SIG.

Both are ``mantissa * 10 ** exponent`` with a signed exponent in the top bits and a
signed mantissa below. A decimal number such as 33.45 is only exact in decimal, so values
travel as ``Decimal`` and all arithmetic is on integers: a binary float would turn 33.45
into 33.4500000000000028... and pick a needlessly long mantissa.

Encoding picks, among exact representations, the one whose exponent is closest to zero
(33.45 -> 3345e-2, 97 -> 97e0, 100 -> 100e0, 1e9 -> 1000e6 in FLOAT). A value with more
significant digits than the mantissa holds is rounded half-to-even to the most precise
representation; one too large, or so small that it would round to zero, is a
``RangeError``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from protocol.errors import LengthError, RangeError, ReservedValueError


class Special(enum.Enum):
    """The reserved non-numbers of IEEE 11073 (encoded with exponent 0)."""

    NAN = "NaN"
    NRES = "NRes"  # "not at this resolution": a value that cannot be shown
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"


# What a decoder returns and a measurement field holds.
Value = Decimal | Special
# What an encoder accepts: floats are read by their shortest repr (33.45 -> "33.45").
Number = Decimal | int | float | Special


@dataclass(frozen=True)
class Format:
    """Layout of one of the two widths; ``SFLOAT`` and ``FLOAT`` are the instances."""

    name: str
    size: int  # bytes on the wire
    mantissa_bits: int

    @property
    def exponent_bits(self) -> int:
        return 8 * self.size - self.mantissa_bits

    @property
    def max_mantissa(self) -> int:
        """Largest finite magnitude; the five codes above it are the specials."""
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def min_exponent(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def max_exponent(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def max_digits(self) -> int:
        return len(str(self.max_mantissa))

    def special_mantissas(self) -> dict[int, Special | None]:
        """Signed reserved mantissas; ``None`` marks the one reserved for future use."""
        top = self.max_mantissa
        return {
            top + 2: Special.NAN,
            -(top + 3): Special.NRES,
            top + 1: Special.POSITIVE_INFINITY,
            -(top + 1): Special.NEGATIVE_INFINITY,
            -(top + 2): None,
        }


SFLOAT: Final = Format("SFLOAT", 2, 12)
FLOAT: Final = Format("FLOAT", 4, 24)


def as_value(number: Number) -> Value:
    """Exact decimal of ``number``; float NaN and infinities map to the specials."""
    if isinstance(number, Special):
        return number
    if isinstance(number, bool):
        raise TypeError("a bool is not a measurement value")
    if isinstance(number, float):
        if math.isnan(number):
            return Special.NAN
        if math.isinf(number):
            return Special.POSITIVE_INFINITY if number > 0 else Special.NEGATIVE_INFINITY
        return Decimal(repr(number))
    if isinstance(number, int):
        return Decimal(number)
    if number.is_nan():
        return Special.NAN
    if number.is_infinite():
        return Special.NEGATIVE_INFINITY if number.is_signed() else Special.POSITIVE_INFINITY
    return number


def to_float(value: Value) -> float:
    """For display and arithmetic: NaN and NRes become float NaN."""
    if value is Special.POSITIVE_INFINITY:
        return math.inf
    if value is Special.NEGATIVE_INFINITY:
        return -math.inf
    if isinstance(value, Special):
        return math.nan
    return float(value)


def _round_half_even(numerator: int, power: int) -> int:
    """``numerator / 10**power`` rounded half to even, for ``power >= 0``."""
    divisor: int = 10**power
    quotient, remainder = divmod(numerator, divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and quotient % 2):
        quotient += 1
    return quotient


def _exact_parts(fmt: Format, coefficient: int, exponent: int) -> tuple[int, int] | None:
    """Exact (mantissa, exponent) with exponent closest to zero, or None if there is none.

    ``coefficient`` must carry no trailing zeros (so ``exponent`` is the largest exact one).
    """
    magnitude = abs(coefficient)
    if magnitude > fmt.max_mantissa:
        return None
    spare_digits = fmt.max_digits - len(str(magnitude))
    if magnitude * 10**spare_digits > fmt.max_mantissa:
        spare_digits -= 1
    low = max(exponent - spare_digits, fmt.min_exponent)
    high = min(exponent, fmt.max_exponent)
    if low > high:
        return None
    chosen = min(max(0, low), high)
    return coefficient * 10 ** (exponent - chosen), chosen


def _finite_parts(fmt: Format, value: Decimal, characteristic: str, field: str) -> tuple[int, int]:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: as_value() took out NaN and infinities
    # Only the leading digits can survive; the rest matter for rounding only as "zero or
    # not", and a 5,000-digit coefficient would trip Python's int/str conversion limit.
    keep = fmt.max_digits + 2
    if len(digits) > keep:
        exponent += len(digits) - keep - 1
        digits = (*digits[:keep], 1 if any(digits[keep:]) else 0)
    coefficient = int("".join(map(str, digits)))
    if coefficient == 0:
        return 0, 0
    while coefficient % 10 == 0:
        coefficient //= 10
        exponent += 1
    integer_digits = len(str(coefficient)) + exponent  # value < 10 ** integer_digits
    if integer_digits > fmt.max_exponent + fmt.max_digits:
        raise RangeError(characteristic, f"{field} {value} is too large for {fmt.name}")
    if integer_digits < fmt.min_exponent:
        raise RangeError(characteristic, f"{field} {value} is too small for {fmt.name}")
    signed = -coefficient if sign else coefficient
    exact = _exact_parts(fmt, signed, exponent)
    if exact is not None:
        return exact
    for target in range(max(fmt.min_exponent, exponent), fmt.max_exponent + 1):
        rounded = _round_half_even(coefficient, target - exponent)
        if rounded <= fmt.max_mantissa:
            if rounded == 0:
                raise RangeError(characteristic, f"{field} {value} rounds to 0 in {fmt.name}")
            while rounded % 10 == 0:
                rounded //= 10
                target += 1
            parts = _exact_parts(fmt, -rounded if sign else rounded, target)
            assert parts is not None  # the unstripped rounding is itself one exact form
            return parts
    raise RangeError(characteristic, f"{field} {value} is too large for {fmt.name}")


def _encode(fmt: Format, number: Number, characteristic: str, field: str) -> bytes:
    try:
        value = as_value(number)
    except TypeError as exc:
        raise RangeError(characteristic, f"{field}: {exc}") from None
    if isinstance(value, Special):
        specials = {v: m for m, v in fmt.special_mantissas().items() if v is not None}
        mantissa, exponent = specials[value], 0
    else:
        mantissa, exponent = _finite_parts(fmt, value, characteristic, field)
    mantissa_mask = (1 << fmt.mantissa_bits) - 1
    exponent_mask = (1 << fmt.exponent_bits) - 1
    raw = ((exponent & exponent_mask) << fmt.mantissa_bits) | (mantissa & mantissa_mask)
    return raw.to_bytes(fmt.size, "little")


def _decode(fmt: Format, data: bytes, characteristic: str, field: str) -> Value:
    if len(data) != fmt.size:
        raise LengthError(
            characteristic, f"{field} {fmt.name} needs {fmt.size} bytes, got {len(data)}"
        )
    raw = int.from_bytes(data, "little")
    mantissa = raw & ((1 << fmt.mantissa_bits) - 1)
    if mantissa >= 1 << (fmt.mantissa_bits - 1):
        mantissa -= 1 << fmt.mantissa_bits
    exponent = raw >> fmt.mantissa_bits
    if exponent >= 1 << (fmt.exponent_bits - 1):
        exponent -= 1 << fmt.exponent_bits
    specials = fmt.special_mantissas()
    if mantissa in specials:
        special = specials[mantissa]
        if special is None or exponent != 0:
            raise ReservedValueError(
                characteristic, f"{field} {fmt.name} 0x{data[::-1].hex()} is a reserved code"
            )
        return special
    digits = tuple(int(d) for d in str(abs(mantissa)))
    return Decimal((1 if mantissa < 0 else 0, digits, exponent))


def encode_sfloat(number: Number, characteristic: str = "SFLOAT", field: str = "value") -> bytes:
    """Two little-endian bytes; ``RangeError`` names ``characteristic`` and ``field``."""
    return _encode(SFLOAT, number, characteristic, field)


def decode_sfloat(data: bytes, characteristic: str = "SFLOAT", field: str = "value") -> Value:
    return _decode(SFLOAT, data, characteristic, field)


def encode_float(number: Number, characteristic: str = "FLOAT", field: str = "value") -> bytes:
    """Four little-endian bytes; ``RangeError`` names ``characteristic`` and ``field``."""
    return _encode(FLOAT, number, characteristic, field)


def decode_float(data: bytes, characteristic: str = "FLOAT", field: str = "value") -> Value:
    return _decode(FLOAT, data, characteristic, field)
