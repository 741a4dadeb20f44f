"""``WatchClient.check_profile``: what a sync needs, named before anything is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pytest
from bleak import BleakClient

from phoneagent.sync.watch_client import SYNC_CHARACTERISTICS, WatchClient, WatchProtocolError
from protocol import uuids

ADDRESS = "C4:11:22:33:44:55"


@dataclass
class Characteristic:
    uuid: str


@dataclass
class Service:
    characteristics: list[Characteristic]


@dataclass
class Client:
    """What ``check_profile`` reads of a connected bleak client."""

    offered: list[str]
    address: str = ADDRESS
    services: list[Service] = field(init=False)

    def __post_init__(self) -> None:
        self.services = [Service([Characteristic(u) for u in self.offered])]


def watch(*offered: str) -> WatchClient:
    return WatchClient(cast(BleakClient, Client(list(offered))))


def test_a_watch_with_every_sync_characteristic_passes_in_any_case() -> None:
    watch(*(u.upper() for u in SYNC_CHARACTERISTICS)).check_profile(bluez_adapter="hci0")


def test_the_user_profile_is_not_required() -> None:
    assert uuids.USER_PROFILE not in SYNC_CHARACTERISTICS  # written only when there is one
    watch(*SYNC_CHARACTERISTICS).check_profile()


def test_every_missing_one_is_named_with_bluez_advice_on_bluez() -> None:
    present = [
        u for u in SYNC_CHARACTERISTICS if u not in (uuids.HISTORY_STATUS, uuids.CURRENT_TIME)
    ]
    with pytest.raises(WatchProtocolError) as raised:
        watch(*present).check_profile(bluez_adapter="hci1")
    message = str(raised.value)
    assert message.startswith(f"{ADDRESS} does not offer History Status, Current Time:"), message
    assert "BlueZ on hci1 still holds an older copy" in message
    assert f"remove {ADDRESS}" in message and f"phoneagent pair {ADDRESS}" in message


def test_without_bluez_no_bluez_advice() -> None:
    with pytest.raises(WatchProtocolError) as raised:
        watch().check_profile()
    assert "bluetoothctl" not in str(raised.value) and "BlueZ" not in str(raised.value)
