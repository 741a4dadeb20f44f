"""The background agent: one ``DeviceSync`` per paired watch, all on one radio.

Watches are independent: one that is away, or whose pairing was lost, never holds up
the others. Stopping cancels every state machine; records already committed stay, and
anything received but not committed is simply reported again next time. With cloud sync
configured, the uploader runs beside them and is woken by every commit. With a relay
hub, every watch is attached to it while connected (notifications, calls, music).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from phoneagent.config import SyncConfig
from phoneagent.relays.control import ControlError, ControlServer
from phoneagent.store import AsyncStore, Store, StoreFullError
from phoneagent.sync import (
    Backoff,
    Committed,
    DeviceSync,
    PreferencesSource,
    Relays,
    SyncObserver,
    SyncState,
)
from phoneagent.sync.engine import local_now
from phoneagent.transport import Transport, radio_lost
from phoneagent.upload import Uploader
from phoneagent.waiting import first_of, sleep_unless

log = logging.getLogger(__name__)


def paired_devices(store: AsyncStore, transport: Transport) -> list[str]:
    """The devices to sync: recorded ones, and on a Bumble radio only those we hold a bond for
    (on BlueZ the operating system keeps the bonds)."""
    devices = [d.address for d in store.store.list_devices()]
    if transport.radio is None:
        return devices
    bonded = set(store.store.list_bonds())
    return [address for address in devices if address in bonded]


class _WakeUploader(SyncObserver):
    """Passes every event on, keeps each watch's last state for ``Daemon.report``, and
    tells the uploader (if any) that records were committed."""

    def __init__(self, inner: SyncObserver, uploader: Callable[[], Uploader | None]) -> None:
        self._inner, self._uploader = inner, uploader
        self.states: dict[str, tuple[SyncState, str]] = {}

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self.states[device] = (state, detail)
        self._inner.state_changed(device, state, detail)

    async def committed(self, commit: Committed) -> None:
        await self._inner.committed(commit)
        if (uploader := self._uploader()) is not None:
            uploader.wake()


async def open_when_room(
    open_store: Callable[[], Store],
    data_dir: Path,
    config: SyncConfig,
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> Store | None:
    """The store, once its disk has room to open it; None if ``stop`` is set first.

    ``run`` started on a full disk waits as its engines do when the disk fills under them:
    with their back-off, saying "not storing" through ``say`` and to ``phoneagent status``
    (over the agent's socket, the store being unreadable), "storing again" once it opened.
    """
    backoff = Backoff(config.backoff_initial, config.backoff_max)
    waiting = ""  # why, while it waits

    async def status(_request: dict[str, Any]) -> dict[str, Any]:
        return {"watches": {}, "not_storing": waiting}

    server = ControlServer(data_dir, {"status": status})
    try:
        while not stop.is_set():
            try:
                store = await asyncio.to_thread(open_store)
            except StoreFullError as error:
                if not waiting:
                    try:
                        await server.start()
                    except ControlError:
                        raise error from None  # another agent serves this data dir
                waiting = str(error)
                delay = backoff.next_delay()
                say(f"not storing: {error}; retrying in {delay:.1f}s")
                await sleep_unless(stop, delay)
            else:
                if waiting:
                    say("storing again: the disk has space")
                    log.warning("storing again: the disk has space (waited since the start)")
                return store
        return None
    finally:
        await server.close()


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
        relays: Relays | None = None,
        clock: Callable[[], datetime] = local_now,
        reopen: Callable[[], Awaitable[Transport]] | None = None,
    ) -> None:
        """``reopen``: how to open the radio again when its transport goes away (the air
        restarted); without it a lost radio leaves the engines backing off forever."""
        self._transport = transport
        self._reopen = reopen
        self._store = store
        self._preferences = preferences
        self._config = config or SyncConfig()
        self._observer = _WakeUploader(observer or SyncObserver(), lambda: self._uploader)
        self._uploader = uploader
        self._relays = relays
        self._rng = random.Random(seed)
        self._clock = clock  # what the watches' clocks are set to
        self.syncs: dict[str, DeviceSync] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._others: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._gone = asyncio.Event()  # this radio went away (see ``_watch_radio``)

    def _backoff(self) -> Backoff:
        return Backoff(
            self._config.backoff_initial,
            self._config.backoff_max,
            rng=random.Random(self._rng.random()),
        )

    def _sync_for(self, address: str) -> DeviceSync:
        return DeviceSync(
            address,
            self._transport,
            self._store,
            self._preferences,
            observer=self._observer,
            backoff=self._backoff(),
            connect_timeout=self._config.connect_timeout,
            relays=self._relays,
            clock=self._clock,
        )

    async def run(self, stop: asyncio.Event) -> dict[str, SyncState]:
        """Sync every paired device until ``stop`` is set; returns each device's last state.

        A task that fails (a store error, a refused broker configuration) stops the
        daemon and its error is raised here, rather than going unnoticed until SIGTERM.
        """
        self._stop = stop
        if self._uploader is not None:
            self._start(asyncio.create_task(self._uploader.run(stop), name="uploader"))
        self._watch_radio()
        await self.reload()
        try:
            while not stop.is_set():
                await first_of(stop.wait(), self._gone.wait())
                if not stop.is_set():
                    await self._new_radio(stop)
        finally:
            await _cancel_all([*self._tasks.values(), *self._others])
            await self._transport.close()  # the caller closes the first one too: no-op
        if self._failure is not None:
            raise self._failure
        return {address: sync.state for address, sync in self.syncs.items()}

    async def reload(self) -> None:
        """Pick up what changed while running: watches paired or unpaired since, and the
        consent and profile every running engine applies at once (PR-WITHDRAW)."""
        addresses = await asyncio.to_thread(paired_devices, self._store, self._transport)
        for address in set(self.syncs) - set(addresses):
            self._tasks.pop(address).cancel()
            del self.syncs[address]
        for address in addresses:
            if address not in self.syncs:
                sync = self.syncs[address] = self._sync_for(address)
                task = asyncio.create_task(sync.run(), name=f"sync {address}")
                self._tasks[address] = task
                task.add_done_callback(functools.partial(self._finished, gone=self._gone))
        await asyncio.gather(*(sync.apply_preferences() for sync in self.syncs.values()))

    def _watch_radio(self) -> None:
        """A fresh ``_gone`` for the current radio, set when its transport reports the loss
        (Bumble) or one of its engines fails with an error ``radio_lost`` recognises (any
        stack). Without ``reopen`` it is never set: a lost radio is then an engine's error."""
        gone = self._gone = asyncio.Event()
        if self._reopen is not None and (lost := self._transport.lost) is not None:
            lost.add_done_callback(lambda _: gone.set())

    async def _new_radio(self, stop: asyncio.Event) -> None:
        """The engines of a lost radio end; a new radio (with back-off) gets new engines.
        The uploader and the relays do not need the radio and keep running."""
        assert self._reopen is not None
        log.warning("the radio went away; opening a new radio")
        for sync in self.syncs.values():
            sync.radio_lost()
        await _cancel_all(list(self._tasks.values()))
        self._tasks.clear()
        self.syncs.clear()
        await self._transport.close()
        backoff = self._backoff()
        while not stop.is_set():
            try:
                self._transport = await self._reopen()
            except Exception as error:
                if not radio_lost(error):
                    raise  # a fault a person must fix: ``run`` ends with it
                delay = backoff.next_delay()
                log.warning("no radio yet (%s); retrying in %.1fs", error, delay)
                await sleep_unless(stop, delay)
            else:
                log.warning("a new radio is open; syncing again")
                self._watch_radio()
                await self.reload()
                return

    def report(self) -> dict[str, dict[str, str]]:
        """Each watch's state as the running agent sees it, for ``phoneagent status``: what
        the store cannot say, such as a disk too full to store (and acknowledge) anything."""
        report = {}
        for address, sync in self.syncs.items():
            state, detail = self._observer.states.get(address, (sync.state, ""))
            report[address] = {"state": state.value, "detail": detail}
            if sync.not_storing is not None:
                report[address]["not_storing"] = sync.not_storing
        return report

    @property
    def uploading(self) -> bool:
        return self._uploader is not None

    def start_uploader(self, uploader: Uploader) -> None:
        """Cloud sync became possible while running (an account, endpoints configured)."""
        if self._uploader is not None or self._stop is None:
            return
        self._uploader = uploader
        self._start(asyncio.create_task(uploader.run(self._stop), name="uploader"))

    def _start(self, task: asyncio.Task[None]) -> None:
        self._others.append(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None], gone: asyncio.Event | None = None) -> None:
        """``gone``: the event of the radio an engine ran on (None: not an engine)."""
        if task.cancelled() or (error := task.exception()) is None:
            return  # cancelled, or a watch whose pairing was lost (its state says so)
        if gone is not None and self._reopen is not None and (gone.is_set() or radio_lost(error)):
            gone.set()  # an engine of a radio that went away: ``run`` opens a new one
            return
        if self._failure is None:
            self._failure = error
        if self._stop is not None:
            self._stop.set()
