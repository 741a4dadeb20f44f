"""The watch app over loopback, seen by independent Bumble centrals.

Helpers here (a paired phone, a notification inbox) are shared by the other
test_watch_app_*.py modules.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from bumble.att import ATT_Error
from bumble.device import Peer as BumblePeer
from bumble.gatt_client import CharacteristicProxy
from bumble.link import LocalLink
from bumble.profiles.battery_service import BatteryServiceProxy
from bumble.profiles.heart_rate_service import HeartRateService, HeartRateServiceProxy
from rich.console import Console

from protocol import uuids
from protocol.alerts import CallState, CallStatus
from protocol.battery import BatteryLevel
from protocol.device_info import PnpId
from protocol.heart_rate import (
    CONTROL_POINT_NOT_SUPPORTED,
    HeartRateControlPoint,
    HeartRateMeasurement,
)
from protocol.ieee11073 import to_float
from protocol.pulse_oximeter import MeasurementStatus, PlxContinuousMeasurement
from tests.integration.test_peripheral_bumble import (
    CENTRAL_ADDRESS,
    WAIT,
    Central,
    Comparison,
    PasskeyEntry,
    characteristic,
    disconnected,
)
from watchsim.console import log_plainly, render
from watchsim.control import request
from watchsim.controlops import OffWrist, OutOfRange, Passkey, Reboot, Status
from watchsim.peripheral.port import PairingMode
from watchsim.testing import LoopbackWatch, start_loopback_watch


class Inbox:
    """Values notified or indicated on one characteristic, in order."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, value: bytes) -> None:
        self.values.put_nowait(bytes(value))

    async def get(self, what: str = "a value") -> bytes:
        try:
            return await asyncio.wait_for(self.values.get(), WAIT)
        except TimeoutError:
            raise AssertionError(f"no {what} within {WAIT}s") from None


async def paired_phone(
    link: LocalLink, watch: LoopbackWatch, address: str = CENTRAL_ADDRESS
) -> BumblePeer:
    """A central that connected and paired, typing the passkey the watch showed."""

    async def passkey() -> int:
        return await asyncio.wait_for(watch.passkeys.get(), WAIT)

    peer = await Central(link, address, PasskeyEntry(passkey)).connect(watch.address)
    await asyncio.wait_for(peer.connection.pair(), WAIT)
    return peer


async def subscribe(peer: BumblePeer, uuid: str) -> Inbox:
    inbox = Inbox()
    await asyncio.wait_for(peer.subscribe(characteristic(peer, uuid), inbox), WAIT)
    return inbox


async def write(peer: BumblePeer, uuid: str, value: bytes) -> None:
    await asyncio.wait_for(
        peer.write_value(characteristic(peer, uuid), value, with_response=True), WAIT
    )


async def read(peer: BumblePeer, uuid: str) -> bytes:
    return bytes(await asyncio.wait_for(peer.read_value(characteristic(peer, uuid)), WAIT))


async def test_bumble_heart_rate_and_battery_clients_read_the_watch(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    peer = await paired_phone(link, watch)
    heart = peer.create_service_proxy(HeartRateServiceProxy)
    battery = peer.create_service_proxy(BatteryServiceProxy)
    assert heart is not None and battery is not None
    assert heart.body_sensor_location is not None
    location = await asyncio.wait_for(heart.body_sensor_location.read_value(), WAIT)
    assert location == HeartRateService.BodySensorLocation.WRIST

    level = await asyncio.wait_for(battery.battery_level.read_value(), WAIT)
    assert level == watch.app.model.state().battery_percent
    assert 0 < level <= 100

    measurements: asyncio.Queue[Any] = asyncio.Queue()
    proxy: CharacteristicProxy[Any] = heart.heart_rate_measurement
    await asyncio.wait_for(proxy.subscribe(measurements.put_nowait), WAIT)
    measurement = await asyncio.wait_for(measurements.get(), WAIT)
    assert isinstance(measurement, HeartRateService.HeartRateMeasurement)
    assert 35 <= measurement.heart_rate <= 220
    assert measurement.sensor_contact_detected is True
    assert measurement.energy_expended is not None
    # Bumble reports RR intervals in seconds; they agree with the heart rate within 30 %.
    assert measurement.rr_intervals
    mean_rr = sum(measurement.rr_intervals) / len(measurement.rr_intervals)
    assert abs(60.0 / mean_rr - measurement.heart_rate) < 0.3 * measurement.heart_rate


async def test_heart_rate_control_point_takes_a_reset_and_refuses_other_values(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    peer = await paired_phone(link, watch)
    reset = HeartRateControlPoint.RESET_ENERGY_EXPENDED.encode()
    await write(peer, uuids.HEART_RATE_CONTROL_POINT, reset)
    with pytest.raises(ATT_Error) as refused:
        await write(peer, uuids.HEART_RATE_CONTROL_POINT, b"\x02")
    assert refused.value.error_code == CONTROL_POINT_NOT_SUPPORTED


async def test_device_information_is_open_and_oximetry_is_demonstration_data(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    stranger = await Central(link, "F2:22:33:44:55:66").connect(watch.address)
    pnp = PnpId.decode(await read(stranger, uuids.PNP_ID))
    assert pnp.vendor_id == 0x1209
    assert (await read(stranger, uuids.MODEL_NUMBER)).decode() == "WatchSim 1"
    assert BatteryLevel.decode(await read(stranger, uuids.BATTERY_LEVEL)).percent > 0
    await disconnected(stranger.connection)  # the watch advertises again once free

    peer = await paired_phone(link, watch)
    await write(peer, uuids.METRIC_SETTINGS, bytes.fromhex("01010100 02013c00 03010100 04013c00"))
    inbox = await subscribe(peer, uuids.PLX_CONTINUOUS_MEASUREMENT)
    plx = PlxContinuousMeasurement.decode(await inbox.get("PLX measurement"))
    assert plx.status is not None and MeasurementStatus.DEMONSTRATION_DATA in plx.status
    assert 85 <= to_float(plx.normal.spo2) <= 100


async def test_ctl_events_take_the_watch_off_wrist_and_out_of_range(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    state_dir = watch.app.config.state_dir
    peer = await paired_phone(link, watch)
    heart = await subscribe(peer, uuids.HEART_RATE_MEASUREMENT)
    assert HeartRateMeasurement.decode(await heart.get()).sensor_contact is True

    await request(state_dir, OffWrist())
    while (measurement := HeartRateMeasurement.decode(await heart.get())).sensor_contact:
        pass
    assert measurement.bpm == 0
    assert (await request(state_dir, Status()))["on_wrist"] is False

    gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    peer.connection.once("disconnection", gone.set_result)
    await request(state_dir, OutOfRange(1))
    await asyncio.wait_for(gone, WAIT)
    assert (await request(state_dir, Status()))["radio"] == "off"
    # One simulated minute later (one real second at speed 60) it advertises again.
    peer = await Central(link, "F4:22:33:44:55:66").connect(watch.address)
    assert (await request(state_dir, Status()))["radio"] == "connected"


async def test_ctl_reboot_keeps_history_and_numbering(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    before = watch.history.next_seq
    first = watch.history.read(1, 10).samples
    assert first
    await request(watch.app.config.state_dir, Reboot())
    assert watch.history.read(1, 10).samples == first
    assert watch.history.next_seq >= before
    assert "rebooted" in " ".join(watch.app.events)


async def test_console_shows_the_call_and_logs_the_passkey_on_its_own_line(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    log = io.StringIO()
    log_plainly(watch.app, log)
    peer = await paired_phone(link, watch)
    passkeys = [line for line in log.getvalue().splitlines() if "PASSKEY" in line]
    assert len(passkeys) == 1
    assert passkeys[0].endswith(f"PASSKEY {watch.app.passkey:06d}")

    await write(peer, uuids.CALL_STATE, CallState(7, CallStatus.INCOMING, "Mum").encode())
    screen = io.StringIO()
    Console(width=120, file=screen).print(render(watch.app.status()))
    assert "incoming: Mum (#7)" in screen.getvalue()
    assert "call 7 incoming: Mum" in log.getvalue()


async def test_numeric_comparison_shows_the_same_number_on_the_watch(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(link, tmp_path / "watch", pairing=PairingMode.NUMERIC)
    try:
        phone = Comparison()
        peer = await Central(link, CENTRAL_ADDRESS, phone).connect(watch.address)
        await asyncio.wait_for(peer.connection.pair(), WAIT)
        assert phone.numbers == [watch.passkeys.get_nowait()]
        assert (await read(peer, uuids.BODY_SENSOR_LOCATION)) == b"\x02"
    finally:
        await watch.stop()


async def test_ctl_status_shows_the_mtu_the_phone_exchanged_after_connecting(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    """Issue 16, item 10: the MTU is exchanged after the connection; status shows it now."""
    peer = await Central(link, "F2:22:33:44:55:77").connect(watch.address)
    mtu = await asyncio.wait_for(peer.request_mtu(247), WAIT)
    assert mtu > 23
    status = await request(watch.app.config.state_dir, Status())
    assert [p["mtu"] for p in status["peers"]] == [mtu]


async def test_ctl_passkey_without_wait_s_waits_for_the_pairing_to_show_one(
    link: LocalLink, watch: LoopbackWatch
) -> None:
    """Issue 16, item 10: ``ctl passkey`` asked before pairing starts answers once the
    passkey shows (default WAIT_S 10 s), instead of failing at once."""
    asked = asyncio.create_task(request(watch.app.config.state_dir, Passkey()))
    await paired_phone(link, watch)
    answer = await asyncio.wait_for(asked, WAIT)
    assert answer["passkey"].isdigit() and len(answer["passkey"]) == 6
