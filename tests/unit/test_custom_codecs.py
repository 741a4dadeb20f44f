"""Known-answer vectors and round trips for the custom-service codecs (history batches apart).

The vectors were worked out by hand from docs/protocol-custom.md, so they pin the wire
format rather than whatever the encoder happens to do.
"""

from __future__ import annotations

import datetime
from typing import Any, Protocol

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import errors
from protocol.activity import ActivitySummary
from protocol.alerts import (
    MAX_APP_BYTES,
    MAX_BODY_BYTES,
    MAX_CALLER_BYTES,
    MAX_TITLE_BYTES,
    AlertCategory,
    AlertNotification,
    AlertRemoval,
    CallAction,
    CallActionKind,
    CallState,
    CallStatus,
    truncate_utf8,
)
from protocol.history import (
    HistoryOpcode,
    HistoryRequest,
    HistoryResponse,
    HistoryResult,
    HistoryStatus,
)
from protocol.metrics import Metric
from protocol.music import MAX_TRACK_TEXT_BYTES, MusicCommand, MusicEvent, MusicState, Playback
from protocol.settings import (
    MetricSetting,
    MetricSettings,
    SettingsControl,
    SettingsOpcode,
    Sex,
    UserProfile,
)


class Codec(Protocol):
    def encode(self) -> bytes: ...


METRIC_TABLE = MetricSettings(
    (
        MetricSetting(Metric.HEART_RATE, True, 5),
        MetricSetting(Metric.STEPS, True, 60),
        MetricSetting(Metric.SPO2, False, 300),
        MetricSetting(Metric.SKIN_TEMPERATURE, True, 60),
    )
)

VECTORS: list[tuple[Codec, str]] = [
    (
        ActivitySummary(datetime.date(2026, 11, 25), 8432, 6120, 312),
        "ea070b19 f0200000 e8170000 3801",
    ),
    (HistoryRequest(HistoryOpcode.REPORT, 1000), "01 e8030000"),
    (HistoryRequest(HistoryOpcode.COUNT, 0), "02 00000000"),
    (HistoryRequest(HistoryOpcode.ABORT), "03"),
    (HistoryRequest(HistoryOpcode.DELETE_UP_TO, 0x12345678), "04 78563412"),
    (HistoryRequest(HistoryOpcode.REPORT_LIVE, 5001), "05 89130000"),
    (HistoryResponse(HistoryOpcode.REPORT, HistoryResult.SUCCESS, 1234), "80 01 01 d2040000"),
    (HistoryResponse(HistoryOpcode.COUNT, HistoryResult.NO_RECORDS), "80 02 02 00000000"),
    (HistoryStatus(5000, 1001, 3990), "88130000 e9030000 960f0000"),
    (HistoryStatus(0, 0, 0), "00000000 00000000 00000000"),
    (
        AlertNotification(7, AlertCategory.MESSAGE, "Chat", "Ann", "Hi \u00e9"),
        "07000000 01 04 03 05 43686174 416e6e 486920c3a9",
    ),
    (AlertRemoval(7), "07000000"),
    (CallState(0x01020304, CallStatus.INCOMING, "Mum"), "04030201 01 4d756d"),
    (CallState(5, CallStatus.MISSED), "05000000 05"),
    (CallAction(0x01020304, CallActionKind.MUTE), "04030201 03"),
    (
        MusicState(Playback.PLAYING, 55, 61, 245, "Song", "Band"),
        "01 37 3d000000 f5000000 04 04 536f6e67 42616e64",
    ),
    (MusicEvent(MusicCommand.SET_VOLUME, 40), "07 28"),
    (MusicEvent(MusicCommand.NEXT), "03"),
    (UserProfile(34, Sex.FEMALE, 168, 612), "22 01 a800 6402"),
    (METRIC_TABLE, "01010500 02013c00 03002c01 04013c00"),
    (SettingsControl(SettingsOpcode.FACTORY_RESET), "02"),
]


@pytest.mark.parametrize(("value", "wire"), VECTORS, ids=lambda v: type(v).__name__)
def test_known_answer(value: Codec, wire: str) -> None:
    data = bytes.fromhex(wire)
    assert value.encode() == data
    assert type(value).decode(data) == value  # type: ignore[attr-defined]


BAD: list[tuple[type[Any], str, type[errors.ProtocolError], str]] = [
    (ActivitySummary, "ea070d19 f0200000 e8170000 3801", errors.RangeError, "2026-13-25"),
    (ActivitySummary, "ea070b19 f0200000 e8170000 38", errors.LengthError, "energy"),
    (HistoryRequest, "06", errors.ReservedValueError, "request opcode 6"),
    (HistoryRequest, "03 00", errors.LengthError, "trailing"),
    (HistoryResponse, "81 01 01 00000000", errors.ReservedValueError, "0x81"),
    (HistoryResponse, "80 01 07 00000000", errors.ReservedValueError, "result 7"),
    (HistoryStatus, "0a000000 05000000 07000000", errors.RangeError, "7 record(s)"),
    (AlertNotification, "07000000 05 00 00 00", errors.ReservedValueError, "category"),
    (AlertNotification, "07000000 01 00 31 00" + "41" * 49, errors.RangeError, "title is 49"),
    (AlertNotification, "07000000 01 00 00 02 c328", errors.TextError, "body"),
    (AlertNotification, "07000000 01 00 00 02 41", errors.LengthError, "body"),
    (CallState, "05000000 01 2b3434203230203739343620303935", errors.RangeError, "phone"),
    (CallState, "05000000 00", errors.ReservedValueError, "call state"),
    (CallAction, "05000000 04", errors.ReservedValueError, "action"),
    (MusicState, "01 65 00000000 00000000 00 00", errors.RangeError, "volume 101"),
    (MusicState, "01 10 0b000000 0a000000 00 00", errors.RangeError, "past duration"),
    (MusicEvent, "01 28", errors.LengthError, "trailing"),
    (MusicEvent, "07", errors.LengthError, "volume"),
    (UserProfile, "00 01 a800 6402", errors.RangeError, "age"),
    (UserProfile, "22 03 a800 6402", errors.ReservedValueError, "sex"),
    (MetricSettings, "01030500 02013c00 03002c01 04013c00", errors.ReservedValueError, "flags"),
    (MetricSettings, "01010500 02013c00 04013c00", errors.RangeError, "rows must cover"),
    (MetricSettings, "01010000 02013c00 03002c01 04013c00", errors.RangeError, "interval"),
    (SettingsControl, "00", errors.ReservedValueError, "opcode"),
]


@pytest.mark.parametrize(("codec", "wire", "error", "fault"), BAD, ids=lambda v: str(v)[:24])
def test_malformed_input_names_characteristic_and_fault(
    codec: type[Any], wire: str, error: type[errors.ProtocolError], fault: str
) -> None:
    with pytest.raises(error) as caught:
        codec.decode(bytes.fromhex(wire))
    assert caught.value.characteristic
    assert fault in caught.value.fault


def test_encoders_refuse_what_the_wire_cannot_carry() -> None:
    with pytest.raises(errors.TextError, match="title is 49 bytes"):
        AlertNotification(1, AlertCategory.OTHER, "", "x" * 49, "").encode()
    with pytest.raises(errors.RangeError, match="phone number"):
        CallState(1, CallStatus.INCOMING, "(020) 7946-0958").encode()
    with pytest.raises(errors.RangeError, match="phone number"):
        CallState.decode(bytes.fromhex("01000000 01") + b"1" * 64)
    assert CallState(1, CallStatus.INCOMING, "Agent 007").encode()[5:] == b"Agent 007"
    with pytest.raises(errors.RangeError, match="PLAY with volume 3"):
        MusicEvent(MusicCommand.PLAY, 3).encode()
    with pytest.raises(errors.RangeError, match="ABORT operand"):
        HistoryRequest(HistoryOpcode.ABORT, 9).encode()
    with pytest.raises(errors.RangeError, match="weight"):
        UserProfile(30, Sex.MALE, 180, 19).encode()
    with pytest.raises(errors.RangeError, match="notification id"):
        AlertRemoval(1 << 32).encode()


def test_truncation_cuts_between_characters() -> None:
    assert truncate_utf8("h\u00e9llo", 2) == "h"
    assert truncate_utf8("h\u00e9llo", 3) == "h\u00e9"
    assert truncate_utf8("\U0001f600\U0001f600", 7) == "\U0001f600"
    assert truncate_utf8("short", 40) == "short"
    long = AlertNotification.truncated(1, AlertCategory.EMAIL, "a" * 30, "\u00e9" * 30, "b" * 200)
    assert (len(long.app), len(long.title), len(long.body)) == (24, 24, 160)
    assert len(long.encode()) == 8 + 24 + 48 + 160


@given(st.text(), st.integers(0, 300))
def test_truncate_utf8_is_the_longest_fitting_prefix(text: str, limit: int) -> None:
    cut = truncate_utf8(text, limit)
    assert text.startswith(cut)
    assert len(cut.encode()) <= limit
    if cut != text:
        assert len(text[: len(cut) + 1].encode()) > limit


def texts(max_bytes: int) -> st.SearchStrategy[str]:
    return st.text().map(lambda t: truncate_utf8(t, max_bytes))


u32 = st.integers(0, 0xFFFF_FFFF)


def music_states() -> st.SearchStrategy[MusicState]:
    def build(duration: int, position: int, *rest: Any) -> MusicState:
        playback, volume, title, artist = rest
        return MusicState(
            playback, volume, min(position, duration or position), duration, title, artist
        )

    text = texts(MAX_TRACK_TEXT_BYTES)
    return st.builds(build, u32, u32, st.sampled_from(Playback), st.integers(0, 100), text, text)


def history_statuses() -> st.SearchStrategy[HistoryStatus]:
    def build(oldest: int, extra: int, count: int) -> HistoryStatus:
        newest = min(oldest + extra, 0xFFFF_FFFF)
        return HistoryStatus(newest, oldest, min(count, newest - oldest + 1))

    return st.builds(build, u32, u32, u32) | st.builds(HistoryStatus, u32, u32, st.just(0))


CODECS: dict[str, st.SearchStrategy[Any]] = {
    "activity": st.builds(ActivitySummary, st.dates(), u32, u32, st.integers(0, 0xFFFF)),
    "request": st.builds(
        HistoryRequest,
        st.sampled_from([o for o in HistoryOpcode if o is not HistoryOpcode.ABORT]),
        u32,
    )
    | st.just(HistoryRequest(HistoryOpcode.ABORT)),
    "response": st.builds(
        HistoryResponse, st.sampled_from(HistoryOpcode), st.sampled_from(HistoryResult), u32
    ),
    "status": history_statuses(),
    "alert": st.builds(
        AlertNotification,
        u32,
        st.sampled_from(AlertCategory),
        texts(MAX_APP_BYTES),
        texts(MAX_TITLE_BYTES),
        texts(MAX_BODY_BYTES),
    ),
    "removal": st.builds(AlertRemoval, u32),
    "call": st.builds(
        CallState,
        u32,
        st.sampled_from(CallStatus),
        texts(MAX_CALLER_BYTES).filter(lambda n: not any(c.isdigit() for c in n)),
    ),
    "call_action": st.builds(CallAction, u32, st.sampled_from(CallActionKind)),
    "music": music_states(),
    "music_event": st.builds(
        MusicEvent, st.sampled_from([c for c in MusicCommand if c is not MusicCommand.SET_VOLUME])
    )
    | st.builds(MusicEvent, st.just(MusicCommand.SET_VOLUME), st.integers(0, 100)),
    "profile": st.builds(
        UserProfile,
        st.integers(1, 120),
        st.sampled_from(Sex),
        st.integers(50, 272),
        st.integers(20, 6350),
    ),
    "metric_settings": st.lists(
        st.tuples(st.booleans(), st.integers(1, 0xFFFF)), min_size=len(Metric), max_size=len(Metric)
    ).map(
        lambda rows: MetricSettings(
            tuple(MetricSetting(m, on, s) for m, (on, s) in zip(Metric, rows, strict=True))
        )
    ),
    "control": st.builds(SettingsControl, st.sampled_from(SettingsOpcode)),
}


@pytest.mark.parametrize("name", CODECS)
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    value = data.draw(CODECS[name])
    wire = value.encode()
    assert type(value).decode(wire) == value
    assert type(value).decode(bytearray(wire)) == value


def test_metric_settings_lookup_and_update() -> None:
    updated = METRIC_TABLE.with_setting(Metric.SPO2, enabled=True, interval_s=600)
    assert updated[Metric.SPO2] == MetricSetting(Metric.SPO2, True, 600)
    assert updated[Metric.HEART_RATE] == METRIC_TABLE[Metric.HEART_RATE]
    assert MetricSettings.decode(updated.encode()) == updated
