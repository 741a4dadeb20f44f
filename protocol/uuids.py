"""Every UUID of the profile.

SIG-assigned 16-bit UUIDs are expanded on the Bluetooth base UUID; our custom services
share one 128-bit base of our own in which bytes 2-3 carry a 16-bit alias.
"""

from __future__ import annotations

from typing import Final

SIG_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
CUSTOM_BASE_SUFFIX: Final = "-6b1c-4d2e-9a57-0c8e5b1d7e40"
CUSTOM_BASE_PREFIX: Final = "f3a2"


def sig_uuid(short: int) -> str:
    """128-bit form of a SIG 16-bit UUID, lower case (the form bleak reports)."""
    return f"0000{short:04x}{SIG_BASE_SUFFIX}"


def custom_uuid(alias: int) -> str:
    """128-bit form of one of our own 16-bit aliases."""
    return f"{CUSTOM_BASE_PREFIX}{alias:04x}{CUSTOM_BASE_SUFFIX}"


# Appearance advertised by the watch (GAP category "Watch", subcategory "Smartwatch").
APPEARANCE_SMARTWATCH: Final = 0x00C2

# --- Standard services -------------------------------------------------------------
DEVICE_INFORMATION_SERVICE: Final = sig_uuid(0x180A)
MANUFACTURER_NAME: Final = sig_uuid(0x2A29)
MODEL_NUMBER: Final = sig_uuid(0x2A24)
SERIAL_NUMBER: Final = sig_uuid(0x2A25)
HARDWARE_REVISION: Final = sig_uuid(0x2A27)
FIRMWARE_REVISION: Final = sig_uuid(0x2A26)
SOFTWARE_REVISION: Final = sig_uuid(0x2A28)
PNP_ID: Final = sig_uuid(0x2A50)

BATTERY_SERVICE: Final = sig_uuid(0x180F)
BATTERY_LEVEL: Final = sig_uuid(0x2A19)

HEART_RATE_SERVICE: Final = sig_uuid(0x180D)
HEART_RATE_MEASUREMENT: Final = sig_uuid(0x2A37)
BODY_SENSOR_LOCATION: Final = sig_uuid(0x2A38)
HEART_RATE_CONTROL_POINT: Final = sig_uuid(0x2A39)

PULSE_OXIMETER_SERVICE: Final = sig_uuid(0x1822)
PLX_SPOT_CHECK_MEASUREMENT: Final = sig_uuid(0x2A5E)
PLX_CONTINUOUS_MEASUREMENT: Final = sig_uuid(0x2A5F)
PLX_FEATURES: Final = sig_uuid(0x2A60)

HEALTH_THERMOMETER_SERVICE: Final = sig_uuid(0x1809)
TEMPERATURE_MEASUREMENT: Final = sig_uuid(0x2A1C)
TEMPERATURE_TYPE: Final = sig_uuid(0x2A1D)
INTERMEDIATE_TEMPERATURE: Final = sig_uuid(0x2A1E)

CURRENT_TIME_SERVICE: Final = sig_uuid(0x1805)
CURRENT_TIME: Final = sig_uuid(0x2A2B)
LOCAL_TIME_INFORMATION: Final = sig_uuid(0x2A0F)

# --- Custom services (alias 0xSSCC: service SS, characteristic CC) ------------------
ACTIVITY_SERVICE: Final = custom_uuid(0x0100)
ACTIVITY_SUMMARY: Final = custom_uuid(0x0101)

HISTORY_SERVICE: Final = custom_uuid(0x0200)
HISTORY_CONTROL_POINT: Final = custom_uuid(0x0201)
HISTORY_RECORDS: Final = custom_uuid(0x0202)
HISTORY_STATUS: Final = custom_uuid(0x0203)

ALERTS_SERVICE: Final = custom_uuid(0x0300)
ALERT_NOTIFICATION: Final = custom_uuid(0x0301)
ALERT_REMOVAL: Final = custom_uuid(0x0302)
CALL_STATE: Final = custom_uuid(0x0303)
CALL_ACTION: Final = custom_uuid(0x0304)

MUSIC_SERVICE: Final = custom_uuid(0x0400)
MUSIC_STATE: Final = custom_uuid(0x0401)
MUSIC_EVENT: Final = custom_uuid(0x0402)

SETTINGS_SERVICE: Final = custom_uuid(0x0500)
USER_PROFILE: Final = custom_uuid(0x0501)
METRIC_SETTINGS: Final = custom_uuid(0x0502)
SETTINGS_CONTROL: Final = custom_uuid(0x0503)
