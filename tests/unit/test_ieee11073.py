"""IEEE 11073 SFLOAT / FLOAT: known answers, exponent choice, rounding, specials, errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LengthError, ProtocolError, RangeError, ReservedValueError
from protocol.ieee11073 import (
    FLOAT,
    SFLOAT,
    Format,
    Special,
    Value,
    as_value,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
    to_float,
)

Encoder = Callable[..., bytes]
Decoder = Callable[..., Value]

CODECS = [
    pytest.param(encode_sfloat, decode_sfloat, SFLOAT, id="SFLOAT"),
    pytest.param(encode_float, decode_float, FLOAT, id="FLOAT"),
]


def _parts(data: bytes, mantissa_bits: int) -> tuple[int, int]:
    """Test oracle: signed (mantissa, exponent) straight from the bit layout."""
    raw = int.from_bytes(data, "little")
    total = 8 * len(data)
    mantissa, exponent = raw % (1 << mantissa_bits), raw >> mantissa_bits
    if mantissa >> (mantissa_bits - 1):
        mantissa -= 1 << mantissa_bits
    if exponent >> (total - mantissa_bits - 1):
        exponent -= 1 << (total - mantissa_bits)
    return mantissa, exponent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("33.45"), "110d00fe"),  # mantissa 3345, exponent -2
        (33.45, "110d00fe"),
        (Decimal("36.6"), "6e0100ff"),
        (0, "00000000"),
        (-1, "ffffff00"),
        (Decimal("1E9"), "40420f03"),  # 1000000e3: exponent closest to 0
        (Special.NAN, "ffff7f00"),
        (Special.NRES, "00008000"),
        (Special.POSITIVE_INFINITY, "feff7f00"),
        (Special.NEGATIVE_INFINITY, "02008000"),
        (math.inf, "feff7f00"),
        (-math.inf, "02008000"),
        (math.nan, "ffff7f00"),
    ],
)
def test_float_known_answers(value: Decimal | int | float | Special, expected: str) -> None:
    assert encode_float(value).hex() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (97, "6100"),  # SpO2 97 %
        (Decimal("97.0"), "6100"),
        (100, "6400"),  # not 1e2: exponent 0 is exact
        (72, "4800"),
        (Decimal("98.6"), "daf3"),  # 986e-1
        (-2045, "0308"),  # 12-bit two's complement 0x803
        (Decimal("2045E7"), "fd77"),
        (Decimal("1E-8"), "0180"),
        (Special.NAN, "ff07"),
        (Special.NRES, "0008"),
        (Special.POSITIVE_INFINITY, "fe07"),
        (Special.NEGATIVE_INFINITY, "0208"),
    ],
)
def test_sfloat_known_answers(value: Decimal | int | Special, expected: str) -> None:
    assert encode_sfloat(value).hex() == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (Decimal("1234.5"), Decimal("1234")),  # half to even
        (Decimal("1235.5"), Decimal("1236")),
        (Decimal("-1234.5"), Decimal("-1234")),
        (Decimal("2045.6"), Decimal("2050")),  # 2046 does not fit: one digit less
        (Decimal("1.23456"), Decimal("1.235")),
        (Decimal("5.1E-9"), Decimal("1E-8")),
        # Digits far beyond the mantissa still decide a tie, without int/str limits.
        (Decimal("1234.5" + "0" * 6000 + "1"), Decimal("1235")),
        (Decimal("1234.5" + "0" * 6000), Decimal("1234")),
        (Decimal("1" + "0" * 6000 + "1E-6001"), Decimal("1")),
        # A binary float would round these the other way (0.62250000000000005...).
        (0.6225, Decimal("0.622")),
        (1.4315, Decimal("1.432")),
    ],
)
def test_sfloat_rounds_half_even_in_decimal(number: Decimal | float, expected: Decimal) -> None:
    decoded = decode_sfloat(encode_sfloat(number))
    assert isinstance(decoded, Decimal)
    assert decoded == expected


@pytest.mark.parametrize(
    "number",
    [Decimal("2046E7"), Decimal("20455E6"), Decimal("1E300"), Decimal("5E-9"), Decimal("1E-300")],
)
def test_sfloat_out_of_range(number: Decimal) -> None:
    with pytest.raises(RangeError, match="Heart Rate: SpO2"):
        encode_sfloat(number, "Heart Rate", "SpO2")


def test_float_out_of_range() -> None:
    with pytest.raises(RangeError, match="too large"):
        encode_float(Decimal("8388606E127"))
    with pytest.raises(RangeError, match="rounds to 0"):
        encode_float(Decimal("4E-129"))
    assert decode_float(encode_float(Decimal("8388605E127"))) == Decimal("8388605E127")
    assert decode_float(encode_float(Decimal("6E-129"))) == Decimal("1E-128")


def test_bool_is_not_a_number() -> None:
    with pytest.raises(RangeError, match="bool"):
        encode_sfloat(True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("6100", Decimal(97)),
        ("ff07", Special.NAN),
        ("0008", Special.NRES),
        ("fe07", Special.POSITIVE_INFINITY),
        ("0208", Special.NEGATIVE_INFINITY),
        ("64f0", Decimal("10.0")),  # 100e-1: decoders accept non-canonical exponents
        ("0000", Decimal(0)),
    ],
)
def test_sfloat_decode_known(data: str, expected: Value) -> None:
    assert decode_sfloat(bytes.fromhex(data)) == expected


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        (decode_sfloat, "0108"),  # reserved for future use
        (decode_sfloat, "ff17"),  # NaN mantissa with exponent 1
        (decode_sfloat, "0088"),  # NRes mantissa with exponent -8
        (decode_float, "01008000"),
        (decode_float, "ffff7f01"),
    ],
)
def test_reserved_codes(decode: Decoder, data: str) -> None:
    with pytest.raises(ReservedValueError, match="reserved"):
        decode(bytes.fromhex(data), "PLX Features", "SpO2")


@pytest.mark.parametrize(("encode", "decode", "fmt"), CODECS)
def test_wrong_length(encode: Encoder, decode: Decoder, fmt: Format) -> None:
    for size in (0, fmt.size - 1, fmt.size + 1):
        with pytest.raises(LengthError, match="Battery Level: level"):
            decode(b"\x00" * size, "Battery Level", "level")


def test_to_float_and_as_value() -> None:
    assert to_float(Decimal("33.45")) == 33.45
    assert to_float(Special.POSITIVE_INFINITY) == math.inf
    assert to_float(Special.NEGATIVE_INFINITY) == -math.inf
    assert math.isnan(to_float(Special.NRES))
    assert as_value(Decimal("NaN")) is Special.NAN
    assert as_value(Decimal("-Infinity")) is Special.NEGATIVE_INFINITY
    assert as_value(0.1) == Decimal("0.1")


@pytest.mark.parametrize(("encode", "decode", "fmt"), CODECS)
@given(data=st.data())
def test_exact_values_round_trip(
    encode: Encoder, decode: Decoder, fmt: Format, data: st.DataObject
) -> None:
    mantissa = data.draw(st.integers(-fmt.max_mantissa, fmt.max_mantissa))
    exponent = data.draw(st.integers(fmt.min_exponent, fmt.max_exponent))
    value = Decimal(mantissa).scaleb(exponent)
    wire = encode(value)
    assert decode(wire) == value
    chosen_mantissa, chosen_exponent = _parts(wire, fmt.mantissa_bits)
    assert Fraction(chosen_mantissa) * Fraction(10) ** chosen_exponent == Fraction(value)
    # No exact representation has an exponent closer to zero.
    if chosen_exponent > 0:
        assert abs(chosen_mantissa) * 10 > fmt.max_mantissa
    elif chosen_exponent < 0:
        assert chosen_mantissa % 10 != 0


@pytest.mark.parametrize(("encode", "decode", "fmt"), CODECS)
@given(number=st.decimals(allow_nan=False, allow_infinity=False))
def test_rounding_is_to_the_nearest_at_full_precision(
    encode: Encoder, decode: Decoder, fmt: Format, number: Decimal
) -> None:
    try:
        wire = encode(number)
    except RangeError:
        return
    mantissa, exponent = _parts(wire, fmt.mantissa_bits)
    exact = Fraction(number)
    error = abs(Fraction(mantissa) * Fraction(10) ** exponent - exact)
    # The finest exponent whose mantissa range covers the number (independent of the codec).
    finest = fmt.min_exponent
    while abs(exact) > fmt.max_mantissa * Fraction(10) ** finest:
        finest += 1
    assert error <= Fraction(10) ** (finest + 1) / 2
    if abs(exact) <= (fmt.max_mantissa - 1) * Fraction(10) ** finest:
        assert error <= Fraction(10) ** finest / 2


@pytest.mark.parametrize(("encode", "decode", "fmt"), CODECS)
@given(raw=st.integers(0, 2**32 - 1))
def test_any_code_decodes_to_its_bits_or_reserved(
    encode: Encoder, decode: Decoder, fmt: Format, raw: int
) -> None:
    data = (raw % (1 << (8 * fmt.size))).to_bytes(fmt.size, "little")
    try:
        value = decode(data)
    except ProtocolError as exc:
        assert isinstance(exc, ReservedValueError)
        return
    mantissa, exponent = _parts(data, fmt.mantissa_bits)
    if isinstance(value, Special):
        assert exponent == 0
        assert abs(mantissa) > fmt.max_mantissa
        assert encode(value) == data
    else:
        assert abs(mantissa) <= fmt.max_mantissa
        assert Fraction(value) == Fraction(mantissa) * Fraction(10) ** exponent
        assert decode(encode(value)) == value
