"""The sync engine end to end over loopback: a watchsim watch, real SQLCipher files.

Every test ends by comparing the store with every sample the watch ever generated
(recorded straight from the watch's history as it appends), so a lost, duplicated or
altered sample fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bumble.controller import Controller
from bumble.link import LocalLink

from phoneagent.daemon import Daemon
from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import (
    Committed,
    DeviceSync,
    LinkLostError,
    StoreBonds,
    SyncObserver,
    SyncPreferences,
    SyncState,
    engine,
    fixed_preferences,
)
from phoneagent.sync.discovery import pair_device
from phoneagent.sync.stream import OPTED_OUT
from phoneagent.transport import BumbleRadio, PairingLostError, Transport, radio_transport
from protocol.history import decode_batch
from protocol.metrics import Metric, Sample
from protocol.settings import Sex, UserProfile
from tests.integration.conftest import checkpointed_sync_positions
from watchsim.testing import LoopbackWatch, start_loopback_watch

KEY = DbKey("0f" * 32)
WAIT = 30.0


class Recorder:
    """Every sample the watch's history ever held, captured as it is appended."""

    def __init__(self, watch: LoopbackWatch) -> None:
        self.watch = watch
        self.samples: dict[int, Sample] = {}
        self.attach()

    def attach(self) -> None:
        """(Re-)attach to the current history handle: after start and after each reboot."""
        history = self.watch.history
        start = max(self.samples, default=0) + 1
        for entry in history.iter_from(start):
            if isinstance(entry, Sample):
                self.samples[entry.seq] = entry

        def appended(first: int, last: int) -> None:
            for sample in history.read(first, last - first + 1).samples:
                self.samples[sample.seq] = sample

        history.subscribe(appended)


class QueueAgent:
    """Types the passkey the watch shows (or compares its number), within ``wait`` s."""

    def __init__(self, watch: LoopbackWatch, wait: float = WAIT) -> None:
        self._watch = watch
        self._wait = wait

    async def enter_passkey(self, peer: str) -> int | None:
        async with asyncio.timeout(self._wait):
            return await self._watch.passkeys.get()

    async def confirm_number(self, peer: str, number: int) -> bool:
        async with asyncio.timeout(self._wait):
            return await self._watch.passkeys.get() == number


class Agent:
    """One agent instance: its own store object and radio over the same files."""

    def __init__(
        self, store: Store, radio: BumbleRadio, link: LocalLink, controllers: set[Controller]
    ) -> None:
        self.store = store
        self._link = link
        self._controllers = controllers
        self.astore = AsyncStore(store)
        self.radio = radio
        self.transport: Transport = radio_transport(radio)

    @classmethod
    async def start(cls, link: LocalLink, directory: Path, watch: LoopbackWatch) -> Agent:
        store = Store.open(directory, KEY)
        before = set(link.controllers)
        radio = await BumbleRadio.on_link(link, bonds=StoreBonds(store), agent=QueueAgent(watch))
        return cls(store, radio, link, set(link.controllers) - before)

    def sync(self, address: str, **kwargs: object) -> DeviceSync:
        preferences = kwargs.pop("preferences", SyncPreferences())
        assert isinstance(preferences, SyncPreferences)
        source = fixed_preferences(preferences)
        return DeviceSync(address, self.transport, self.astore, source, **kwargs)  # type: ignore[arg-type]

    async def settle(self) -> None:
        """Until the store calls of engines just stopped are done: a cancelled engine's
        commit still runs to its end on the store's one thread, and this call queues
        behind it."""
        await self.astore.pool.run(lambda: None)

    async def stop(self) -> None:
        """Like a process exit: the radio's controller leaves the air, the store closes."""
        await self.radio.close()
        for controller in self._controllers:
            self._link.remove_controller(controller)
        await self.astore.aclose()


class Hook(SyncObserver):
    """Runs ``action`` once, at the first commit (after commit, before the acknowledgement)."""

    def __init__(self, action: Callable[[Committed], Awaitable[None]]) -> None:
        self._action: Callable[[Committed], Awaitable[None]] | None = action
        self.commits = 0

    async def committed(self, commit: Committed) -> None:
        self.commits += 1
        action, self._action = self._action, None
        if action is not None:
            await action(commit)


async def sync_cut_by(
    agent: Agent, watch: LoopbackWatch, event: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """A sync that loses its link because the watch does ``event`` at the first commit
    (after the commit, before the acknowledgement); returns once ``event`` has ended.

    ``event`` runs as the watch's own task: the agent cancelling its work must not cancel it.
    """
    started: list[asyncio.Task[None]] = []

    async def at_commit(_: Committed) -> None:
        started.append(asyncio.create_task(event()))
        await asyncio.shield(started[0])

    with pytest.raises(LinkLostError):
        await agent.sync(watch.address, observer=Hook(at_commit), group_samples=2000).sync_once(
            scan_timeout=WAIT
        )
    await started[0]


async def synced_to_the_end(agent: Agent, watch: LoopbackWatch, recorder: Recorder) -> None:
    """One more sync leaves the store holding exactly what the watch generated; both stop."""
    await agent.sync(watch.address).sync_once(scan_timeout=WAIT)
    assert_exact(agent.store, watch.address, recorder)
    await agent.stop()
    await watch.stop()


class Crash(Exception):
    """Stands in for kill -9 between the store's commit and DELETE_UP_TO."""


def assert_exact(store: Store, address: str, recorder: Recorder) -> None:
    """Stored = recorded below the sync position; nothing else stored; no gap (issue 16 item 7:
    a lossless sync recorded the never-assigned seq 0 as one)."""
    position = store.next_seq(address)
    stored = {s.seq: s.sample for s in store.iter_samples(address)}
    expected = {seq: s for seq, s in recorder.samples.items() if seq < position}
    assert stored == expected
    assert store.gaps(address) == []


async def paired(link: LocalLink, tmp_path: Path, hours: float = 24) -> tuple[LoopbackWatch, Agent]:
    watch = await start_loopback_watch(
        link, tmp_path / "watch", seed=3, backfill=timedelta(hours=hours)
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    return watch, agent


async def test_backfill_restart_and_continue(link: LocalLink, tmp_path: Path) -> None:
    watch, agent = await paired(link, tmp_path)
    recorder = Recorder(watch)
    generated = len(recorder.samples)
    assert generated > 80_000  # 24 h of ~1 Hz heart rate plus the other metrics
    await agent.sync(watch.address).sync_once(scan_timeout=WAIT)
    assert_exact(agent.store, watch.address, recorder)
    counts = agent.store.counts()[watch.address]
    assert set(counts) == set(Metric)
    assert sum(counts.values()) >= generated
    await agent.stop()

    again = await Agent.start(link, tmp_path / "agent", watch)  # same files, new objects
    newest = watch.history.next_seq - 1
    await again.sync(watch.address).sync_once(scan_timeout=WAIT)
    assert again.store.next_seq(watch.address) > newest
    assert_exact(again.store, watch.address, recorder)
    await again.stop()
    await watch.stop()


async def test_disconnect_mid_backfill(link: LocalLink, tmp_path: Path) -> None:
    watch, agent = await paired(link, tmp_path, hours=6)
    recorder = Recorder(watch)

    await sync_cut_by(agent, watch, lambda: watch.app.out_of_range(1))
    assert 0 < agent.store.next_seq(watch.address) < max(recorder.samples)
    await synced_to_the_end(agent, watch, recorder)


async def test_crash_between_commit_and_ack(link: LocalLink, tmp_path: Path) -> None:
    watch, agent = await paired(link, tmp_path, hours=6)
    recorder = Recorder(watch)

    async def crash(_: Committed) -> None:
        raise Crash

    with pytest.raises(Crash):
        await agent.sync(watch.address, observer=Hook(crash), group_samples=2000).sync_once(
            scan_timeout=WAIT
        )
    committed = agent.store.next_seq(watch.address)
    assert committed > 0
    assert watch.history.oldest_seq == 1  # nothing was acknowledged, so nothing was freed
    await agent.stop()

    again = await Agent.start(link, tmp_path / "agent", watch)
    await synced_to_the_end(again, watch, recorder)


async def test_watch_reboots_mid_sync(link: LocalLink, tmp_path: Path) -> None:
    watch, agent = await paired(link, tmp_path, hours=6)
    recorder = Recorder(watch)

    await sync_cut_by(agent, watch, watch.reboot)
    recorder.attach()
    await synced_to_the_end(agent, watch, recorder)


async def test_opted_out_metric_is_switched_off_and_dropped__PR_OPTOUT(
    link: LocalLink, tmp_path: Path
) -> None:
    """PR-OPTOUT: SpO2 is switched off on the watch and its records never reach the store."""
    watch, agent = await paired(link, tmp_path, hours=2)
    recorder = Recorder(watch)
    preferences = SyncPreferences(opted_out=frozenset({Metric.SPO2}))
    await agent.sync(watch.address, preferences=preferences).sync_once(scan_timeout=WAIT)
    assert Metric.SPO2 not in agent.store.counts()[watch.address]
    stored = {s.seq for s in agent.store.iter_samples(watch.address)}
    position = agent.store.next_seq(watch.address)
    spo2 = {
        seq for seq, s in recorder.samples.items() if s.metric is Metric.SPO2 and seq < position
    }
    assert spo2 and not spo2 & stored
    dropped = {
        seq
        for g in agent.store.gaps(watch.address)
        if g.reason == OPTED_OUT
        for seq in range(g.first_seq, g.last_seq + 1)
    }
    assert dropped == spo2
    assert not watch.app.model.settings(Metric.SPO2).enabled
    await agent.stop()
    await watch.stop()


async def test_factory_reset_watch_means_pairing_lost(link: LocalLink, tmp_path: Path) -> None:
    watch, agent = await paired(link, tmp_path, hours=1)
    await watch.app.factory_reset()
    sync = agent.sync(watch.address)
    with pytest.raises(PairingLostError, match="pair again"):
        await sync.sync_once(scan_timeout=WAIT)
    assert sync.state is SyncState.PAIRING_LOST
    await agent.stop()
    await watch.stop()


class CaughtUp(SyncObserver):
    """Sets ``done`` once every watch reached the live state."""

    def __init__(self, count: int) -> None:
        self.live: set[str] = set()
        self.count = count
        self.done = asyncio.Event()

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        if state is SyncState.LIVE:
            self.live.add(device)
        if len(self.live) == self.count:
            self.done.set()


async def test_daemon_syncs_two_watches_independently(link: LocalLink, tmp_path: Path) -> None:
    first, agent = await paired(link, tmp_path / "a", hours=2)
    second = await start_loopback_watch(
        link, tmp_path / "b", seed=4, name="Second", backfill=timedelta(hours=3)
    )
    agent.radio.agent = QueueAgent(second)
    await pair_device(agent.transport, agent.store, second.address, scan_timeout=WAIT)
    recorders = {first.address: Recorder(first), second.address: Recorder(second)}
    observer = CaughtUp(2)
    stop = asyncio.Event()
    daemon = Daemon(
        agent.transport,
        agent.astore,
        fixed_preferences(SyncPreferences()),
        observer=observer,
        seed=1,
    )
    running = asyncio.create_task(daemon.run(stop))
    async with asyncio.timeout(WAIT):
        await observer.done.wait()
    stop.set()
    states = await running
    await agent.settle()
    assert set(states) == set(recorders)
    for address, recorder in recorders.items():
        assert_exact(agent.store, address, recorder)
        assert agent.store.next_seq(address) > 3000
    await agent.stop()
    await first.stop()
    await second.stop()


class Progress(SyncObserver):
    """What the daemon did, awaited through its events: live watches and committed seqs."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.sync_position: dict[str, int] = {}
        self.stored: list[tuple[str, Sample]] = []
        self._changed = asyncio.Event()

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        if state is SyncState.LIVE:
            self.live.add(device)
        self._changed.set()

    async def committed(self, commit: Committed) -> None:
        self.sync_position[commit.device] = commit.result.next_seq
        self.stored.extend((commit.device, sample) for sample in commit.samples)
        self._changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not check():
                self._changed.clear()
                await self._changed.wait()


async def test_daemon_applies_a_withdrawal_and_a_new_pairing_while_running__PR_WITHDRAW(
    link: LocalLink, tmp_path: Path
) -> None:
    """PR-WITHDRAW, PR-OPTOUT: withdrawn heart rate is off on the connected watch as soon
    as ``reload`` returns and no later heart-rate record is stored; a watch paired while
    the daemon runs is synced without a restart."""
    watch = await start_loopback_watch(
        link,
        tmp_path / "watch",
        seed=3,
        backfill=timedelta(minutes=10),
        speed=120,
        scenario="workout",  # worn whatever hour the phone sets the clock to
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    wanted = [SyncPreferences()]
    progress = Progress()
    stop = asyncio.Event()
    daemon = Daemon(agent.transport, agent.astore, lambda: wanted[-1], observer=progress, seed=1)
    running = asyncio.create_task(daemon.run(stop))
    await progress.until(lambda: watch.address in progress.live)

    second = await start_loopback_watch(
        link,
        tmp_path / "second",
        seed=4,
        name="Second",
        backfill=timedelta(minutes=30),
        scenario="workout",  # worn throughout: the default day charges at 19:30
    )
    agent.radio.agent = QueueAgent(second)
    await pair_device(agent.transport, agent.store, second.address, scan_timeout=WAIT)
    wanted.append(SyncPreferences(opted_out=frozenset({Metric.HEART_RATE})))
    await daemon.reload()
    assert not watch.app.model.settings(Metric.HEART_RATE).enabled
    withdrawn_at = progress.sync_position[watch.address]
    # Live records keep coming (the other metrics); the new watch catches up.
    await progress.until(
        lambda: (
            second.address in progress.live
            and progress.sync_position[watch.address] > withdrawn_at + 10
        )
    )
    stop.set()
    await running
    late = [
        s
        for device, s in progress.stored
        if device == watch.address and s.metric is Metric.HEART_RATE and s.seq >= withdrawn_at
    ]
    assert late == []
    assert Metric.HEART_RATE not in agent.store.counts()[second.address]
    assert agent.store.next_seq(second.address) > 1000
    await agent.stop()
    await watch.stop()
    await second.stop()


async def test_sync_sets_the_watch_clock_and_sends_the_profile__PR_CORRECT(
    link: LocalLink, tmp_path: Path
) -> None:
    """The phone's clock and the account's (corrected) profile reach the watch model."""
    watch = await start_loopback_watch(
        link, tmp_path / "watch", seed=3, start_time=datetime(2020, 1, 1, tzinfo=UTC)
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    phone_now = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    # The phone's clock moves on while the zone is written: the time the watch gets is
    # read after that round trip, right before its own write.
    readings = iter([phone_now - timedelta(hours=1), phone_now])
    profile = UserProfile(age_years=52, sex=Sex.MALE, height_cm=181, weight_decikg=873)
    sync = agent.sync(
        watch.address,
        preferences=SyncPreferences(profile=profile),
        clock=lambda: next(readings, phone_now),
    )
    await sync.sync_once(scan_timeout=WAIT)
    # Set to the phone's time (the watch clock runs on from there at its own speed).
    assert phone_now.timestamp() <= watch.app.clock.now() < phone_now.timestamp() + WAIT
    user = watch.app.model.user
    assert (user.age, user.sex.name, user.height_cm, user.weight_kg) == (52, "MALE", 181, 87.3)
    await agent.stop()
    await watch.stop()


async def _live_sync_with(
    link: LocalLink, tmp_path: Path, deliver: Callable[[Callable[[bytes], None], bytes], None]
) -> tuple[LoopbackWatch, Agent, Recorder, Progress, asyncio.Task[None]]:
    """A watch measuring fast and an agent syncing it live, every records notification
    passing through ``deliver(on_batch, raw)`` on its way into the engine."""
    watch = await start_loopback_watch(
        link, tmp_path / "watch", seed=3, backfill=timedelta(minutes=10), speed=60
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
    recorder = Recorder(watch)
    progress = Progress()
    sync = agent.sync(watch.address, observer=progress)
    on_batch = sync._on_batch
    sync._on_batch = lambda raw: deliver(on_batch, raw)  # type: ignore[method-assign]
    return watch, agent, recorder, progress, asyncio.create_task(sync.run())


async def _stop_and_check(
    watch: LoopbackWatch, agent: Agent, recorder: Recorder, running: asyncio.Task[None]
) -> None:
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    await agent.settle()
    assert_exact(agent.store, watch.address, recorder)
    await agent.stop()
    await watch.stop()


async def test_a_live_batch_lost_on_the_way_is_read_again(
    link: LocalLink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The live REPORT never closes its range: a batch that never arrives holds the
    ones after it until LATE_RECORDS_S, then a plain REPORT from the sync position reads it."""
    monkeypatch.setattr(engine, "LATE_RECORDS_S", 0.2)
    lost: list[int] = []

    def lose_one_live_batch(on_batch: Callable[[bytes], None], raw: bytes) -> None:
        first = decode_batch(raw).entries[0]
        if not lost and progress.live and isinstance(first, Sample):
            lost.append(first.seq)
            return
        on_batch(raw)

    watch, agent, recorder, progress, running = await _live_sync_with(
        link, tmp_path, lose_one_live_batch
    )
    with caplog.at_level(logging.INFO, logger="phoneagent.sync.engine"):
        await progress.until(
            lambda: bool(lost) and progress.sync_position[watch.address] > lost[0] + 100
        )
    await _stop_and_check(watch, agent, recorder, running)
    assert f"seq {lost[0]} did not arrive; re-reading" in caplog.text


async def test_live_the_watch_frees_only_records_already_in_the_database_file(
    link: LocalLink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live commits skip the fsync (the watch still holds their records); before each
    DELETE_UP_TO the engine makes them durable, so whatever the watch frees is already
    in the store's database file, not only in its write-ahead log."""
    watch, agent, recorder, progress, running = await _live_sync_with(
        link, tmp_path, lambda on_batch, raw: on_batch(raw)
    )
    freed: list[tuple[int, int]] = []  # (seq freed up to, sync position in the file then)
    delete_up_to = watch.history.delete_up_to

    def checked(seq: int) -> int:
        if progress.live:
            in_file = checkpointed_sync_positions(tmp_path / "agent", KEY)
            freed.append((seq, in_file.get(watch.address, 0)))
        return delete_up_to(seq)

    monkeypatch.setattr(watch.history, "delete_up_to", checked)
    await progress.until(lambda: len(freed) >= 3)
    await _stop_and_check(watch, agent, recorder, running)
    assert all(seq < position for seq, position in freed), freed


async def test_live_batches_out_of_order_are_stored_in_order(
    link: LocalLink, tmp_path: Path
) -> None:
    """As BlueZ's EATT bearers can deliver them: each one held back until the next."""
    held: list[bytes] = []
    swapped = 0

    def swap_pairs(on_batch: Callable[[bytes], None], raw: bytes) -> None:
        nonlocal swapped
        if not progress.live:
            on_batch(raw)
        elif not held:
            held.append(raw)
        else:
            on_batch(raw)
            on_batch(held.pop())
            swapped += 1

    watch, agent, recorder, progress, running = await _live_sync_with(link, tmp_path, swap_pairs)
    await progress.until(lambda: bool(progress.live))
    mark = progress.sync_position[watch.address]
    await progress.until(lambda: progress.sync_position[watch.address] > mark + 300)
    await _stop_and_check(watch, agent, recorder, running)
    assert swapped > 10
