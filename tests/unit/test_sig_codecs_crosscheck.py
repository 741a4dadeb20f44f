"""Cross-check against an independent implementation: Bumble's own profile code.

Each side must decode the other's bytes to the same values. Bumble's services are built
for real and their characteristic adapters do the (de)serialising, exactly as they
would on a Bumble peripheral or client.
"""

from __future__ import annotations

from typing import Any

import pytest
from bumble import gatt_adapters
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given
from hypothesis import strategies as st

from protocol.battery import BatteryLevel
from protocol.device_info import DeviceInfoString
from protocol.heart_rate import BodySensorLocation, HeartRateControlPoint, HeartRateMeasurement

BumbleMeasurement = HeartRateService.HeartRateMeasurement
u16 = st.integers(0, 0xFFFF)


def _heart_rate_service(location: BodySensorLocation = BodySensorLocation.WRIST) -> Any:
    return HeartRateService(
        read_heart_rate_measurement=lambda _connection: BumbleMeasurement(0),
        body_sensor_location=HeartRateService.BodySensorLocation(location.value),
        reset_energy_expended=lambda _connection: None,
    )


measurements = st.builds(
    HeartRateMeasurement,
    u16,
    st.none() | st.booleans(),
    st.none() | u16,
    st.lists(u16, max_size=9).map(tuple),
)


@given(ours=measurements)
def test_bumble_decodes_our_heart_rate(ours: HeartRateMeasurement) -> None:
    adapter = _heart_rate_service().heart_rate_measurement_characteristic
    theirs = adapter.decode_value(ours.encode())
    assert theirs.heart_rate == ours.bpm
    assert theirs.sensor_contact_detected == ours.sensor_contact
    assert theirs.energy_expended == ours.energy_expended_kj
    expected_rr = ours.rr_intervals_s if ours.rr_intervals else None
    assert theirs.rr_intervals == expected_rr


@given(
    bpm=u16,
    contact=st.none() | st.booleans(),
    energy=st.none() | u16,
    rr=st.none() | st.lists(u16, min_size=1, max_size=9),
)
def test_we_decode_bumbles_heart_rate(
    bpm: int, contact: bool | None, energy: int | None, rr: list[int] | None
) -> None:
    seconds = None if rr is None else [units / 1024 for units in rr]
    theirs = BumbleMeasurement(bpm, contact, energy, seconds)
    wire = _heart_rate_service().heart_rate_measurement_characteristic.encode_value(theirs)
    ours = HeartRateMeasurement.decode(wire)
    assert ours == HeartRateMeasurement(bpm, contact, energy, tuple(rr or ()))
    # Same choices of flags and value width: byte-identical.
    assert ours.encode() == wire


def test_the_documented_vector_agrees_with_bumble() -> None:
    wire = bytes.fromhex("0648")
    assert HeartRateMeasurement(72, sensor_contact=True).encode() == wire
    assert bytes(BumbleMeasurement(72, sensor_contact_detected=True)) == wire


@pytest.mark.parametrize("location", list(BodySensorLocation))
def test_body_sensor_location(location: BodySensorLocation) -> None:
    adapter = _heart_rate_service(location).body_sensor_location_characteristic
    assert adapter.decode_value(location.encode()) == location.value
    assert BodySensorLocation.decode(adapter.encode_value(location.value)) is location


def test_control_point() -> None:
    adapter = _heart_rate_service().heart_rate_control_point_characteristic
    command = HeartRateControlPoint.RESET_ENERGY_EXPENDED
    assert adapter.decode_value(command.encode()) == HeartRateService.RESET_ENERGY_EXPENDED
    assert (
        HeartRateControlPoint.decode(adapter.encode_value(HeartRateService.RESET_ENERGY_EXPENDED))
        is command
    )


@given(percent=st.integers(0, 100))
def test_battery_level(percent: int) -> None:
    service = BatteryService(read_battery_level=lambda _connection: percent)
    characteristic = service.battery_level_characteristic
    assert characteristic.decode_value(BatteryLevel(percent).encode()) == percent
    assert BatteryLevel.decode(characteristic.encode_value(percent)) == BatteryLevel(percent)


@given(text=st.text(st.characters(blacklist_categories=["Cs"]), max_size=64))
def test_device_information_strings(text: str) -> None:
    service = DeviceInformationService(manufacturer_name=text, model_number=text)
    for characteristic in service.characteristics:
        assert isinstance(characteristic.value, bytes)
        assert DeviceInfoString.decode(characteristic.value) == DeviceInfoString(text)
        adapter = gatt_adapters.UTF8CharacteristicAdapter(characteristic)
        assert adapter.decode_value(DeviceInfoString(text).encode()) == text
