"""The GATT profile as data: both the watch (server) and the agent (client) build from it.

The watch's peripheral adapters publish exactly these services and enforce ``security``
on every access; the agent looks characteristics up here instead of repeating UUIDs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol import uuids


class Security(enum.IntEnum):
    """Link security an access needs. Ordered: a higher level satisfies a lower one."""

    OPEN = 0
    ENCRYPTED = 1
    # Encrypted with a key from an MITM-protected pairing (passkey or numeric comparison).
    AUTHENTICATED = 2


class Property(enum.Flag):
    READ = enum.auto()
    WRITE = enum.auto()
    WRITE_WITHOUT_RESPONSE = enum.auto()
    NOTIFY = enum.auto()
    INDICATE = enum.auto()


@dataclass(frozen=True)
class CharacteristicSpec:
    uuid: str
    name: str
    properties: Property
    security: Security


@dataclass(frozen=True)
class ServiceSpec:
    uuid: str
    name: str
    characteristics: tuple[CharacteristicSpec, ...]
    # Listed in the watch's advertising data: 16-bit SIG services only, since the 31-byte
    # payload also carries flags, appearance and name (our watch sends no scan response,
    # so that a passive scan sees it all; InfiniTime's table differs: protocol.infinitime).
    advertised: bool = False


R, W, N, IND = Property.READ, Property.WRITE, Property.NOTIFY, Property.INDICATE
OPEN, AUTH = Security.OPEN, Security.AUTHENTICATED


def _chars(*rows: tuple[str, str, Property, Security]) -> tuple[CharacteristicSpec, ...]:
    return tuple(CharacteristicSpec(u, n, p, s) for u, n, p, s in rows)


PROFILE: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        uuids.DEVICE_INFORMATION_SERVICE,
        "Device Information",
        _chars(
            (uuids.MANUFACTURER_NAME, "Manufacturer Name String", R, OPEN),
            (uuids.MODEL_NUMBER, "Model Number String", R, OPEN),
            (uuids.SERIAL_NUMBER, "Serial Number String", R, OPEN),
            (uuids.HARDWARE_REVISION, "Hardware Revision String", R, OPEN),
            (uuids.FIRMWARE_REVISION, "Firmware Revision String", R, OPEN),
            (uuids.SOFTWARE_REVISION, "Software Revision String", R, OPEN),
            (uuids.PNP_ID, "PnP ID", R, OPEN),
        ),
    ),
    ServiceSpec(
        uuids.BATTERY_SERVICE,
        "Battery",
        _chars((uuids.BATTERY_LEVEL, "Battery Level", R | N, OPEN)),
    ),
    ServiceSpec(
        uuids.HEART_RATE_SERVICE,
        "Heart Rate",
        _chars(
            (uuids.HEART_RATE_MEASUREMENT, "Heart Rate Measurement", N, AUTH),
            (uuids.BODY_SENSOR_LOCATION, "Body Sensor Location", R, AUTH),
            (uuids.HEART_RATE_CONTROL_POINT, "Heart Rate Control Point", W, AUTH),
        ),
        advertised=True,
    ),
    ServiceSpec(
        uuids.PULSE_OXIMETER_SERVICE,
        "Pulse Oximeter",
        _chars(
            (uuids.PLX_FEATURES, "PLX Features", R, AUTH),
            (uuids.PLX_CONTINUOUS_MEASUREMENT, "PLX Continuous Measurement", N, AUTH),
            (uuids.PLX_SPOT_CHECK_MEASUREMENT, "PLX Spot-check Measurement", IND, AUTH),
        ),
        advertised=True,
    ),
    ServiceSpec(
        uuids.HEALTH_THERMOMETER_SERVICE,
        "Health Thermometer",
        _chars(
            (uuids.TEMPERATURE_MEASUREMENT, "Temperature Measurement", IND, AUTH),
            (uuids.TEMPERATURE_TYPE, "Temperature Type", R, AUTH),
            (uuids.INTERMEDIATE_TEMPERATURE, "Intermediate Temperature", N, AUTH),
        ),
        advertised=True,
    ),
    ServiceSpec(
        uuids.CURRENT_TIME_SERVICE,
        "Current Time",
        _chars(
            (uuids.CURRENT_TIME, "Current Time", R | W | N, AUTH),
            (uuids.LOCAL_TIME_INFORMATION, "Local Time Information", R | W, AUTH),
        ),
    ),
    ServiceSpec(
        uuids.ACTIVITY_SERVICE,
        "Activity",
        _chars((uuids.ACTIVITY_SUMMARY, "Activity Summary", R | N, AUTH)),
    ),
    ServiceSpec(
        uuids.HISTORY_SERVICE,
        "History Sync",
        _chars(
            (uuids.HISTORY_CONTROL_POINT, "History Control Point", W | IND, AUTH),
            (uuids.HISTORY_RECORDS, "History Records", N, AUTH),
            (uuids.HISTORY_STATUS, "History Status", R | N, AUTH),
        ),
    ),
    ServiceSpec(
        uuids.ALERTS_SERVICE,
        "Alerts",
        _chars(
            (uuids.ALERT_NOTIFICATION, "Alert Notification", W, AUTH),
            (uuids.ALERT_REMOVAL, "Alert Removal", W, AUTH),
            (uuids.CALL_STATE, "Call State", W, AUTH),
            (uuids.CALL_ACTION, "Call Action", N, AUTH),
        ),
    ),
    ServiceSpec(
        uuids.MUSIC_SERVICE,
        "Music",
        _chars(
            (uuids.MUSIC_STATE, "Music State", W, AUTH),
            (uuids.MUSIC_EVENT, "Music Event", N, AUTH),
        ),
    ),
    ServiceSpec(
        uuids.SETTINGS_SERVICE,
        "Settings",
        _chars(
            (uuids.USER_PROFILE, "User Profile", R | W, AUTH),
            (uuids.METRIC_SETTINGS, "Metric Settings", R | W, AUTH),
            (uuids.SETTINGS_CONTROL, "Settings Control", W, AUTH),
        ),
    ),
)

CHARACTERISTICS: dict[str, CharacteristicSpec] = {
    c.uuid: c for s in PROFILE for c in s.characteristics
}
SERVICE_OF: dict[str, ServiceSpec] = {c.uuid: s for s in PROFILE for c in s.characteristics}
ADVERTISED_SERVICE_UUIDS: tuple[str, ...] = tuple(s.uuid for s in PROFILE if s.advertised)


def characteristic(uuid: str) -> CharacteristicSpec:
    """Spec of a characteristic by UUID (any case); KeyError names the UUID if unknown."""
    return CHARACTERISTICS[uuid.lower()]
