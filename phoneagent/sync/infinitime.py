"""The engine for an InfiniTime watch: ``DeviceSync``'s sessions (advertising, connect,
back-off, relays), with a conversation of its own, since the watch keeps no history.

Connected, it sets the clock, takes a baseline of the step count and stores what the
watch notifies as per-minute records (``phoneagent.sync.minutes``): a minute is stored
once the phone's clock is past it (looked at least every ``MINUTE_CHECK_S``), or when a
later minute's value arrives, and the minute in progress when the link ends.
Nothing is acknowledged to the watch (there is nothing to free), so what matters is only
that a minute is stored once (``Store.store_minutes``). Data while disconnected is lost.
"""

from __future__ import annotations

import asyncio
import logging

from bleak import BleakClient

from phoneagent.store import StoreFullError
from phoneagent.sync.engine import Committed, DeviceSync, LinkLostError, SyncState
from phoneagent.sync.infinitime_client import InfiniTimeClient
from phoneagent.sync.minutes import MinuteAggregator
from phoneagent.sync.personality import Personality, detect
from phoneagent.sync.watch_client import WatchProtocolError
from protocol.metrics import Sample

log = logging.getLogger(__name__)

# The longest wait, in the loop's seconds, before looking whether the minute in progress
# ended by the phone's clock (which may run at another rate: a simulation's, in tests).
MINUTE_CHECK_S = 5.0


class InfiniTimeSync(DeviceSync):
    """Live values of one InfiniTime watch, stored per minute; ``run`` or ``sync_once``."""

    _minutes: MinuteAggregator | None = None
    _connected = False

    async def _converse(self, client: BleakClient, name: str | None, live: bool) -> None:
        services = (s.uuid for s in client.services)
        if detect(services) is not Personality.INFINITIME:
            raise WatchProtocolError(
                f"{self.address} no longer presents InfiniTime's services: run pair again"
            )
        watch = InfiniTimeClient(client)
        self._set(SyncState.CONFIGURING)
        info = await watch.read_device_info()
        await self._record_device(info, name, personality=Personality.INFINITIME, live_derived=True)
        await watch.set_clock(self._clock)
        self.sync_position = await self._store.next_seq(self.address)
        if self._relays is not None:
            await self._relays.attach(watch)
        self.backoff.reset()
        await asyncio.to_thread(self._store.store.set_sync_problem, self.address, None)
        if not live:
            return  # no history to fetch: what it measures is stored only while connected
        minutes = self._minutes = MinuteAggregator(self._preferences.opted_out)
        done: asyncio.Queue[list[Sample]] = asyncio.Queue()

        def now() -> int:
            return int(self._clock().timestamp())

        def heard(samples: list[Sample]) -> None:
            if samples:
                done.put_nowait(samples)

        minutes.step_count(await watch.read_step_count(), now())  # the baseline
        await watch.subscribe_live(
            lambda steps: heard(minutes.step_count(steps, now())),
            lambda bpm: heard(minutes.heart_rate(bpm, now())),
        )
        self._connected = True
        self._set(SyncState.LIVE, "per-minute records from live values; no history on the watch")
        try:
            while True:
                try:
                    async with asyncio.timeout(_until_next_minute(now())):
                        heard_minutes = await done.get()
                except TimeoutError:
                    heard_minutes = minutes.due(now())
                await self._commit_minutes(heard_minutes)
        finally:
            self._connected = False
            self._minutes = None
            await self._store_last_minute(minutes)

    async def _store_last_minute(self, minutes: MinuteAggregator) -> None:
        """The minute in progress when the link ended, as far as it was heard."""
        try:
            await self._commit_minutes(minutes.flush())
        except StoreFullError as error:
            log.warning("%s: the last minute heard was not stored: %s", self.address, error)

    async def _commit_minutes(self, samples: list[Sample]) -> None:
        if not samples:
            return
        result = await self._store.store_minutes(self.address, samples)
        if self.not_storing is not None:
            self.not_storing = None
            log.warning("%s: storing again: the disk has space", self.address)
        self.sync_position = result.next_seq
        self.newest_seq = result.next_seq - 1
        await self._observer.committed(
            Committed(self.address, result, tuple(samples), self.newest_seq)
        )

    async def apply_preferences(self) -> None:
        """A metric opted out while connected is dropped from the next minute on."""
        await super().apply_preferences()
        if self._minutes is not None:
            self._minutes.opted_out = self._preferences.opted_out

    async def newest_seq_now(self) -> int:
        """Nothing waits on the watch: everything heard so far is stored as it is heard."""
        if not self._connected:
            raise LinkLostError(f"{self.address} is not connected")
        return self.sync_position - 1


def _until_next_minute(now: int) -> float:
    """Seconds until just past the end of ``now``'s minute, at most ``MINUTE_CHECK_S``."""
    return min(60 - now % 60 + 0.5, MINUTE_CHECK_S)
