"""The agent with an InfiniTime watch over loopback (issue 20): the watch is
``--personality infinitime`` unmodified; the agent finds it by name, pairs it (no bond:
the watch never asks for one), runs its engine from the daemon, stores live values as
per-minute records, relays a notification, a call and music through the permission gate
in InfiniTime's formats, and the export shows the records as live-derived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bumble.link import LocalLink

from phoneagent.control import request
from phoneagent.daemon import Daemon
from phoneagent.privacy.audit import FAIL, PASS, audit
from phoneagent.privacy.export import rows
from phoneagent.relays.permissions import Feature, set_permission
from phoneagent.relays.service import RelayService
from phoneagent.store import LIVE_PER_MINUTE, Store
from phoneagent.sync import Committed, SyncPreferences, SyncState, fixed_preferences
from phoneagent.sync.discovery import pair_device, scan
from phoneagent.sync.infinitime import InfiniTimeSync
from phoneagent.sync.minutes import SLOTS
from protocol.metrics import Metric, Sample
from tests.integration.test_relays import Screen, States
from tests.integration.test_sync_engine import WAIT, Agent
from watchsim.control import request as ctl
from watchsim.controlops import Music, Press
from watchsim.testing import start_loopback_watch

SCAN_S = 0.5  # a scan window is a duration: the watch advertises many times within it


class Commits(States):
    """States, and the metrics of the per-minute records committed so far."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: set[Metric] = set()
        self.samples: list[Sample] = []
        self._stored = asyncio.Event()

    async def committed(self, commit: Committed) -> None:
        self.metrics |= {s.metric for s in commit.samples}
        self.samples += commit.samples
        self._stored.set()

    async def next_commit(self) -> None:
        self._stored.clear()
        await self._stored.wait()

    async def stored(self, metrics: set[Metric]) -> None:
        async with asyncio.timeout(WAIT):
            while not metrics <= self.metrics:
                self._stored.clear()
                await self._stored.wait()


async def test_infinitime_watch_paired_synced_per_minute_and_relayed(
    link: LocalLink, tmp_path: Path
) -> None:
    # 60 times real speed: a minute of the watch's (and the agent's) clock in a second.
    watch = await start_loopback_watch(
        link,
        tmp_path / "watch",
        name="InfiniTime",
        personality="infinitime",
        scenario="workout",
        speed=60.0,
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    data_dir = tmp_path / "agent"
    relays = RelayService(agent.store, data_dir, dbus=False)
    await relays.start()
    stop = asyncio.Event()
    running: asyncio.Task[Any] | None = None
    try:
        (seen,) = [s for s in await scan(agent.transport, SCAN_S) if s.address == watch.address]
        assert (seen.name, seen.watch) == ("InfiniTime", True)
        record = await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
        assert (record.personality, record.live_derived, record.firmware) == (
            "infinitime",
            True,
            "1.15.0",
        )
        assert agent.store.list_bonds() == []  # InfiniTime never asked for one
        for feature in Feature:
            set_permission(agent.store, feature, True)
        await relays.reload()

        commits = Commits()
        daemon = Daemon(
            agent.transport,
            agent.astore,
            fixed_preferences(SyncPreferences()),
            observer=commits,
            relays=relays.hub,
            clock=lambda: datetime.fromtimestamp(watch.app.clock.now(), UTC),
        )
        running = asyncio.create_task(daemon.run(stop))
        await commits.reach(SyncState.LIVE)
        assert isinstance(daemon.syncs[watch.address], InfiniTimeSync)
        await commits.stored({Metric.HEART_RATE, Metric.STEPS})

        screen = Screen(watch)
        state_dir = watch.app.config.state_dir
        sent = await request(
            data_dir, {"op": "notify", "app": "chat", "title": "Ann", "body": "Hi"}
        )
        assert sent["result"] == "delivered"
        await screen.until(lambda s: "Ann / Hi" in s["notifications"], "the notification")

        ringing = await request(data_dir, {"op": "call", "state": "incoming", "caller": "Mum"})
        await screen.until(lambda s: (s["call"] or {}).get("caller") == "Mum", "the call")
        pressed: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        relays.inject.action_listeners.append(pressed.put_nowait)
        await ctl(state_dir, Press("accept"))
        async with asyncio.timeout(WAIT):
            assert await pressed.get() == {"key": ringing["key"], "action": "accept"}
        # InfiniTime has no "call ended": the agent says so in a short alert.
        await request(data_dir, {"op": "call", "state": "ended", "key": ringing["key"]})
        await screen.until(lambda s: "Call ended" in s["notifications"], "the call's end")
        second = await request(data_dir, {"op": "call", "state": "incoming", "caller": "Bob"})
        await screen.until(lambda s: (s["call"] or {}).get("caller") == "Bob", "the second call")
        await request(data_dir, {"op": "call", "state": "missed", "key": second["key"]})
        await screen.until(lambda s: "Missed call / Bob" in s["notifications"], "the missed call")

        music = {"op": "music", "playback": "playing", "title": "Song", "artist": "Band"}
        await request(data_dir, {**music, "position_s": 70, "duration_s": 200})
        status = await screen.until(lambda s: s["music"]["track"] == "Song", "the song")
        assert status["music"] | {"playing": True, "artist": "Band"} == status["music"]
        assert (status["music"]["position_s"], status["music"]["length_s"]) == (70, 200)
        await ctl(state_dir, Music("pause"))
        async with asyncio.timeout(WAIT):
            assert await pressed.get() == {"key": "music", "action": "pause"}

        stop.set()
        await asyncio.wait_for(running, WAIT)
        samples = list(rows(agent.store, "samples"))
        assert samples and {s["source"] for s in samples} == {LIVE_PER_MINUTE}
        assert {s["metric"] for s in samples} == {"heart_rate", "steps"}
        # One record per (minute, metric), each at the start of its minute.
        keys = [(s["seq"] // SLOTS, s["metric"]) for s in samples]
        assert len(keys) == len(set(keys))
        assert all(s["time"].endswith(":00+00:00") for s in samples)
        (device,) = rows(agent.store, "devices")
        assert (device["personality"], device["live_derived"]) == ("infinitime", True)
    finally:
        stop.set()
        if running is not None and not running.done():
            running.cancel()
        await relays.aclose()
        await agent.stop()
        await watch.stop()


async def test_a_minute_is_stored_when_it_ends_though_the_watch_goes_quiet(
    link: LocalLink, tmp_path: Path
) -> None:
    """The watch stops sending (InfiniTime notifies steps only when they change): the
    minute it was in is stored once the phone's clock is past it, while still connected,
    not only when a later value arrives or the link ends."""
    watch = await start_loopback_watch(
        link, tmp_path / "watch", name="InfiniTime", personality="infinitime", speed=60.0
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    stop = asyncio.Event()
    running: asyncio.Task[Any] | None = None
    try:
        await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
        commits = Commits()

        def clock() -> datetime:
            return datetime.fromtimestamp(watch.app.clock.now(), UTC)

        daemon = Daemon(
            agent.transport,
            agent.astore,
            fixed_preferences(SyncPreferences()),
            observer=commits,
            clock=clock,
        )
        running = asyncio.create_task(daemon.run(stop))
        await commits.stored({Metric.HEART_RATE})
        await watch.app.stop_measuring()
        quiet_from = int(clock().timestamp()) // 60  # the minute the last values are in
        async with asyncio.timeout(WAIT):
            while max(s.seq // SLOTS for s in commits.samples) < quiet_from:
                await commits.next_commit()
        assert daemon.syncs[watch.address].state is SyncState.LIVE  # still connected
    finally:
        stop.set()
        if running is not None and not running.done():
            running.cancel()
        await agent.stop()
        await watch.stop()


def link_check(store: Store) -> str:
    return {c.id: c.status for c in audit(store, store.path.parent)}["PR-LINK"]


async def test_bonding_on_request_encrypts_and_the_audit_says_when_it_does_not(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(
        link, tmp_path / "watch", name="InfiniTime", personality="infinitime"
    )
    agent = await Agent.start(link, tmp_path / "agent", watch)
    try:
        await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT)
        assert link_check(agent.store) == FAIL  # live values and relays cross unencrypted
        await pair_device(agent.transport, agent.store, watch.address, scan_timeout=WAIT, bond=True)
        assert agent.store.list_bonds() == [watch.address]  # the passkey the watch showed
        assert link_check(agent.store) == PASS
        # A one-shot sync on the bonded link (the backend encrypts with the bond before
        # anything is read) sets the clock and stores nothing: there is no history.
        sync = InfiniTimeSync(
            watch.address, agent.transport, agent.astore, fixed_preferences(SyncPreferences())
        )
        await sync.sync_once(scan_timeout=WAIT)
        assert agent.store.counts() == {}
    finally:
        await agent.stop()
        await watch.stop()
