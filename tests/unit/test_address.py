"""``protocol.address.Address``: parsed and checked once, one canonical form (issue 16)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.address import EXAMPLE, Address, AddressError


@given(
    raw=st.binary(min_size=6, max_size=6),
    lower=st.booleans(),
    separator=st.sampled_from([":", "-"]),
)
def test_any_spelling_of_six_bytes_is_one_address(raw: bytes, lower: bool, separator: str) -> None:
    canonical = ":".join(f"{b:02X}" for b in raw)
    typed = separator.join(f"{b:02x}" if lower else f"{b:02X}" for b in raw)
    address = Address(f" {typed} ")
    assert address == canonical and isinstance(address, str)
    assert Address(address) is address


@given(st.text(max_size=20).filter(lambda t: len(t.strip()) != 17))
def test_text_of_another_length_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(AddressError, match=EXAMPLE):
        Address(text)


@pytest.mark.parametrize(
    "text",
    ["notanaddress", "GG:00:00:00:00:00", "F0:5A:6E:00:00", "F0-5A:6E:00:00:01", "F05A6E000001"],
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(AddressError, match="not a Bluetooth address"):
        Address(text)
