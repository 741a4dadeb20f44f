"""Time on a simulated watch and in the store (docs/protocol.md, Current Time).

A watch at speed N keeps its own timeline: the phone's Current Time write (real time)
is refused with CTS's "data field ignored". A watch at speed 1 takes the phone's time,
but its measurement timeline never steps back: set back, it holds until its clock has
passed what it measured. Either way a device's stored samples are in time order with
their seqs, and ``data --since T`` returns the samples measured at or after T.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bumble.link import LocalLink
from click.testing import CliRunner

from phoneagent.cli import main
from phoneagent.store import Store
from phoneagent.sync.discovery import pair_device
from protocol.metrics import Metric
from tests.integration.test_sync_engine import KEY, WAIT, Agent, Recorder, assert_exact
from watchsim.testing import TEST_START, LoopbackWatch, start_loopback_watch

ROUNDS = 4
# Simulated seconds the watch measures between two syncs: more than a minute, so that
# a phone at real time is always more than a minute behind a watch at speed 60.
BETWEEN_SYNCS_S = 90


def phone_clock(start: datetime) -> Callable[[], datetime]:
    """A phone whose clock reads ``start`` now and runs at real speed."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


async def measured_until(watch: LoopbackWatch, moment: int) -> None:
    """Until the watch has measured the simulated second ``moment`` (an append event)."""
    reached = asyncio.Event()
    model = watch.app.model

    def appended(_first: int, _last: int) -> None:
        if model.now >= moment:
            reached.set()

    unsubscribe = watch.history.subscribe(appended)
    try:
        if model.now < moment:
            async with asyncio.timeout(WAIT):
                await reached.wait()
    finally:
        unsubscribe()


async def paired(link: LocalLink, tmp_path: Path, **watch: Any) -> tuple[LoopbackWatch, Agent]:
    """A seeded loopback watch (``watch``: speed, backfill) and an agent paired with it."""
    started = await start_loopback_watch(link, tmp_path / "watch", seed=7, **watch)
    agent = await Agent.start(link, tmp_path / "agent", started)
    await pair_device(agent.transport, agent.store, started.address, scan_timeout=WAIT)
    return started, agent


def assert_in_time_order(store: Store, address: str) -> None:
    """Timestamps never step back by seq; heart rate (1 Hz) never twice in a second."""
    by_seq = sorted(store.iter_samples(address), key=lambda s: s.seq)
    assert by_seq
    assert [(a, b) for a, b in itertools.pairwise(by_seq) if b.timestamp < a.timestamp] == []
    heart = [s.timestamp for s in by_seq if s.metric is Metric.HEART_RATE]
    assert len(heart) == len(set(heart))


def data_since(data_dir: Path, key: Path, since: int) -> list[int]:
    """The seqs ``phoneagent data --since`` lists."""
    args = ["--data-dir", str(data_dir), "--key-file", str(key), "data", "--since", str(since)]
    result = CliRunner().invoke(main, [*args, "--format", "csv"], env={"PHONEAGENT_DB_KEY": ""})
    assert result.exit_code == 0, result.output
    return [int(row["seq"]) for row in csv.DictReader(io.StringIO(result.output))]


async def test_speed_60_keeps_its_timeline_across_reconnects(
    link: LocalLink, tmp_path: Path
) -> None:
    """The issue's case: a phone at real time syncs a watch at speed 60 again and again."""
    watch, agent = await paired(link, tmp_path, speed=60, backfill=timedelta(minutes=5))
    recorder = Recorder(watch)
    phone = phone_clock(TEST_START)  # the phone starts where the watch does
    first_round_newest = 0
    for round_ in range(ROUNDS):
        await agent.sync(watch.address, clock=phone).sync_once(scan_timeout=WAIT)
        if round_ == 0:
            first_round_newest = max(s.timestamp for s in agent.store.iter_samples(watch.address))
        await measured_until(watch, watch.app.model.now + BETWEEN_SYNCS_S)
    await agent.sync(watch.address, clock=phone).sync_once(scan_timeout=WAIT)
    assert_exact(agent.store, watch.address, recorder)
    assert_in_time_order(agent.store, watch.address)
    # The watch's clock is its own: start + 60 x the real time since, never the phone's.
    assert any("phone's time not taken" in line for line in watch.app.events)
    assert watch.app.clock.now() > phone().timestamp() + ROUNDS * BETWEEN_SYNCS_S

    # --since T means the watch's measurement time: exactly the samples measured from
    # the first one stamped T on (seq order is measurement order).
    since = first_round_newest
    all_by_seq = sorted(agent.store.iter_samples(watch.address), key=lambda s: s.seq)
    first = next(s.seq for s in all_by_seq if s.timestamp >= since)
    await agent.stop()
    await watch.stop()
    key = tmp_path / "agent.key"
    key.write_text(KEY.material)
    key.chmod(0o600)
    listed = data_since(tmp_path / "agent", key, since)
    assert sorted(listed) == [s.seq for s in all_by_seq if s.seq >= first]


async def test_a_phone_behind_the_watch_sets_it_back_and_the_watch_holds(
    link: LocalLink, tmp_path: Path
) -> None:
    """A watch at real speed whose clock ran 10 min ahead: the phone's time is taken, and
    nothing is measured again until the clock has passed the newest measured second."""
    watch, agent = await paired(link, tmp_path, backfill=timedelta(minutes=15))
    recorder = Recorder(watch)
    behind = TEST_START - timedelta(minutes=10)
    await agent.sync(watch.address, clock=phone_clock(behind)).sync_once(scan_timeout=WAIT)
    measured = watch.app.model.now
    assert measured >= TEST_START.timestamp()  # held: the timeline did not step back
    assert behind.timestamp() <= watch.app.clock.now() < behind.timestamp() + WAIT
    resumes = datetime.fromtimestamp(measured + 1, UTC).strftime("%H:%M:%S")
    assert any(f"measuring resumes at {resumes}" in line for line in watch.app.events)

    # Later the phone corrects it forward past the hold: measuring goes on from there.
    ahead = TEST_START + timedelta(minutes=5)
    await agent.sync(watch.address, clock=phone_clock(ahead)).sync_once(scan_timeout=WAIT)
    await measured_until(watch, int(ahead.timestamp()) + 3)
    await agent.sync(watch.address, clock=phone_clock(ahead)).sync_once(scan_timeout=WAIT)
    assert_exact(agent.store, watch.address, recorder)
    assert_in_time_order(agent.store, watch.address)
    await agent.stop()
    await watch.stop()


async def test_a_restarted_simulated_watch_continues_its_timeline(
    link: LocalLink, tmp_path: Path
) -> None:
    """``watchsim run --speed 60`` stopped and run again on its state dir: the clock starts
    after the newest record, even once the phone has had every record freed."""
    watch, agent = await paired(link, tmp_path, speed=60)
    await measured_until(watch, int(TEST_START.timestamp()) + BETWEEN_SYNCS_S)
    await watch.app.stop_measuring()
    await agent.sync(watch.address).sync_once(scan_timeout=WAIT)
    assert watch.history.count == 0  # all acknowledged and freed
    newest = max(s.timestamp for s in agent.store.iter_samples(watch.address))
    await watch.stop()

    again = await start_loopback_watch(link, tmp_path / "watch", seed=7, speed=60)
    assert again.app.clock.now() > newest
    await measured_until(again, newest + BETWEEN_SYNCS_S)
    await again.app.stop_measuring()
    await agent.sync(again.address).sync_once(scan_timeout=WAIT)
    assert agent.store.next_seq(again.address) == again.history.next_seq
    assert_in_time_order(agent.store, again.address)
    await agent.stop()
    await again.stop()


async def test_the_store_keeps_the_stamps_of_a_watch_that_steps_back(
    link: LocalLink, tmp_path: Path
) -> None:
    """Not our watch's way, but the format carries it: the store neither re-stamps nor
    reorders, and ``--since`` selects by the watch's stamp (docs/protocol.md)."""
    watch, agent = await paired(link, tmp_path)
    await watch.app.stop_measuring()
    t0 = int(TEST_START.timestamp()) + 3600
    stamps = [t0, t0 + 1, t0 + 2, t0 - 60, t0 - 59]  # a clock set back a minute, not held
    seqs = watch.history.append((t, Metric.HEART_RATE, 70) for t in stamps)
    await agent.sync(watch.address).sync_once(scan_timeout=WAIT)
    stored = {s.seq: s.timestamp for s in agent.store.iter_samples(watch.address)}
    assert [stored[seq] for seq in seqs] == stamps
    since = [s.seq for s in agent.store.iter_samples(watch.address, since=t0 - 59)]
    assert since == [seqs[4], seqs[0], seqs[1], seqs[2]]  # in time order, then seq
    await agent.stop()
    await watch.stop()
