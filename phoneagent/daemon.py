"""The background agent: one ``DeviceSync`` per paired watch, all on one radio.

Watches are independent: one that is away, or whose pairing was lost, never holds up
the others. Stopping cancels every state machine; records already committed stay, and
anything received but not committed is simply reported again next time. With cloud sync
configured, the uploader runs beside them and is woken by every commit (for ``run``, a
``services.upload.HomeUploader``, which follows the home region). With a relay
hub, every watch is attached to it while connected (notifications, calls, music).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Protocol

from bleak.exc import BleakError

from phoneagent.backoff import Backoff
from phoneagent.config import SyncConfig
from phoneagent.errors import AgentUsageError, UnreachableError
from phoneagent.store import AsyncStore, DeviceRecord
from phoneagent.sync import (
    Committed,
    DeviceSync,
    PreferencesSource,
    Relays,
    SyncObserver,
    SyncState,
)
from phoneagent.sync.discovery import pair_and_check_bond
from phoneagent.sync.engine import local_now
from phoneagent.sync.engines import engine_for
from phoneagent.sync.personality import Personality
from phoneagent.transport import Transport, radio_lost
from phoneagent.waiting import first_of
from protocol.address import Address
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)


def paired_devices(store: AsyncStore, transport: Transport) -> list[DeviceRecord]:
    """The devices to sync: recorded ones, and on a Bumble radio only those we hold a bond
    for, unless their personality needs none (on BlueZ the operating system keeps the bonds)."""
    devices = store.store.list_devices()
    if transport.radio is None:
        return devices
    bonded = set(store.store.list_bonds())
    return [d for d in devices if d.address in bonded or not Personality(d.personality).needs_bond]


# What ``Daemon.sync_now`` follows of one watch: its state changes and its commits.
SyncEvent = tuple[SyncState, str] | Committed


class Uploads(Protocol):
    """What the daemon needs of an uploader (``Uploader``, ``services.upload.HomeUploader``)."""

    def wake(self) -> None: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class _WakeUploader(SyncObserver):
    """Passes every event on, keeps each watch's last state for ``Daemon.report``, tells
    the uploader (if any) that records were committed, and queues a watch's events for
    whoever follows it (``following``)."""

    def __init__(self, inner: SyncObserver, uploader: Callable[[], Uploads | None]) -> None:
        self._inner, self._uploader = inner, uploader
        self.states: dict[str, tuple[SyncState, str]] = {}
        self._followers: list[tuple[str, asyncio.Queue[SyncEvent]]] = []

    @contextlib.contextmanager
    def following(self, device: str) -> Iterator[asyncio.Queue[SyncEvent]]:
        """``device``'s events from now on, while the block runs."""
        follower = (device, asyncio.Queue[SyncEvent]())
        self._followers.append(follower)
        try:
            yield follower[1]
        finally:
            self._followers.remove(follower)

    def _tell(self, device: str, event: SyncEvent) -> None:
        for followed, queue in self._followers:
            if followed == device:
                queue.put_nowait(event)

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self.states[device] = (state, detail)
        self._inner.state_changed(device, state, detail)
        self._tell(device, (state, detail))

    async def committed(self, commit: Committed) -> None:
        await self._inner.committed(commit)
        self._tell(commit.device, commit)
        if (uploader := self._uploader()) is not None:
            uploader.wake()


# States in which an engine is not on its way to live: what ``sync_now`` waited for failed.
_NOT_SYNCING = frozenset(
    {SyncState.BACKOFF, SyncState.PAIRING_LOST, SyncState.RADIO_LOST, SyncState.STOPPED}
)


class SyncNowError(UnreachableError):
    """The running agent could not sync a watch now; ``state`` is where its engine is."""

    def __init__(self, message: str, state: SyncState | None = None) -> None:
        super().__init__(message)
        self.state = state


class PairRefusedError(AgentUsageError):
    """A ``pair`` the running agent will not do: the watch is paired and synced already."""


# How long to wait before cancelling again a task that swallowed its cancellation.
RECANCEL_S = 0.2


async def _no_radio_yet(error: BaseException, delay: float) -> None:
    log.warning("no radio yet (%s); retrying in %.1fs", error, delay)


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
        uploader: Uploads | None = None,
        relays: Relays | None = None,
        clock: Callable[[], datetime] | None = None,
        reopen: Callable[[], Awaitable[Transport]] | None = None,
    ) -> None:
        """``reopen``: how to open the radio again when its transport goes away (the air
        restarted); without it a lost radio leaves the engines backing off forever.
        ``clock``: what the watches' clocks are set to (None: local time)."""
        self._transport = transport
        self._reopen = reopen
        self._store = store
        self._preferences = preferences
        self._config = config or SyncConfig()
        self._observer = _WakeUploader(observer or SyncObserver(), lambda: self._uploader)
        self._uploader = uploader
        self._relays = relays
        self._rng = random.Random(seed)
        self._clock = clock or local_now
        self.syncs: dict[str, DeviceSync] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._others: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._gone = asyncio.Event()  # this radio went away (see ``_watch_radio``)
        self._loaded = asyncio.Event()  # the paired watches' engines exist (``sync_now``)

    def _backoff(self) -> Backoff:
        return Backoff(
            self._config.backoff_initial,
            self._config.backoff_max,
            rng=random.Random(self._rng.random()),
        )

    def _sync_for(self, device: DeviceRecord) -> DeviceSync:
        """The engine of ``device``'s personality."""
        return engine_for(device)(
            device.address,
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
        self._loaded.set()
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
        devices = await asyncio.to_thread(paired_devices, self._store, self._transport)
        addresses = [d.address for d in devices]
        for address in set(self.syncs) - set(addresses):
            self._tasks.pop(address).cancel()
            del self.syncs[address]
        for device in devices:
            address = device.address
            if address not in self.syncs:
                sync = self.syncs[address] = self._sync_for(device)
                task = asyncio.create_task(sync.run(), name=f"sync {address}")
                self._tasks[address] = task
                done = functools.partial(self._finished, gone=self._gone, address=address)
                task.add_done_callback(done)
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
        # A fault a person must fix, not a radio away, ends ``run`` with its error.
        async for attempt in self._backoff().retrying(radio_lost, _no_radio_yet, stop):
            with attempt:
                if stop.is_set():
                    return
                self._transport = await self._reopen()
        log.warning("a new radio is open; syncing again")
        self._watch_radio()
        await self.reload()

    async def pair(
        self, address: Address, *, scan_timeout: float, bond: bool
    ) -> tuple[DeviceRecord, bool]:
        """Pair ``address`` on this daemon's radio (its pairing agent answers) and start
        syncing it; the device recorded and whether it is bonded (``phoneagent pair``
        while this daemon holds the data dir)."""
        await self._loaded.wait()
        # A watch whose pairing was lost (reset) is what ``pair`` is for: its engine ended
        # saying "run pair again", and a new one starts once it is paired.
        lost = self.syncs.get(address)
        if lost is not None and lost.state is not SyncState.PAIRING_LOST:
            raise PairRefusedError(f"{address} is paired and synced already (unpair it first)")
        record, bonded = await pair_and_check_bond(
            self._transport, self._store.store, address, scan_timeout=scan_timeout, bond=bond
        )
        if lost is not None and self.syncs.get(address) is lost:
            del self.syncs[address]
            self._tasks.pop(address).cancel()  # done already: it returned at the loss
        await self.reload()
        return record, bonded

    async def sync_now(self, address: str) -> tuple[int, int]:
        """Sync ``address`` now, for ``phoneagent sync`` while this daemon holds the data
        dir: a back-off in progress ends at once, and the answer comes when every record
        the watch held when asked is stored. Returns the samples stored meanwhile and the
        sync position; ``SyncNowError`` says why not (not advertising within the scan timeout,
        the session failed, the pairing is lost)."""
        await self._loaded.wait()  # asked as ``run`` starts: not "unknown" for that
        sync = self.syncs.get(address)
        if sync is None and self._gone.is_set():
            raise SyncNowError("its radio went away; the running agent is opening a new one")
        if sync is None:
            raise SyncNowError("it is not paired (or has no bond on this radio)")
        stored = 0
        with self._observer.following(address) as events:
            state = sync.state
            if state in _NOT_SYNCING - {SyncState.BACKOFF}:
                raise SyncNowError(state.value, state)
            sync.retry_now()
            newest: int | None = None
            while newest is None or sync.sync_position <= newest:
                if state is SyncState.LIVE and newest is None:
                    try:
                        newest = await sync.newest_seq_now()
                    except (BleakError, TimeoutError, ProtocolError) as error:
                        raise SyncNowError(str(error) or type(error).__name__) from error
                    continue
                scan_timeout = self._config.scan_timeout
                try:
                    async with asyncio.timeout(
                        scan_timeout if state is SyncState.WAITING else None
                    ):
                        event = await events.get()
                except TimeoutError:
                    raise SyncNowError(
                        f"it did not advertise within {scan_timeout:g} s"
                        " (the running agent goes on waiting for it)",
                        state,
                    ) from None
                if isinstance(event, Committed):
                    stored += event.result.new
                    continue
                state, detail = event
                if state in _NOT_SYNCING:
                    raise SyncNowError(detail or state.value, state)
        return stored, sync.sync_position

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

    def _start(self, task: asyncio.Task[None]) -> None:
        self._others.append(task)
        task.add_done_callback(self._finished)

    def _finished(
        self, task: asyncio.Task[None], gone: asyncio.Event | None = None, address: str = ""
    ) -> None:
        """``gone``: the event of the radio an engine ran on, ``address`` its watch's
        (None and "": not an engine)."""
        if task.cancelled() or (error := task.exception()) is None:
            return  # cancelled, or a watch whose pairing was lost (its state says so)
        if gone is not None and self._reopen is not None and (gone.is_set() or radio_lost(error)):
            gone.set()  # an engine of a radio that went away: ``run`` opens a new one
            return
        if address:
            self._start(asyncio.create_task(self._engine_failed(address, task, error)))
            return
        self._fail(error)

    async def _engine_failed(
        self, address: str, task: asyncio.Task[None], error: BaseException
    ) -> None:
        """An engine's error ends ``run``, unless its watch was deleted under it by another
        command (``delete``, ``account delete``: they tell this agent only once their
        transaction is committed, and a record may land in between): then only that
        engine ends, as a reload would have ended it, and the other watches sync on."""
        if await self._store.get_device(address) is not None:
            self._fail(error)
            return
        log.info("%s: deleted while syncing; stopped syncing it", address)
        if self._tasks.get(address) is task:
            del self._tasks[address]
            del self.syncs[address]

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        if self._stop is not None:
            self._stop.set()
