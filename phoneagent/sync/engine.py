"""The per-device sync state machine: advertising -> connect -> encrypt -> configure ->
backfill -> live -> (disconnect) -> back-off -> advertising ...

The sync position is the next seq to ask the watch for (``Store.next_seq``, kept in the
store); the acked seq is the last one the watch was told it may free (DELETE_UP_TO).
Exactly-once rests on three rules:

1. every REPORT (plain or live) starts at the store's sync position, never at the
   watch's view;
2. received batches are stored with ``store_batch`` (idempotent by (device, seq), one
   transaction per group), and DELETE_UP_TO is sent only after that commit is on disk,
   and only below the sync position the commit produced (live, not after every commit:
   the acked seq may lag, and a live commit is durable only once ``make_durable`` ran
   before the acknowledgement: the watch still holds what a power loss would take back);
3. every seq in a REPORT's range is accounted for in the store: a record, a gap the
   watch reported, a seq the watch never assigned, or a record of an opted-out metric
   dropped here (``phoneagent.sync.stream``). So the sync position always moves, and a
   loss is always visible as a gap.

A disconnect or crash anywhere therefore repeats records (ignored as duplicates) but
never loses one, since the watch frees nothing the store has not committed.

Backfill runs plain REPORTs until the watch has nothing newer; live, one REPORT_LIVE
streams each new record as it lands (one notification per burst, no request per second).
A live REPORT has no end to close its range, so the plain REPORT after it does (rule 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bleak import BleakClient
from bleak.exc import BleakError

from phoneagent.backoff import Backoff
from phoneagent.store import AsyncStore, MissingSeqs, StoreFullError, StoreResult
from phoneagent.sync.discovery import wait_for_advertising
from phoneagent.sync.preferences import PreferencesSource, SyncPreferences
from phoneagent.sync.stream import DROPPED, Group, ReportStream
from phoneagent.sync.watch_client import DeviceInfo, WatchClient, WatchProtocolError
from phoneagent.transport import PairingLostError, Transport
from phoneagent.waiting import done_or_set, sleep_unless
from protocol.address import Address
from protocol.errors import ProtocolError
from protocol.history import HistoryResponse, HistoryResult, HistoryStatus
from protocol.metrics import Sample

if TYPE_CHECKING:  # the relays import the privacy package, which imports this one
    from phoneagent.relays.hub import WatchSink

T = TypeVar("T")

# Samples decoded and committed together: one transaction amortises the fsync, and
# bounds what is held in memory between the radio and the disk.
DEFAULT_GROUP_SAMPLES = 8192
# Live records are acknowledged (DELETE_UP_TO) once this many are committed or this long
# after the last acknowledgement, not after every REPORT: a round trip and a rewrite of
# the watch's history index per record each second was a third of a live pair's work.
# The watch only keeps committed records longer; what it reports is still from the sync position.
LIVE_ACK_RECORDS = 240
LIVE_ACK_S = 60.0
# How long a REPORT's last records may trail its response (BlueZ's notification packing
# delays them by milliseconds; generous for emulated and loaded hosts).
LATE_RECORDS_S = 5.0
# Live, when another central's REPORT ended ours: wait this long before taking it back.
LIVE_RETAKE_S = 1.0

log = logging.getLogger(__name__)


class SyncState(enum.StrEnum):
    WAITING = "waiting for advertising"
    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    BACKFILL = "backfilling"
    LIVE = "live"
    BACKOFF = "backing off"
    PAIRING_LOST = "pairing lost, run pair again"
    # The radio under the engine went away; the daemon opens a new one and a new engine.
    RADIO_LOST = "radio lost, reopening it"
    STOPPED = "stopped"


class LinkLostError(BleakError):
    """The watch disconnected in the middle of a conversation."""


@dataclass(frozen=True, slots=True)
class Committed:
    """One group the store has committed, reported before it is acknowledged to the watch."""

    device: str
    result: StoreResult
    samples: Sequence[Sample]  # a backfill's: a SampleRun, each Sample built when read
    newest_seq: int  # the watch's newest seq as last heard: progress = sync position / newest


class Relays(Protocol):
    """Where a connected watch is offered for relays (``phoneagent.relays.RelayHub``)."""

    async def attach(self, watch: WatchSink) -> None: ...

    def detach(self, address: str) -> None: ...


class SyncObserver:
    """Hooks for a UI (progress bars, live values). The defaults do nothing."""

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        """Called on every state transition; ``detail`` says why (an error, a count)."""

    async def committed(self, commit: Committed) -> None:
        """Runs after a commit and before its acknowledgement: an exception here aborts
        the session with the records stored but not acknowledged."""


def local_now() -> datetime:
    """What a phone sets the watch clock to: its own local time."""
    return datetime.now().astimezone()


class DeviceSync:
    """Syncs one paired watch; ``run`` forever (the daemon) or ``sync_once`` (the CLI)."""

    def __init__(
        self,
        address: str,
        transport: Transport,
        store: AsyncStore,
        preferences: PreferencesSource,
        *,
        observer: SyncObserver | None = None,
        backoff: Backoff | None = None,
        connect_timeout: float = 20.0,
        idle_timeout: float = 15.0,
        clock: Callable[[], datetime] = local_now,
        group_samples: int = DEFAULT_GROUP_SAMPLES,
        relays: Relays | None = None,
    ) -> None:
        self.address = Address(address)
        self._transport = transport
        self._store = store
        self._preferences_source = preferences
        self._preferences = SyncPreferences()
        self._observer = observer or SyncObserver()
        self.backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._group_samples = group_samples
        self._relays = relays
        self.state = SyncState.STOPPED
        self.sync_position = 0
        self.newest_seq = 0
        self._acked_seq = -1
        self._acked_at = 0.0  # loop time of the last acknowledgement
        self._live = False
        self._stream: ReportStream | None = None
        self._watch: WatchClient | None = None  # while a session is past configuring
        # Set by ``radio_lost``: the cancellation that follows is not an end.
        self._radio_lost = False
        # Why storing (and so acknowledging) is paused: the disk was full at the last
        # write. Cleared by the next commit that succeeds.
        self.not_storing: str | None = None
        # Set by ``retry_now``: the back-off in progress ends at once.
        self._retry = asyncio.Event()

    def _set(self, state: SyncState, detail: str = "") -> None:
        self.state = state
        log.info("%s: %s%s", self.address, state.value, f" ({detail})" if detail else "")
        self._observer.state_changed(self.address, state, detail)

    # --- entry points ---------------------------------------------------------------

    async def run(self) -> None:
        """Keep the watch synced until cancelled; returns only when the pairing is lost."""
        try:
            retrying = self.backoff.retrying(_session_failed, self._backing_off, self._retry)
            async for attempt in retrying:
                with attempt:
                    await self._session(live=True, scan_timeout=None)
        except PairingLostError as error:
            await self._failed(SyncState.PAIRING_LOST, str(error))
        finally:
            if self.state is not SyncState.PAIRING_LOST:
                self._set(SyncState.RADIO_LOST if self._radio_lost else SyncState.STOPPED)

    async def _backing_off(self, error: BaseException, delay: float) -> None:
        self._retry.clear()  # only a ``retry_now`` during this wait cuts it short
        if isinstance(error, StoreFullError):  # nothing unstored was acknowledged
            self.not_storing = str(error)
            log.warning("%s: not storing: %s", self.address, error)
        await self._failed(SyncState.BACKOFF, f"{error}; retrying in {delay:.1f} s")

    def radio_lost(self) -> None:
        """The radio went away and a new engine takes over on the next one: ``run``, about
        to be cancelled, then reports ``RADIO_LOST`` rather than a ``STOPPED`` that would
        read as the end of syncing."""
        self._radio_lost = True

    def retry_now(self) -> None:
        """Someone asked for a sync now (``phoneagent sync`` while ``run`` runs): the
        back-off in progress, if any, ends at once."""
        if self.state is SyncState.BACKOFF:
            self._retry.set()

    async def newest_seq_now(self) -> int:
        """The connected watch's newest seq at this moment, read from it (``Daemon.sync_now``
        then waits until the sync position is past it). ``LinkLostError`` when not connected."""
        if self._watch is None:
            raise LinkLostError(f"{self.address} is not connected")
        status = await self._watch.read_status()
        return status.newest_seq

    async def sync_once(self, *, scan_timeout: float) -> int:
        """Connect, backfill up to the watch's newest seq, disconnect; returns the sync position.

        Errors propagate: ``ConnectTimeoutError`` if the watch does not advertise within
        ``scan_timeout``, ``PairingLostError``, ``BleakError`` for a lost link.
        """
        try:
            await self._session(live=False, scan_timeout=scan_timeout)
        except PairingLostError as error:
            await self._failed(SyncState.PAIRING_LOST, str(error))
            raise
        except (BleakError, TimeoutError, ProtocolError) as error:
            await self._failed(None, str(error))  # the error itself reaches the caller
            raise
        self._set(SyncState.STOPPED)
        return self.sync_position

    async def _failed(self, state: SyncState | None, detail: str) -> None:
        """A session failed: the state says why, and so does ``status`` until one succeeds
        (unless the disk is full: then the running agent's own status says so)."""
        try:
            await asyncio.to_thread(self._store.store.set_sync_problem, self.address, detail)
        except StoreFullError as error:
            log.warning("%s: cannot record why the session failed: %s", self.address, error)
        if state is not None:
            self._set(state, detail)

    # --- one connection -------------------------------------------------------------

    async def _session(self, *, live: bool, scan_timeout: float | None) -> None:
        self._set(SyncState.WAITING)
        # Read afresh each session: a withdrawal or a profile correction applies at once.
        self._preferences = await asyncio.to_thread(self._preferences_source)
        device = await wait_for_advertising(self._transport, self.address, scan_timeout)
        self._set(SyncState.CONNECTING)
        lost = asyncio.Event()
        client = self._transport.client(device, lambda _: lost.set(), timeout=self._connect_timeout)
        await client.connect()
        try:
            await _unless(lost, self._converse(client, device.name, live), self.address)
        finally:
            self._stream = None
            self._watch = None
            self._live = False
            if self._relays is not None:
                self._relays.detach(self.address)
            with contextlib.suppress(BleakError):
                await client.disconnect()

    async def _record_device(self, info: DeviceInfo, name: str | None, **kind: Any) -> None:
        """What the watch says it is, kept with the device (``kind``: another personality's
        marks, such as InfiniTime's)."""
        await asyncio.to_thread(
            self._store.store.add_device,
            self.address,
            name=name,
            model=info.model,
            serial=info.serial,
            firmware=info.firmware,
            **kind,
        )

    async def _converse(self, client: BleakClient, name: str | None, live: bool) -> None:
        """One connection's work (another personality's engine has its own: InfiniTimeSync)."""
        watch = WatchClient(client, idle_timeout=self._idle_timeout)
        watch.check_profile(bluez_adapter=self._transport.bluez_adapter)
        status = await watch.read_status()  # the first protected read: encrypts from the bond
        self.newest_seq = status.newest_seq
        self._set(SyncState.CONFIGURING)
        await self._record_device(await watch.read_device_info(), name)
        if not await watch.set_clock(self._clock):
            log.info("%s: the watch keeps its own time (a simulated clock)", self.address)
        await self._configure(watch)
        self._watch = watch
        self.sync_position = await self._store.next_seq(self.address)
        self._acked_seq = self.sync_position - 1
        self._acked_at = asyncio.get_running_loop().time()
        await watch.subscribe_history(self._on_batch, self._on_status)
        if self._relays is not None:
            await self._relays.attach(watch)  # alerts and calls need not wait for backfill
        self._set(SyncState.BACKFILL, f"from seq {self.sync_position} to {status.newest_seq}")
        target = status.newest_seq
        while self.sync_position <= target:
            start = self.sync_position
            response = await self._pull(watch)
            if response.result is HistoryResult.NO_RECORDS:
                break
            if response.result is HistoryResult.SUCCESS and self.sync_position == start:
                raise WatchProtocolError(  # asking again would get the same answer forever
                    f"{self.address}: REPORT from {start} succeeded with nothing at or after"
                    f" it, though the watch reported seqs up to {target}"
                )
        self.backoff.reset()
        await asyncio.to_thread(self._store.store.set_sync_problem, self.address, None)
        if not live:
            return
        self._live = True
        self._set(SyncState.LIVE)
        while True:
            if await self._follow(watch):
                await self._pull(watch)  # closes the range the hole left open
            else:  # another central is reading: do not take it straight back
                await asyncio.sleep(LIVE_RETAKE_S)

    async def apply_preferences(self) -> None:
        """Consent or profile changed while running: it applies now, not next session.

        Records of a newly opted-out metric still in flight are dropped from here on, and
        a connected watch gets the new settings and profile at once (PR-WITHDRAW).
        """
        self._preferences = await asyncio.to_thread(self._preferences_source)
        if self._stream is not None:
            self._stream.opted_out = self._preferences.opted_out
        if self._watch is not None:
            try:
                await self._configure(self._watch)
            except (BleakError, TimeoutError, ProtocolError) as error:
                log.info("%s: settings not applied now (%s); next session", self.address, error)

    async def _configure(self, watch: WatchClient) -> None:
        """Profile and consent reach the watch before any new record is taken."""
        if self._preferences.profile is not None:
            await watch.write_profile(self._preferences.profile)
        current = await watch.read_metric_settings()
        wanted = self._preferences.wanted_settings(current)
        if wanted != current:
            await watch.write_metric_settings(wanted)

    # --- history --------------------------------------------------------------------

    def _on_batch(self, raw: bytes) -> None:
        if self._stream is not None:
            self._stream.add(raw)

    def _on_status(self, status: HistoryStatus) -> None:
        self.newest_seq = max(self.newest_seq, status.newest_seq)

    async def _pull(self, watch: WatchClient) -> HistoryResponse:
        """One REPORT from the sync position: store as groups arrive, acknowledge at the end."""
        stream = ReportStream(self.sync_position, self._preferences.opted_out, self._group_samples)
        self._stream = stream
        report = asyncio.ensure_future(watch.report(self.sync_position))
        # The group the store is committing, on its thread, while the next is decoded (an
        # agent fleet's store commits on the loop, ``OnLoop``: one after the other there).
        committing: asyncio.Future[None] | None = None

        async def commit_behind(group: Group) -> None:
            """Commit ``group`` once the commit in flight is done, and leave it in flight:
            the event loop decodes the next group (3-4 ms of Python per 8,192 samples)
            while the store commits this one, instead of the two taking turns."""
            nonlocal committing
            if committing is not None:
                await asyncio.shield(committing)  # a cancel here still lets it finish
            committing = asyncio.ensure_future(self._commit(group))
            await asyncio.sleep(0)  # it runs up to the store's queue: the thread starts on it

        try:
            while not report.done():
                await done_or_set(report, stream.ready)
                if stream.ready.is_set():
                    await commit_behind(stream.take_group())
            response = report.result()
            while stream.ready.is_set():  # a backlog the radio left: one group per commit
                await commit_behind(stream.take_group())
            if committing is not None:
                await committing
            if response.result is HistoryResult.SUCCESS:
                await self._await_late_records(stream, response.value)
        except BaseException as ended:
            if committing is not None:
                # A commit still under way moves the sync position, so nothing it stored
                # is fetched again; what ended the pull is the failure to tell.
                await asyncio.wait([committing])
                failed = None if committing.cancelled() else committing.exception()
                if failed is not None and failed is not ended:
                    log.warning("%s: a commit failed as the pull ended: %r", self.address, failed)
            raise
        finally:
            self._stream = None
            report.cancel()
        if response.result is HistoryResult.SUCCESS:
            await self._commit(stream.take(final_seq=await self._checked_end(stream, response)))
        elif response.result is HistoryResult.NO_RECORDS:
            await self._commit(stream.take())
            await self._account_missing(watch)
        elif response.result is HistoryResult.BUSY:
            await watch.abort()  # a REPORT we no longer listen to; the next pull restarts
        else:
            await self._commit(stream.take())
            raise WatchProtocolError(f"{self.address}: REPORT ended with {response.result.name}")
        await self._acknowledge_if_due(watch)
        return response

    async def _checked_end(self, stream: ReportStream, response: HistoryResponse) -> int:
        """A REPORT's last seq, once it is known to be one the watch assigned.

        Every seq up to it that did not arrive becomes a "not assigned" gap, so a value
        beyond the newest seq the watch reported (Status, or a record) would move the
        sync position past seqs it has yet to assign, and their records would be ignored. The
        records that did arrive are kept.
        """
        newest = max(self.newest_seq, stream.expected - 1)
        if response.value > newest:
            await self._commit(stream.take())
            raise WatchProtocolError(
                f"{self.address}: REPORT claims seqs up to {response.value}, beyond the"
                f" newest the watch reported ({newest})"
            )
        return response.value

    async def _follow(self, watch: WatchClient) -> bool:
        """One live REPORT: commit records as they land, acknowledge now and then.

        It ends when the watch ends it (another central's REPORT: returns False) or when
        a hole in the seqs stays open for ``LATE_RECORDS_S`` (a batch overtaken or lost on
        the way: the agent aborts it and returns True).
        """
        stream = ReportStream(self.sync_position, self._preferences.opted_out, self._group_samples)
        self._stream = stream
        report = asyncio.ensure_future(watch.report_live(self.sync_position))
        try:
            await self._commit_as_records_land(watch, stream, report)
            stalled = not report.done()
            if stalled:
                await watch.abort()  # the live REPORT's ABORTED response comes first
            response = await report
            if response.result is HistoryResult.ABORTED:
                await self._await_late_records(stream, response.value)
        finally:
            self._stream = None
            report.cancel()
        await self._commit(stream.take())
        if response.result is not HistoryResult.ABORTED:
            raise WatchProtocolError(
                f"{self.address}: live REPORT ended with {response.result.name}"
            )
        return stalled

    async def _commit_as_records_land(
        self, watch: WatchClient, stream: ReportStream, report: asyncio.Future[HistoryResponse]
    ) -> None:
        """Until the live REPORT ends, or returns early on a hole that stays open."""
        # The end wakes the wait for records too: one event, no task made per record.
        report.add_done_callback(lambda _: stream.arrived.set())
        while not report.done():
            if not stream.ready.is_set():  # a backlog of whole groups goes on at once
                hole = stream.hole_since
                left = None if hole is None else max(0.0, hole + LATE_RECORDS_S - time.monotonic())
                await sleep_unless(stream.arrived, left)
                if report.done():
                    return
                if not stream.arrived.is_set():
                    log.info("%s: seq %d did not arrive; re-reading", self.address, stream.expected)
                    return
            stream.arrived.clear()  # before the commit, which lets batches in
            await self._commit(stream.take_group() if stream.ready.is_set() else stream.take())
            await self._acknowledge_if_due(watch)

    async def _acknowledge_if_due(self, watch: WatchClient) -> None:
        if self._ack_due():
            if self._live:
                await self._store.make_durable()  # live commits did not sync (rule 2)
            await watch.delete_up_to(self.sync_position - 1)
            self._acked_seq = self.sync_position - 1
            self._acked_at = asyncio.get_running_loop().time()

    def _ack_due(self) -> bool:
        """Backfill acknowledges every REPORT; live, every ``LIVE_ACK_RECORDS`` or ``_S``."""
        unacked = self.sync_position - 1 - self._acked_seq
        if unacked <= 0:
            return False
        if not self._live or unacked >= LIVE_ACK_RECORDS:
            return True
        return asyncio.get_running_loop().time() - self._acked_at >= LIVE_ACK_S

    async def _await_late_records(self, stream: ReportStream, last_seq: int) -> None:
        """Let records the response overtook arrive before their range is closed.

        BlueZ holds notifications briefly to pack several into one PDU but sends an
        indication at once, so the REPORT's response can come before its last records
        (docs/bluez.md). Bounded: a seq still missing then was never sent.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LATE_RECORDS_S):
                while True:
                    stream.arrived.clear()  # before the commit, which lets batches in
                    await self._commit(stream.take())
                    if stream.expected > last_seq:
                        return
                    await stream.arrived.wait()

    async def _account_missing(self, watch: WatchClient) -> None:
        """Nothing at or after the sync position, yet the watch assigned seqs there: gone."""
        status = await watch.read_status()
        self.newest_seq = max(self.newest_seq, status.newest_seq)
        if status.newest_seq >= self.sync_position:
            await self._commit(
                Group([], [MissingSeqs(self.sync_position, status.newest_seq, DROPPED)])
            )

    async def _commit(self, group: Group) -> None:
        if group.repeated:
            log.warning(
                "%s: ignored %d history entries at seqs already accounted for",
                self.address,
                group.repeated,
            )
        if not group.samples and not group.gaps:
            return
        result = await self._store.store_batch(
            self.address, group.samples, group.gaps, durable=not self._live
        )
        if self.not_storing is not None:
            self.not_storing = None
            log.warning("%s: storing again: the disk has space", self.address)
        self.sync_position = result.next_seq
        self.newest_seq = max(self.newest_seq, self.sync_position - 1)  # live, no Status tells
        await self._observer.committed(
            Committed(self.address, result, group.samples, self.newest_seq)
        )


def _session_failed(error: BaseException) -> bool:
    """A session ended by the watch, the link or a full disk is tried again; a lost
    pairing needs a person (``pair``), anything else is a bug."""
    retried = (BleakError, TimeoutError, ProtocolError, StoreFullError)
    return isinstance(error, retried) and not isinstance(error, PairingLostError)


async def _unless(lost: asyncio.Event, work: Coroutine[Any, Any, T], address: str) -> T:
    """Run ``work`` unless the link drops first; then cancel it and raise ``LinkLostError``."""
    task = asyncio.ensure_future(work)
    dropped = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait({task, dropped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        dropped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled() or (lost.is_set() and task.exception() is not None):
        raise LinkLostError(f"{address} disconnected")
    return task.result()
