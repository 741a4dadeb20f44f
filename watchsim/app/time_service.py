"""The time services: Current Time (the phone sets the watch clock) and Local Time
Information (the phone sets its time zone), by docs/protocol.md's rule."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from protocol import uuids
from protocol.current_time import (
    DATA_FIELD_IGNORED,
    AdjustReason,
    CurrentTime,
    DstOffset,
    LocalTimeInformation,
)
from watchsim.app.live import current_time, local_datetime
from watchsim.model import VirtualClock, WatchModel
from watchsim.peripheral.port import AttError, AttErrorCode, Peer, Peripheral


class TimeService:
    """Binds Current Time and Local Time Information of one peripheral to the clock and
    the model; ``log`` tells the wearer what a write did."""

    def __init__(
        self,
        peripheral: Peripheral,
        clock: VirtualClock,
        model: WatchModel,
        log: Callable[[str], None],
    ) -> None:
        self._peripheral = peripheral
        self._clock = clock
        self._model = model
        self._log = log
        peripheral.set_read_handler(
            uuids.CURRENT_TIME, lambda: current_time(clock.now(), clock.utc_offset_s)
        )
        peripheral.set_write_handler(uuids.CURRENT_TIME, self._on_current_time)
        peripheral.set_read_handler(uuids.LOCAL_TIME_INFORMATION, self._local_time_information)
        peripheral.set_write_handler(uuids.LOCAL_TIME_INFORMATION, self._on_local_time)

    async def _on_current_time(self, _peer: Peer, value: bytes) -> None:
        """The phone sets the watch clock (local wall time).

        A clock at real speed takes it; the model holds rather than measure a second
        twice when it is set back. A simulated clock keeps its own timeline and answers
        with CTS's "data field ignored" (the time zone, a separate write, still applies).
        """
        clock, model = self._clock, self._model
        offset = clock.utc_offset_s
        zone = datetime.timezone(datetime.timedelta(seconds=offset))
        moment = CurrentTime.decode(value).to_datetime(zone).timestamp()
        if not clock.real_time:
            self._log(f"phone's time not taken: the clock is simulated ({clock.speed:g}x)")
            raise AttError(DATA_FIELD_IGNORED, "a simulated clock keeps its own timeline")
        clock.set(moment)
        model.set_time(int(moment))
        if (ahead := model.now - int(moment)) > 0:
            resumes = local_datetime(model.now + 1, offset).strftime("%H:%M:%S")
            self._log(f"clock set back {ahead} s by phone; measuring resumes at {resumes}")
        else:
            self._log("clock set by phone")
        reason = AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
        await self._peripheral.notify(uuids.CURRENT_TIME, current_time(moment, offset, reason))

    def _local_time_information(self) -> bytes:
        quarters = self._clock.utc_offset_s // 900
        return LocalTimeInformation(quarters, DstOffset.STANDARD_TIME).encode()

    async def _on_local_time(self, _peer: Peer, value: bytes) -> None:
        zone = LocalTimeInformation.decode(value).tzinfo()
        if zone is None:
            raise AttError(AttErrorCode.VALUE_NOT_ALLOWED, "time zone or DST unknown")
        offset = zone.utcoffset(None)
        assert offset is not None  # a fixed-offset zone always has one
        seconds = int(offset.total_seconds())
        self._clock.utc_offset_s = seconds
        self._model.set_utc_offset(seconds)
