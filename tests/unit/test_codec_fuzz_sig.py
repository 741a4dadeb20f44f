"""Fuzz every standard decoder: a value or a ``ProtocolError``, never anything else.

Random bytes rarely get past a flags byte, so valid encodings are also mutated (bytes
flipped, cut short, extended) to reach the deeper fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.ieee11073 import decode_float, decode_sfloat, encode_float, encode_sfloat
from tests.unit.test_sig_codecs import ROUND_TRIPS

DECODERS: dict[str, Callable[[bytes], Any]] = {
    name: decode for name, (_, decode) in ROUND_TRIPS.items()
}


def _check(decode: Callable[[bytes], Any], data: bytes) -> None:
    try:
        value = decode(data)
    except ProtocolError as exc:
        assert exc.characteristic and exc.fault
        assert str(exc).startswith(f"{exc.characteristic}: ")
        return
    # Whatever decodes must encode again, to something that decodes to the same value.
    assert decode(value.encode()) == value


@pytest.mark.parametrize("name", DECODERS)
@settings(max_examples=200)
@given(data=st.binary(max_size=48))
def test_random_bytes(name: str, data: bytes) -> None:
    _check(DECODERS[name], data)


@st.composite
def mutated(draw: st.DrawFn, name: str) -> bytes:
    strategy, _ = ROUND_TRIPS[name]
    wire = bytearray(draw(strategy).encode())
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "extend"]))
        if action == "flip" and wire:
            index = draw(st.integers(0, len(wire) - 1))
            wire[index] ^= draw(st.integers(1, 255))
        elif action == "cut" and wire:
            del wire[draw(st.integers(0, len(wire) - 1)) :]
        else:
            wire += draw(st.binary(min_size=1, max_size=4))
    return bytes(wire)


@pytest.mark.parametrize("name", DECODERS)
@settings(max_examples=200)
@given(data=st.data())
def test_mutated_encodings(name: str, data: st.DataObject) -> None:
    _check(DECODERS[name], data.draw(mutated(name)))


@pytest.mark.parametrize(
    ("decode", "encode"), [(decode_sfloat, encode_sfloat), (decode_float, encode_float)]
)
@given(data=st.binary(max_size=6))
def test_number_formats(
    decode: Callable[[bytes], Any], encode: Callable[[Any], bytes], data: bytes
) -> None:
    try:
        value = decode(data)
    except ProtocolError:
        return
    assert decode(encode(value)) == value
