"""The background agent: one ``DeviceSync`` per paired watch, all on one radio.

Watches are independent: one that is away, or whose pairing was lost, never holds up
the others. Stopping cancels every state machine; records already committed stay, and
anything received but not committed is simply reported again next time. With cloud sync
configured, the uploader runs beside them and is woken by every commit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime

from phoneagent.config import SyncConfig
from phoneagent.store import AsyncStore
from phoneagent.sync import (
    Backoff,
    Committed,
    DeviceSync,
    PreferencesSource,
    SyncObserver,
    SyncState,
)
from phoneagent.sync.engine import local_now
from phoneagent.transport import Transport
from phoneagent.upload import Uploader


def paired_devices(store: AsyncStore, transport: Transport) -> list[str]:
    """The devices to sync: recorded ones, and on a Bumble radio only those we hold a bond for
    (on BlueZ the operating system keeps the bonds)."""
    devices = [d.address for d in store.store.list_devices()]
    if transport.radio is None:
        return devices
    bonded = set(store.store.list_bonds())
    return [address for address in devices if address in bonded]


class _WakeUploader(SyncObserver):
    """Passes every event on, and tells the uploader that new records were committed."""

    def __init__(self, inner: SyncObserver, uploader: Uploader) -> None:
        self._inner, self._uploader = inner, uploader

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self._inner.state_changed(device, state, detail)

    async def committed(self, commit: Committed) -> None:
        await self._inner.committed(commit)
        self._uploader.wake()


# How long to wait before cancelling again a task that swallowed its cancellation.
RECANCEL_S = 0.2


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel until done: a connect being cancelled waits on the controller's answer, which
    Bumble's virtual controller never sends, so one cancellation can leave it hanging."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL_S)


class Daemon:
    def __init__(
        self,
        transport: Transport,
        store: AsyncStore,
        preferences: PreferencesSource,
        *,
        config: SyncConfig | None = None,
        observer: SyncObserver | None = None,
        seed: int | None = None,
        uploader: Uploader | None = None,
        clock: Callable[[], datetime] = local_now,
    ) -> None:
        self._transport = transport
        self._store = store
        self._preferences = preferences
        self._config = config or SyncConfig()
        observer = observer or SyncObserver()
        self._observer = observer if uploader is None else _WakeUploader(observer, uploader)
        self._uploader = uploader
        self._rng = random.Random(seed)
        self._clock = clock  # what the watches' clocks are set to
        self.syncs: dict[str, DeviceSync] = {}

    def _sync_for(self, address: str) -> DeviceSync:
        backoff = Backoff(
            self._config.backoff_initial,
            self._config.backoff_max,
            rng=random.Random(self._rng.random()),
        )
        return DeviceSync(
            address,
            self._transport,
            self._store,
            self._preferences,
            observer=self._observer,
            backoff=backoff,
            connect_timeout=self._config.connect_timeout,
            clock=self._clock,
        )

    async def run(self, stop: asyncio.Event) -> dict[str, SyncState]:
        """Sync every paired device until ``stop`` is set; returns each device's last state."""
        addresses = await asyncio.to_thread(paired_devices, self._store, self._transport)
        self.syncs = {address: self._sync_for(address) for address in addresses}
        tasks = [
            asyncio.create_task(sync.run(), name=f"sync {address}")
            for address, sync in self.syncs.items()
        ]
        if self._uploader is not None:
            tasks.append(asyncio.create_task(self._uploader.run(stop), name="uploader"))
        try:
            await stop.wait()
        finally:
            await _cancel_all(tasks)
        results = [None if t.cancelled() else t.exception() for t in tasks]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        return {address: sync.state for address, sync in self.syncs.items()}
