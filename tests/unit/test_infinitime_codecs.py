"""InfiniTime's byte layouts (protocol/infinitime.py), checked against bytes written by
hand from its docs and sources (doc/ble.md, doc/SimpleWeatherService.md, MusicService,
AlertNotificationService, FSService of InfiniTime 1.15)."""

from __future__ import annotations

import struct

import pytest

from protocol import infinitime as it
from protocol.errors import LengthError
from protocol.profile import Security
from watchsim.peripheral.bumble_adapter import scan_response_advertising


def test_heart_rate_is_a_zero_flags_byte_then_u8_bpm() -> None:
    assert it.heart_rate(72) == b"\x00\x48"
    assert it.heart_rate(0) == b"\x00\x00"


def test_steps_and_motion_are_little_endian() -> None:
    assert it.step_count(70_000) == b"\x70\x11\x01\x00"
    assert it.raw_motion(-1, 2, -1024) == b"\xff\xff\x02\x00\x00\xfc"


def test_new_alert_header_then_nul_separated_parts() -> None:
    alert = it.NewAlert.decode(b"\x00\x01\x00Test Title\x00Test Body")
    assert alert is not None
    assert (alert.category, alert.count, alert.parts) == (0, 1, ["Test Title", "Test Body"])
    call = it.NewAlert.decode(b"\x03\x01\x00Mary")
    assert call is not None and call.is_call and call.parts == ["Mary"]


def test_new_alert_of_the_header_alone_is_ignored_and_long_messages_cut_at_100() -> None:
    assert it.NewAlert.decode(b"\x00\x01\x00") is None
    alert = it.NewAlert.decode(b"\x00\x01\x00" + b"x" * 150)
    assert alert is not None and len(alert.message) == 100


def test_music_numbers_are_big_endian_and_four_bytes() -> None:
    assert it.music_u32(b"\x00\x00\x01\x02", "Music Position") == 258
    with pytest.raises(LengthError):
        it.music_u32(b"\x01\x02", "Music Position")


def test_music_text_over_40_bytes_ends_with_dots() -> None:
    shown = it.music_text(b"a" * 50)
    assert len(shown) == 40 and shown.endswith("...")
    assert it.music_text(b"Song") == "Song"


def test_weather_current_and_forecast_version_0() -> None:
    current = struct.pack("<BBqhhh", 0, 0, 1_780_000_000, -250, -500, 100)
    weather = it.decode_weather(current + b"Oslo".ljust(32, b"\x00") + b"\x07")
    assert weather == it.CurrentWeather(1_780_000_000, -250, -500, 100, "Oslo", "snow")
    days = b"".join(struct.pack("<hhB", 100 * d, 200 * d, d) for d in range(5))
    forecast = it.decode_weather(struct.pack("<BBqB", 1, 0, 1_780_000_000, 2) + days)
    assert isinstance(forecast, it.Forecast)
    assert forecast.days == (it.ForecastDay(0, 0, "sun"), it.ForecastDay(100, 200, "few_clouds"))


def test_weather_of_another_version_is_ignored_and_a_short_one_refused() -> None:
    assert it.decode_weather(b"\x00\x01" + bytes(51)) is None
    with pytest.raises(LengthError):
        it.decode_weather(b"\x00\x00\x01")


def test_dfu_start_refused_and_file_system_answers_in_its_layouts() -> None:
    assert it.dfu_refusal(it.DFU_START) == b"\x10\x01\x03"
    read = struct.pack("<BBHII", 0x10, 0, 1, 8, 100) + b"/"
    assert it.fs_refusal(it.FsCommand.READ, read) == (
        b"\x11\xfe\x00\x00" + struct.pack("<I", 8) + bytes(8)
    )
    assert len(it.fs_refusal(it.FsCommand.WRITE, bytes(20))) == 20
    assert it.fs_refusal(it.FsCommand.WRITE, bytes(20))[1] == 0xE4  # LFS_ERR_NOSPC
    assert it.fs_refusal(it.FsCommand.DELETE, b"\x30") == b"\x31\xfe"
    assert len(it.fs_refusal(it.FsCommand.LISTDIR, b"\x50")) == 28
    assert len(it.fs_refusal(it.FsCommand.MKDIR, b"\x40")) == 16


def test_advertising_carries_the_services_and_the_scan_response_the_name() -> None:
    data, response = scan_response_advertising("InfiniTime", it.ADVERTISED_SERVICE_UUIDS)
    dfu = bytes(reversed(bytes.fromhex("000015301212efde1523785feabcd123")))
    assert data == b"\x02\x01\x06" + b"\x03\x03\x0d\x18" + b"\x11\x07" + dfu + b"\x02\x0a\x00"
    assert response == b"\x0b\x09InfiniTime"


def test_no_characteristic_needs_encryption() -> None:
    specs = [c for s in it.PROFILE for c in s.characteristics]
    assert {c.security for c in specs} == {Security.OPEN}
    assert len({c.uuid for c in specs}) == len(specs)
