"""Standard (SIG) codecs: known-answer vectors, error reporting, round trips, docs coverage."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import uuids
from protocol.battery import BatteryLevel
from protocol.current_time import (
    AdjustReason,
    CurrentTime,
    DateTime,
    DayOfWeek,
    DstOffset,
    LocalTimeInformation,
)
from protocol.device_info import (
    MAX_STRING_BYTES,
    STRING_CHARACTERISTICS,
    DeviceInfoString,
    PnpId,
    VendorIdSource,
)
from protocol.errors import (
    LengthError,
    ProtocolError,
    RangeError,
    ReservedValueError,
    TextError,
)
from protocol.heart_rate import (
    BodySensorLocation,
    HeartRateControlPoint,
    HeartRateMeasurement,
    rr_units,
)
from protocol.ieee11073 import FLOAT, SFLOAT, Format, Special, Value
from protocol.profile import PROFILE
from protocol.pulse_oximeter import (
    DeviceSensorStatus,
    MeasurementStatus,
    PlxContinuousMeasurement,
    PlxFeature,
    PlxFeatures,
    PlxSpotCheckMeasurement,
    SpO2PR,
)
from protocol.thermometer import IntermediateTemperature, TemperatureMeasurement, TemperatureType

F = TypeVar("F", bound=enum.IntFlag)
DOCS = Path(__file__).resolve().parents[2] / "docs"

# --- Known answers (hex as the bytes appear on the air) -------------------------------

KNOWN_ANSWERS: list[tuple[Any, str]] = [
    (HeartRateMeasurement(72, sensor_contact=True), "0648"),
    (HeartRateMeasurement(72, sensor_contact=False), "0448"),
    (HeartRateMeasurement(300), "012c01"),
    (
        HeartRateMeasurement(60, energy_expended_kj=500, rr_intervals=(1024, 512)),
        "183cf401000400 02",
    ),
    (BodySensorLocation.WRIST, "02"),
    (HeartRateControlPoint.RESET_ENERGY_EXPENDED, "01"),
    (BatteryLevel(85), "55"),
    (BatteryLevel(100), "64"),
    (DeviceInfoString("Acme Wearables"), "41636d65205765617261626c6573"),
    (DeviceInfoString("Zürich"), "5ac3bc72696368"),
    (PnpId(VendorIdSource.USB_IMPLEMENTERS_FORUM, 0x1D6B, 0x0246, 0x0110), "026b1d46021001"),
    (PlxContinuousMeasurement(SpO2PR(Decimal(97), Decimal(72))), "0061004800"),
    (
        PlxContinuousMeasurement(
            SpO2PR(Decimal(97), Decimal(72)), status=MeasurementStatus.DEMONSTRATION_DATA
        ),
        "04610048000004",
    ),
    (
        PlxContinuousMeasurement(
            SpO2PR(Decimal("97.5"), Decimal(72)),
            fast=SpO2PR(Decimal(96), Decimal(74)),
            device_status=DeviceSensorStatus.SENSOR_DISPLACED | DeviceSensorStatus.POOR_SIGNAL,
            pulse_amplitude_index=Decimal("1.5"),
        ),
        "19 cff3 4800 6000 4a00 102000 0ff0",
    ),
    (
        PlxSpotCheckMeasurement(
            SpO2PR(Decimal(98), Decimal(61)), timestamp=DateTime(2026, 11, 25, 10, 45, 0)
        ),
        "01 6200 3d00 ea070b190a2d00",
    ),
    (
        PlxSpotCheckMeasurement(
            SpO2PR(Special.NAN, Special.NRES),
            status=MeasurementStatus.MEASUREMENT_UNAVAILABLE,
            device_clock_not_set=True,
        ),
        "12 ff07 0008 0020",
    ),
    (
        PlxFeatures(
            PlxFeature.SPOT_CHECK_TIMESTAMP,
            measurement_status_support=MeasurementStatus.DEMONSTRATION_DATA
            | MeasurementStatus.MEASUREMENT_ONGOING,
            device_status_support=DeviceSensorStatus.SENSOR_DISPLACED,
        ),
        "0b00 2004 002000",
    ),
    (PlxFeatures(), "0000"),
    (TemperatureMeasurement(Decimal("33.45")), "00 110d00fe"),
    (
        IntermediateTemperature(
            Decimal("98.6"),
            fahrenheit=True,
            timestamp=DateTime(2026, 1, 2, 3, 4, 5),
            temperature_type=TemperatureType.FINGER,
        ),
        "07 da0300ff ea0701020304 05 04",
    ),
    (TemperatureMeasurement(Special.POSITIVE_INFINITY), "00 feff7f00"),
    (TemperatureType.TYMPANUM, "09"),
    (DateTime(), "00000000000000"),
    (
        CurrentTime(
            DateTime(2026, 11, 25, 10, 45, 30),
            DayOfWeek.WEDNESDAY,
            fractions256=128,
            adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE,
        ),
        "ea070b190a2d1e 03 80 02",
    ),
    (LocalTimeInformation(4, DstOffset.STANDARD_TIME), "0400"),
    (LocalTimeInformation(22, DstOffset.STANDARD_TIME), "1600"),  # UTC+5:30
    (LocalTimeInformation(-20, DstOffset.DAYLIGHT_TIME), "ec04"),
    (LocalTimeInformation(None), "80ff"),
]


@pytest.mark.parametrize(("value", "wire"), KNOWN_ANSWERS, ids=lambda v: type(v).__name__)
def test_known_answer(value: Any, wire: str) -> None:
    data = bytes.fromhex(wire.replace(" ", ""))
    assert value.encode() == data
    assert type(value).decode(data) == value


# --- Malformed input: our errors only, naming the characteristic and the fault ---------

BAD_INPUT: list[tuple[Callable[[bytes], object], str, type[ProtocolError], str]] = [
    (HeartRateMeasurement.decode, "", LengthError, "Heart Rate Measurement: flags"),
    (HeartRateMeasurement.decode, "01 48", LengthError, "heart rate needs 2"),
    (HeartRateMeasurement.decode, "20 48", ReservedValueError, "flags 0x20 sets reserved"),
    (HeartRateMeasurement.decode, "10 48 00", LengthError, "RR interval"),
    (HeartRateMeasurement.decode, "00 48 00", LengthError, "trailing"),
    (HeartRateMeasurement.decode, "08 48 01", LengthError, "energy expended"),
    (BodySensorLocation.decode, "07", ReservedValueError, "Body Sensor Location: location 7"),
    (BodySensorLocation.decode, "0101", LengthError, "Body Sensor Location"),
    (HeartRateControlPoint.decode, "00", ReservedValueError, "Heart Rate Control Point"),
    (HeartRateControlPoint.decode, "02", ReservedValueError, "command 2 is reserved"),
    (BatteryLevel.decode, "65", RangeError, "Battery Level: level 101 outside 0..100"),
    (BatteryLevel.decode, "", LengthError, "Battery Level"),
    (BatteryLevel.decode, "6400", LengthError, "Battery Level"),
    (DeviceInfoString.decode, "41ff", TextError, "not valid UTF-8 at byte 1"),
    (PnpId.decode, "00 6b1d 4602 1001", ReservedValueError, "PnP ID: vendor id source 0"),
    (PnpId.decode, "02 6b1d 4602 10", LengthError, "PnP ID: product version"),
    (PlxFeatures.decode, "0001", ReservedValueError, "PLX Features: supported features"),
    (PlxFeatures.decode, "0100", LengthError, "measurement status support"),
    (PlxFeatures.decode, "0200 0000", LengthError, "device status support"),
    (PlxFeatures.decode, "0200 000001", ReservedValueError, "device status support"),
    (PlxContinuousMeasurement.decode, "00 6100 48", LengthError, "normal pulse rate"),
    (PlxContinuousMeasurement.decode, "20 6100 4800", ReservedValueError, "flags"),
    (PlxContinuousMeasurement.decode, "04 6100 4800 0100", ReservedValueError, "status"),
    (PlxContinuousMeasurement.decode, "00 0108 4800", ReservedValueError, "normal SpO2"),
    (PlxSpotCheckMeasurement.decode, "01 6100 4800 ea07", LengthError, "Spot-check"),
    (PlxSpotCheckMeasurement.decode, "01 6100 4800 ea070d01000000", RangeError, "month 13"),
    (TemperatureMeasurement.decode, "08 110d00fe", ReservedValueError, "Temperature Measurement"),
    (TemperatureMeasurement.decode, "04 110d00fe 00", ReservedValueError, "temperature type 0"),
    (TemperatureMeasurement.decode, "00 110d00", LengthError, "temperature needs 4"),
    (IntermediateTemperature.decode, "02 110d00fe", LengthError, "Intermediate Temperature"),
    (TemperatureType.decode, "0a", ReservedValueError, "Temperature Type: type 10"),
    (DateTime.decode, "01000101000000", RangeError, "year 1 outside"),
    (CurrentTime.decode, "ea070b190a2d1e030002 00", LengthError, "Current Time"),
    (CurrentTime.decode, "ea070b190a2d1e080000", ReservedValueError, "day of week 8"),
    (CurrentTime.decode, "ea070b190a2d1e030010", ReservedValueError, "adjust reason"),
    (CurrentTime.decode, "ea070b19183b00030000", RangeError, "hours 24"),
    (LocalTimeInformation.decode, "3900", RangeError, "time zone 57"),
    (LocalTimeInformation.decode, "0001", ReservedValueError, "DST offset 1"),
]


@pytest.mark.parametrize(("decode", "wire", "error", "message"), BAD_INPUT)
def test_malformed_input(
    decode: Callable[[bytes], object], wire: str, error: type[ProtocolError], message: str
) -> None:
    with pytest.raises(error, match=message):
        decode(bytes.fromhex(wire.replace(" ", "")))


BAD_VALUES: list[tuple[Any, type[ProtocolError], str]] = [
    (HeartRateMeasurement(70000), RangeError, "Heart Rate Measurement: heart rate 70000"),
    (HeartRateMeasurement(-1), RangeError, "heart rate -1"),
    (HeartRateMeasurement(72, energy_expended_kj=65536), RangeError, "energy expended"),
    (HeartRateMeasurement(72, rr_intervals=(1, 70000)), RangeError, "RR interval 70000"),
    (BatteryLevel(101), RangeError, "Battery Level: level 101"),
    (DeviceInfoString("x" * (MAX_STRING_BYTES + 1)), TextError, "513 bytes"),
    (DeviceInfoString("\ud800"), TextError, "cannot be encoded"),
    (PnpId(VendorIdSource.BLUETOOTH_SIG, 0x10000, 0, 0), RangeError, "PnP ID: vendor id"),
    (PlxFeatures(PlxFeature.MEASUREMENT_STATUS_SUPPORT), RangeError, "presence bits"),
    (PlxFeatures(PlxFeature(0x100)), ReservedValueError, "supported features"),
    (
        PlxContinuousMeasurement(SpO2PR(Decimal(97), Decimal(72)), status=MeasurementStatus(1)),
        ReservedValueError,
        "PLX Continuous Measurement: measurement status",
    ),
    (
        PlxContinuousMeasurement(SpO2PR(Decimal(97), Decimal("2046E7"))),
        RangeError,
        "normal pulse rate 2.046E[+]10 is too large for SFLOAT",
    ),
    (
        PlxSpotCheckMeasurement(SpO2PR(Decimal(97), Decimal(72)), timestamp=DateTime(month=13)),
        RangeError,
        "PLX Spot-check Measurement: month 13",
    ),
    (TemperatureMeasurement(Decimal("1E200")), RangeError, "Temperature Measurement: temperature"),
    (CurrentTime(DateTime(2026, 1, 1), fractions256=256), RangeError, "fractions256 256"),
    (
        CurrentTime(DateTime(2026, 1, 1), adjust_reason=AdjustReason(0x10)),
        ReservedValueError,
        "adjust reason",
    ),
    (LocalTimeInformation(-49), RangeError, "time zone -49"),
]


@pytest.mark.parametrize(("value", "error", "message"), BAD_VALUES)
def test_encoders_validate(value: Any, error: type[ProtocolError], message: str) -> None:
    with pytest.raises(error, match=message):
        value.encode()


def test_device_info_string_too_long_on_the_air() -> None:
    with pytest.raises(TextError, match="Model Number String: text is 513 bytes"):
        DeviceInfoString.decode(b"a" * 513, "Model Number String")


def test_sensor_contact_bit_without_support_means_unsupported() -> None:
    # Bit 1 alone: "not supported in the current connection".
    assert HeartRateMeasurement.decode(bytes.fromhex("0248")).sensor_contact is None


def test_rr_intervals_in_seconds() -> None:
    measurement = HeartRateMeasurement(60, rr_intervals=(rr_units(0.8), 1024))
    assert measurement.rr_intervals == (819, 1024)
    assert measurement.rr_intervals_s == (819 / 1024, 1.0)


def test_u16_heart_rate_is_accepted_for_small_values() -> None:
    assert HeartRateMeasurement.decode(bytes.fromhex("01 4800")) == HeartRateMeasurement(72)


def test_pnp_version_fields() -> None:
    assert PnpId(VendorIdSource.BLUETOOTH_SIG, 1, 2, 0x0213).version == (2, 1, 3)


# --- datetime helpers -------------------------------------------------------------------


def test_current_time_from_and_to_datetime() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    moment = datetime(2026, 7, 1, 14, 30, 5, 500000, tzinfo=berlin)
    current = CurrentTime.from_datetime(moment, AdjustReason.MANUAL_TIME_UPDATE)
    assert current == CurrentTime(
        DateTime(2026, 7, 1, 14, 30, 5), DayOfWeek.WEDNESDAY, 128, AdjustReason.MANUAL_TIME_UPDATE
    )
    local = LocalTimeInformation.from_datetime(moment)
    assert local == LocalTimeInformation(4, DstOffset.DAYLIGHT_TIME)
    assert local.tzinfo() == timezone(timedelta(hours=2))
    assert current.to_datetime(local.tzinfo()) == moment
    winter = LocalTimeInformation.from_datetime(datetime(2026, 1, 1, tzinfo=berlin))
    assert winter == LocalTimeInformation(4, DstOffset.STANDARD_TIME)


def test_local_time_from_fixed_offsets() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    assert LocalTimeInformation.from_datetime(datetime(2026, 1, 1, tzinfo=india)).time_zone == 22
    # A fixed-offset zone says nothing about DST.
    assert LocalTimeInformation.from_datetime(datetime(2026, 1, 1, tzinfo=UTC)) == (
        LocalTimeInformation(0, DstOffset.UNKNOWN)
    )
    with pytest.raises(RangeError, match="15 minutes"):
        LocalTimeInformation.from_datetime(
            datetime(2026, 1, 1, tzinfo=timezone(timedelta(minutes=10)))
        )
    with pytest.raises(RangeError, match="naive"):
        LocalTimeInformation.from_datetime(datetime(2026, 1, 1))
    assert LocalTimeInformation(None, DstOffset.STANDARD_TIME).tzinfo() is None
    assert LocalTimeInformation(4, DstOffset.UNKNOWN).tzinfo() is None


def test_date_time_to_datetime_refuses_unknown_and_impossible_dates() -> None:
    with pytest.raises(RangeError, match="unknown"):
        DateTime(2026, 0, 1).to_datetime()
    with pytest.raises(RangeError, match="not a date"):
        DateTime(2026, 2, 30).to_datetime()
    assert DateTime(2024, 2, 29, 23, 59, 59).to_datetime(UTC) == datetime(
        2024, 2, 29, 23, 59, 59, tzinfo=UTC
    )


# --- Round trips for every codec --------------------------------------------------------


def values(fmt: Format) -> st.SearchStrategy[Value]:
    finite = st.builds(
        lambda m, e: Decimal(m).scaleb(e),
        st.integers(-fmt.max_mantissa, fmt.max_mantissa),
        st.integers(fmt.min_exponent, fmt.max_exponent),
    )
    return st.one_of(st.sampled_from(Special), finite)


def flags_of(kind: type[F], mask: int) -> st.SearchStrategy[F]:
    return st.integers(0, mask).map(lambda raw: kind(raw & mask))


u16 = st.integers(0, 0xFFFF)
date_times = st.builds(
    DateTime,
    st.one_of(st.just(0), st.integers(1582, 9999)),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
statuses = flags_of(MeasurementStatus, 0xFFE0)
device_statuses = flags_of(DeviceSensorStatus, 0xFFFF)
pairs = st.builds(SpO2PR, values(SFLOAT), values(SFLOAT))
temperature_fields = (
    values(FLOAT),
    st.booleans(),
    st.none() | date_times,
    st.none() | st.sampled_from(TemperatureType),
)
utf8_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=128)

ROUND_TRIPS: dict[str, tuple[st.SearchStrategy[Any], Callable[[bytes], Any]]] = {
    "heart rate": (
        st.builds(
            HeartRateMeasurement,
            u16,
            st.none() | st.booleans(),
            st.none() | u16,
            st.lists(u16, max_size=9).map(tuple),
        ),
        HeartRateMeasurement.decode,
    ),
    "body sensor location": (st.sampled_from(BodySensorLocation), BodySensorLocation.decode),
    "control point": (st.sampled_from(HeartRateControlPoint), HeartRateControlPoint.decode),
    "battery": (st.builds(BatteryLevel, st.integers(0, 100)), BatteryLevel.decode),
    "string": (st.builds(DeviceInfoString, utf8_text), DeviceInfoString.decode),
    "pnp": (st.builds(PnpId, st.sampled_from(VendorIdSource), u16, u16, u16), PnpId.decode),
    "plx features": (
        st.builds(
            PlxFeatures,
            flags_of(PlxFeature, 0xFC),
            st.none() | statuses,
            st.none() | device_statuses,
        ),
        PlxFeatures.decode,
    ),
    "plx continuous": (
        st.builds(
            PlxContinuousMeasurement,
            pairs,
            st.none() | pairs,
            st.none() | pairs,
            st.none() | statuses,
            st.none() | device_statuses,
            st.none() | values(SFLOAT),
        ),
        PlxContinuousMeasurement.decode,
    ),
    "plx spot-check": (
        st.builds(
            PlxSpotCheckMeasurement,
            pairs,
            st.none() | date_times,
            st.none() | statuses,
            st.none() | device_statuses,
            st.none() | values(SFLOAT),
            st.booleans(),
        ),
        PlxSpotCheckMeasurement.decode,
    ),
    "temperature": (
        st.builds(TemperatureMeasurement, *temperature_fields),
        TemperatureMeasurement.decode,
    ),
    "intermediate": (
        st.builds(IntermediateTemperature, *temperature_fields),
        IntermediateTemperature.decode,
    ),
    "temperature type": (st.sampled_from(TemperatureType), TemperatureType.decode),
    "date time": (date_times, DateTime.decode),
    "current time": (
        st.builds(
            CurrentTime,
            date_times,
            st.sampled_from(DayOfWeek),
            st.integers(0, 255),
            flags_of(AdjustReason, 0x0F),
        ),
        CurrentTime.decode,
    ),
    "local time": (
        st.builds(
            LocalTimeInformation,
            st.none() | st.integers(-48, 56),
            st.sampled_from(DstOffset),
        ),
        LocalTimeInformation.decode,
    ),
}


@pytest.mark.parametrize("name", ROUND_TRIPS)
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    strategy, decode = ROUND_TRIPS[name]
    value = data.draw(strategy)
    wire = value.encode()
    assert decode(wire) == value
    assert decode(wire).encode() == wire


@given(text=utf8_text, name=st.sampled_from(sorted(STRING_CHARACTERISTICS.values())))
def test_named_string_round_trip(text: str, name: str) -> None:
    value = DeviceInfoString(text, name)
    assert DeviceInfoString.decode(value.encode(), name) == value


@given(moment=st.datetimes(min_value=datetime(1582, 1, 1)))
def test_current_time_datetime_round_trip(moment: datetime) -> None:
    current = CurrentTime.decode(CurrentTime.from_datetime(moment).encode())
    restored = current.to_datetime()
    assert restored.replace(microsecond=0) == moment.replace(microsecond=0)
    assert abs(restored.microsecond - moment.microsecond) < 1_000_000 / 256
    assert current.day_of_week == moment.isoweekday()


# --- docs/protocol.md covers the whole profile -----------------------------------------


def test_every_profile_uuid_is_documented() -> None:
    texts = [(DOCS / "protocol.md").read_text(encoding="utf-8").lower()]
    custom = DOCS / "protocol-custom.md"
    if custom.exists():
        texts.append(custom.read_text(encoding="utf-8").lower())
    everything = "\n".join(texts)
    missing = []
    for service in PROFILE:
        for uuid in (service.uuid, *(c.uuid for c in service.characteristics)):
            short = f"0x{uuid[4:8]}" if uuid.endswith(uuids.SIG_BASE_SUFFIX) else None
            if uuid not in everything and (short is None or short not in everything):
                missing.append(uuid)
    assert not missing, f"not in docs/protocol.md or docs/protocol-custom.md: {missing}"
