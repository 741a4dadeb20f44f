"""Our GATT profile as typed calls over one connected ``BleakClient``.

The engine never touches UUIDs or bytes: it asks this wrapper to read device info, set
the clock, push settings and run history-control-point requests. Control-point answers
arrive as indications; each request waits for the response naming its opcode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, TypeVar

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError

from phoneagent.waiting import done_or_set
from protocol import uuids
from protocol.address import Address
from protocol.alerts import AlertNotification, AlertRemoval, CallAction, CallState
from protocol.current_time import (
    DATA_FIELD_IGNORED,
    AdjustReason,
    CurrentTime,
    DstOffset,
    LocalTimeInformation,
)
from protocol.device_info import STRING_CHARACTERISTICS, DeviceInfoString
from protocol.errors import ProtocolError
from protocol.history import HistoryOpcode, HistoryRequest, HistoryResponse, HistoryStatus
from protocol.music import MusicEvent, MusicState
from protocol.profile import characteristic
from protocol.settings import MetricSettings, UserProfile

T = TypeVar("T")

# How long a request may go without any sign of life from the watch (a response, or a
# records notification while a REPORT streams) before the link is considered dead.
DEFAULT_IDLE_TIMEOUT = 15.0


# What every sync uses: the history, and the clock and metric settings it sets first (the
# user profile is written only when there is one, so a watch without it still syncs).
SYNC_CHARACTERISTICS: Final = (
    uuids.HISTORY_STATUS,
    uuids.HISTORY_CONTROL_POINT,
    uuids.HISTORY_RECORDS,
    uuids.LOCAL_TIME_INFORMATION,
    uuids.CURRENT_TIME,
    uuids.METRIC_SETTINGS,
)


class WatchProtocolError(BleakError):
    """The watch answered something our profile does not allow (bad bytes, wrong reply)."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Device Information strings; a string the watch does not publish is None."""

    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None


class WatchClient:
    """History sync, settings, clock and relays on a connected, bonded watch."""

    def __init__(self, client: BleakClient, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.client = client
        self.idle_timeout = idle_timeout
        self._pending: dict[HistoryOpcode, asyncio.Future[HistoryResponse]] = {}
        # Bumped by every records notification: a streaming REPORT is alive.
        self._activity = asyncio.Event()
        self._subscribed = False

    @property
    def address(self) -> str:
        return Address(self.client.address)

    def check_profile(self, *, bluez_adapter: str | None = None) -> None:
        """``WatchProtocolError`` naming what a sync needs and the connected watch does not
        offer, before anything is read or written: a raw "characteristic not found" halfway
        through says neither what is missing nor what to do. ``bluez_adapter``: the link
        is BlueZ's on that adapter, whose copy of a bonded watch's services can be old."""
        found = {c.uuid.lower() for s in self.client.services for c in s.characteristics}
        missing = [characteristic(u).name for u in SYNC_CHARACTERISTICS if u not in found]
        if not missing:
            return
        address = self.address
        why = f"{address} does not offer {', '.join(missing)}: it is not a watch this agent syncs"
        if bluez_adapter is None:
            raise WatchProtocolError(f"{why}, or its firmware no longer has them")
        raise WatchProtocolError(
            f"{why}, or BlueZ on {bluez_adapter} still holds an older copy of its services"
            " (after the watch was updated or restarted). Try again; if it persists, remove"
            f" it from BlueZ (bluetoothctl: select {bluez_adapter}'s address, then remove"
            f" {address}) and pair it again (phoneagent pair {address})"
        )

    # --- plain reads and writes ----------------------------------------------------

    async def _read(self, uuid: str) -> bytes:
        return bytes(await self.client.read_gatt_char(uuid))

    async def read_device_info(self) -> DeviceInfo:
        """Open characteristics: readable before encryption, so pairing can name the device."""
        found = {c.uuid for s in self.client.services for c in s.characteristics}

        async def text(uuid: str) -> str | None:
            if uuid not in found:
                return None
            raw = await self._read(uuid)
            return _decode(lambda: DeviceInfoString.decode(raw, STRING_CHARACTERISTICS[uuid])).text

        return DeviceInfo(
            await text(uuids.MANUFACTURER_NAME),
            await text(uuids.MODEL_NUMBER),
            await text(uuids.SERIAL_NUMBER),
            await text(uuids.FIRMWARE_REVISION),
        )

    async def read_status(self) -> HistoryStatus:
        """Authenticated: on a bonded Bumble link this read is what triggers encryption."""
        raw = await self._read(uuids.HISTORY_STATUS)
        return _decode(lambda: HistoryStatus.decode(raw))

    async def set_clock(self, clock: Callable[[], datetime]) -> bool:
        """Local time zone first, then the wall clock, so the watch never mixes old and new.

        The time is read from ``clock`` right before its own write, not before the zone's
        round trip: on a loaded link that took 100-200 ms, and the watch's clock (so every
        sample's timestamp) lagged by as much. A fixed-offset zone knows no DST split: its
        whole offset is then standard time. False when the watch keeps its own time (CTS's
        "data field ignored": a simulated watch's timeline, docs/protocol.md); the zone
        is set either way.
        """
        zone = LocalTimeInformation.from_datetime(clock())
        if zone.dst_offset is DstOffset.UNKNOWN:
            zone = replace(zone, dst_offset=DstOffset.STANDARD_TIME)
        await self.client.write_gatt_char(uuids.LOCAL_TIME_INFORMATION, zone.encode(), True)
        current = CurrentTime.from_datetime(clock(), AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE)
        try:
            await self.client.write_gatt_char(uuids.CURRENT_TIME, current.encode(), True)
        except BleakGATTProtocolError as error:
            if error.code != DATA_FIELD_IGNORED:
                raise
            return False
        return True

    async def read_metric_settings(self) -> MetricSettings:
        raw = await self._read(uuids.METRIC_SETTINGS)
        return _decode(lambda: MetricSettings.decode(raw))

    async def write_metric_settings(self, settings: MetricSettings) -> None:
        await self.client.write_gatt_char(uuids.METRIC_SETTINGS, settings.encode(), True)

    async def write_profile(self, profile: UserProfile) -> None:
        await self.client.write_gatt_char(uuids.USER_PROFILE, profile.encode(), True)

    # --- subscriptions -------------------------------------------------------------

    async def subscribe_history(
        self, on_batch: Callable[[bytes], None], on_status: Callable[[HistoryStatus], None]
    ) -> None:
        """Records, Status and the Control Point; ``on_batch`` gets raw packed batches.

        Batches stay undecoded here: the engine decodes them in groups, off the hot path
        of notification delivery.
        """

        def records(_: BleakGATTCharacteristic, data: bytearray) -> None:
            self._activity.set()
            on_batch(bytes(data))

        def status(_: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                value = HistoryStatus.decode(bytes(data))
            except ProtocolError:
                return  # a garbled hint only delays live flow; the next one corrects it
            on_status(value)

        await self.client.start_notify(uuids.HISTORY_CONTROL_POINT, self._on_response)
        await self.client.start_notify(uuids.HISTORY_RECORDS, records)
        await self.client.start_notify(uuids.HISTORY_STATUS, status)
        self._subscribed = True

    async def subscribe_relays(
        self,
        on_call_action: Callable[[CallAction], None],
        on_music_event: Callable[[MusicEvent], None],
    ) -> None:
        """The watch's call and music buttons; a garbled press is dropped, never guessed."""

        def call_action(_: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                action = CallAction.decode(bytes(data))
            except ProtocolError:
                return
            on_call_action(action)

        def music_event(_: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                event = MusicEvent.decode(bytes(data))
            except ProtocolError:
                return
            on_music_event(event)

        await self.client.start_notify(uuids.CALL_ACTION, call_action)
        await self.client.start_notify(uuids.MUSIC_EVENT, music_event)

    # --- relays (phone -> watch) ---------------------------------------------------

    async def write_alert(self, alert: AlertNotification) -> None:
        await self.client.write_gatt_char(uuids.ALERT_NOTIFICATION, alert.encode(), True)

    async def write_alert_removal(self, removal: AlertRemoval) -> None:
        await self.client.write_gatt_char(uuids.ALERT_REMOVAL, removal.encode(), True)

    async def write_call_state(self, state: CallState) -> None:
        await self.client.write_gatt_char(uuids.CALL_STATE, state.encode(), True)

    async def write_music_state(self, state: MusicState) -> None:
        await self.client.write_gatt_char(uuids.MUSIC_STATE, state.encode(), True)

    def _on_response(self, _: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            response = HistoryResponse.decode(bytes(data))
        except ProtocolError as error:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WatchProtocolError(str(error)))
            return
        waiting = self._pending.get(response.request)
        if waiting is not None and not waiting.done():
            waiting.set_result(response)

    # --- history control point -----------------------------------------------------

    async def request(self, request: HistoryRequest, *, idle: bool = True) -> HistoryResponse:
        """Write one request and wait for its response.

        The wait ends early with ``TimeoutError`` only if the watch is silent (no response
        and no records) for ``idle_timeout`` seconds: a long REPORT keeps it alive. With
        ``idle=False`` silence is no error (a live REPORT waits for the next sample, which
        may be hours away); the link's loss ends the wait instead.
        """
        if not self._subscribed:
            raise RuntimeError("subscribe_history() must run before control-point requests")
        if request.opcode in self._pending:
            raise RuntimeError(f"a {request.opcode.name} request is already waiting")
        future: asyncio.Future[HistoryResponse] = asyncio.get_running_loop().create_future()
        self._pending[request.opcode] = future
        try:
            self._activity.clear()
            await self.client.write_gatt_char(
                uuids.HISTORY_CONTROL_POINT, request.encode(), response=True
            )
            if not idle:
                return await future  # records need not wake it: nothing to time out
            while True:
                await done_or_set(future, self._activity, self.idle_timeout)
                if future.done():
                    return future.result()
                if not self._activity.is_set():
                    raise TimeoutError(
                        f"{self.address}: no answer to {request.opcode.name} for "
                        f"{self.idle_timeout:g} s"
                    )
                self._activity.clear()
        finally:
            del self._pending[request.opcode]

    async def report(self, from_seq: int) -> HistoryResponse:
        return await self.request(HistoryRequest(HistoryOpcode.REPORT, from_seq))

    async def report_live(self, from_seq: int) -> HistoryResponse:
        """Records from ``from_seq`` on, then each new one, until ``abort``: its response."""
        return await self.request(HistoryRequest(HistoryOpcode.REPORT_LIVE, from_seq), idle=False)

    async def count(self, from_seq: int) -> int:
        return (await self.request(HistoryRequest(HistoryOpcode.COUNT, from_seq))).value

    async def abort(self) -> HistoryResponse:
        return await self.request(HistoryRequest(HistoryOpcode.ABORT))

    async def delete_up_to(self, seq: int) -> HistoryResponse:
        return await self.request(HistoryRequest(HistoryOpcode.DELETE_UP_TO, seq))


def _decode(decode: Callable[[], T]) -> T:
    try:
        return decode()
    except ProtocolError as error:
        raise WatchProtocolError(str(error)) from error
