"""Hostile bytes into every custom decoder: a value or a ProtocolError, nothing else.

What a decoder accepts must also be canonical: re-encoding gives back the same bytes,
so two peers never disagree about what a payload meant.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.activity import ActivitySummary
from protocol.alerts import AlertNotification, AlertRemoval, CallAction, CallState
from protocol.errors import ProtocolError
from protocol.history import HistoryBatch, HistoryRequest, HistoryResponse, HistoryStatus
from protocol.music import MusicEvent, MusicState
from protocol.settings import MetricSettings, SettingsControl, UserProfile
from tests.unit.test_custom_codecs import VECTORS
from tests.unit.test_history_batches import KNOWN_WIRE

DECODERS: list[type[Any]] = [
    ActivitySummary,
    HistoryRequest,
    HistoryResponse,
    HistoryStatus,
    HistoryBatch,
    AlertNotification,
    AlertRemoval,
    CallState,
    CallAction,
    MusicState,
    MusicEvent,
    UserProfile,
    MetricSettings,
    SettingsControl,
]
SEEDS = [bytes.fromhex(wire) for _, wire in VECTORS] + [KNOWN_WIRE]


def decode_or_refuse(codec: type[Any], data: bytes) -> None:
    try:
        value = codec.decode(data)
    except ProtocolError:
        return
    assert value.encode() == data


@pytest.mark.parametrize("codec", DECODERS, ids=lambda c: c.__name__)
@given(st.binary(max_size=600))
def test_random_bytes(codec: type[Any], data: bytes) -> None:
    decode_or_refuse(codec, data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with bytes flipped, cut or appended: close enough to get past checks."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "append"]))
        if action == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif action == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@pytest.mark.parametrize("codec", DECODERS, ids=lambda c: c.__name__)
@given(mutated())
def test_mutated_payloads(codec: type[Any], data: bytes) -> None:
    decode_or_refuse(codec, data)
