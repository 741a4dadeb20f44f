"""Many agents in one process, one per simulated watch: a load generator for ingest.

Each agent is what one phone runs: its own data dir with an encrypted store (own key),
own account and therefore own user pseudonym, own random static radio address on the
air, own bond with its watch, own sync engine and own MQTT uploader. Only the process
and its event loop are shared, and the agents' store calls run on that loop (``OnLoop``)
where a phone's daemon hands each to its store thread; a real fleet of phones shares
nothing. What this measures per agent is an agent's work without that hand-over
(``docs/scaling.md``).

The watches come from a fleet manifest (``watchsim fleet`` writes one: names, addresses,
control sockets, the timeline of their clocks). Pairing is the product's own LE Secure
Connections pairing with MITM protection: the passkey is read off each watch's screen
through its control channel, as a tester would read it, never skipped.

An agent whose air connection drops (the air restarted) closes its radio and opens a new
one with back-off; its uploader keeps running from its own upload position meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import resource
import shutil
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import tomli_w

from heapkit import back_in_background, freeze_long_lived, hold_full_collections
from phoneagent.backoff import Backoff
from phoneagent.config import CONFIG_NAME, SyncConfig, load_config
from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import set_consent
from phoneagent.services.agent import agent_daemon
from phoneagent.services.upload import HomeUploader
from phoneagent.store import AsyncStore, OnLoop, Store, create_key_file, read_key_file
from phoneagent.sync import Committed, StoreBonds, SyncObserver, SyncState
from phoneagent.sync.discovery import pair_device
from phoneagent.transport import RefusingAgent, Transport, radio_lost
from phoneagent.transport.factory import open_transport, parse_transport
from phoneagent.upload import Endpoint, Uploader, endpoints_path, load_endpoints
from phoneagent.upload.uploader import RECONNECT_INITIAL_S, RECONNECT_MAX_S
from phoneagent.waiting import first_of, sleep_unless
from protocol.address import Address
from protocol.settings import Sex
from watchsim import control
from watchsim.controlops import Passkey

log = logging.getLogger(__name__)

AGENTS_FILE: Final = "agents.json"
RESULT_FILE: Final = "result.json"
PAIR_CONCURRENCY: Final = 4
# Agents starting to sync per second: every agent scanning at once hears every watch
# advertising at once (advertisers x scanners reports a second), so they come in waves.
START_RATE: Final = 20.0
# An agent's first commit after its start, at the latest, before its worker stops holding
# full collections anyway (``AgentFleet.freeze_deadline_s``): at 1,000 pairs on a slow box
# the first commits came within 140 s of the first start.
FIRST_COMMIT_WITHIN_S: Final = 120.0
PASSKEY_WAIT_S: Final = 30
# Re-opening a radio after the air went away: jittered, doubling, capped.
REOPEN_INITIAL_S: Final = 0.5
REOPEN_MAX_S: Final = 10.0
# Latency histogram: 1 ms bins up to two minutes; slower samples land in the last bin.
_BINS: Final = 120_000
# The latency over time: one histogram per this many seconds of wall time.
INTERVAL_S: Final = 1.0


class FleetError(Exception):
    """The agent fleet cannot start; the message says what to change."""


@dataclass(frozen=True)
class Timeline:
    """The watches' clocks: ``simulated = epoch + (wall - epoch) * speed``."""

    epoch: float
    speed: float

    def simulated(self, wall: float) -> float:
        return self.epoch + (wall - self.epoch) * self.speed

    def wall(self, simulated: float) -> float:
        return self.epoch + (simulated - self.epoch) / self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.simulated(time.time())).astimezone()


class _RadioFailedError(Exception):
    """Syncing on an open radio failed: a new one is opened, with back-off."""


def _reopened(error: BaseException) -> bool:
    """A radio that failed, or an air not reachable yet, is tried again (``_one_radio``);
    anything else that stops a radio opening needs a person."""
    return isinstance(error, _RadioFailedError) or radio_lost(error)


@dataclass(frozen=True)
class WatchEntry:
    name: str
    address: str
    control: Path  # the watch's control socket: its screen, for the passkey
    phase: float = 0.0  # when in each second the watch measures (``watchsim.fleet``)


@dataclass(frozen=True)
class Manifest:
    air: str
    timeline: Timeline
    watches: tuple[WatchEntry, ...]


def read_manifest(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text())
        return Manifest(
            air=str(data["air"]),
            timeline=Timeline(float(data["epoch"]), float(data["speed"])),
            watches=tuple(
                WatchEntry(
                    str(w["name"]),
                    Address(str(w["address"])),
                    Path(w["control"]),
                    float(w.get("phase", 0.0)),
                )
                for w in data["watches"]
            ),
        )
    except FileNotFoundError:
        raise FleetError(f"no fleet manifest at {path}: start `watchsim fleet` first") from None
    except (ValueError, KeyError, TypeError) as error:
        raise FleetError(f"{path} is not a fleet manifest ({error!r})") from None


class ControlChannelPasskeys:
    """Reads the passkey (or comparison number) the watch shows, through its control client."""

    def __init__(self, socket: Path) -> None:
        self._socket = socket

    async def _shown(self) -> int | None:
        try:
            shown = await control.request_at(
                self._socket, Passkey(PASSKEY_WAIT_S), PASSKEY_WAIT_S + 5
            )
        except (control.ControlError, OSError) as error:
            log.warning("the watch %s shows no passkey: %s", self._socket, error)
            return None
        return int(shown["passkey"])

    async def enter_passkey(self, peer: str) -> int | None:
        return await self._shown()

    async def confirm_number(self, peer: str, number: int) -> bool:
        return await self._shown() == number


class Latency:
    """Sample time -> stored and sample time -> broker ack, as histograms of milliseconds,
    over the whole window and per ``INTERVAL_S`` of wall time (when stored or acknowledged:
    the latency over time, and its count the throughput).

    Sample time is when the watch measured: the sample's second (its timestamp) plus the
    watch's phase in the second (never before the watch measures it, ``watchsim.fleet``).
    """

    def __init__(self, timeline: Timeline, since_wall: float) -> None:
        self._timeline = timeline
        self.since_wall = since_wall
        self.stored = [0] * (_BINS + 1)
        self.acked = [0] * (_BINS + 1)
        # Interval (wall // INTERVAL_S) -> milliseconds -> count: a few hundred keys each.
        self._intervals: dict[str, defaultdict[int, defaultdict[int, int]]] = {
            "stored": defaultdict(lambda: defaultdict(int)),
            "acked": defaultdict(lambda: defaultdict(int)),
        }
        self._waiting: dict[str, deque[tuple[int, float]]] = {}

    def committed(self, commit: Committed, wall: float, phase: float = 0.0) -> None:
        waiting = self._waiting.setdefault(commit.device, deque())
        to_wall = self._timeline.wall
        stored, interval = self.stored, self._intervals["stored"][int(wall // INTERVAL_S)]
        stamp, taken = None, 0.0
        # Per sample, on every agent's every commit: the measuring costs CPU the fleet's
        # figures count, so a commit's samples of one second share one conversion.
        for sample in commit.samples:
            if sample.timestamp != stamp:
                stamp = sample.timestamp
                taken = to_wall(stamp + phase)
            if taken >= self.since_wall:
                ms = min(_BINS, max(0, int((wall - taken) * 1000)))
                stored[ms] += 1
                interval[ms] += 1
                waiting.append((sample.seq, taken))

    def acknowledged(self, device: str, last_seq: int, wall: float) -> None:
        waiting = self._waiting.get(device)
        if not waiting or waiting[0][0] > last_seq:
            return
        acked, interval = self.acked, self._intervals["acked"][int(wall // INTERVAL_S)]
        while waiting and waiting[0][0] <= last_seq:
            ms = min(_BINS, max(0, int((wall - waiting.popleft()[1]) * 1000)))
            acked[ms] += 1
            interval[ms] += 1

    @staticmethod
    def percentiles(histogram: list[int]) -> dict[str, float | int | None]:
        return _percentiles([(ms, n) for ms, n in enumerate(histogram) if n])

    def summary(self) -> dict[str, Any]:
        return {
            "since_wall": self.since_wall,
            "stored": self.percentiles(self.stored),
            "acked": self.percentiles(self.acked),
            "over_time": over_time(self.interval_histograms()),
        }

    def histograms(self) -> dict[str, dict[str, int]]:
        """Both histograms as {milliseconds: count} of their non-empty bins."""
        return {
            name: {str(ms): n for ms, n in enumerate(histogram) if n}
            for name, histogram in (("stored", self.stored), ("acked", self.acked))
        }

    def interval_histograms(self) -> IntervalHistograms:
        """Both, per interval: {"stored": {interval: {milliseconds: count}}, "acked": ...},
        in JSON's terms (string keys), so that a split fleet's parts merge by key."""
        return {
            name: {
                str(at): {str(ms): n for ms, n in histogram.items()}
                for at, histogram in intervals.items()
                if histogram  # a commit of samples from before the window adds nothing
            }
            for name, intervals in self._intervals.items()
        }

    @staticmethod
    def dense(sparse: dict[str, int]) -> list[int]:
        """A histogram from its non-empty bins (``histograms``)."""
        histogram = [0] * (_BINS + 1)
        for ms, n in sparse.items():
            histogram[int(ms)] += n
        return histogram


IntervalHistograms = dict[str, dict[str, dict[str, int]]]


def over_time(intervals: IntervalHistograms) -> list[dict[str, Any]]:
    """Per interval, in time order: its start (wall, s) and the percentiles of both."""
    keys = sorted({int(at) for histograms in intervals.values() for at in histograms})
    return [
        {
            "at": at * INTERVAL_S,
            **{
                name: _percentiles(
                    sorted((int(ms), n) for ms, n in histograms.get(str(at), {}).items())
                )
                for name, histograms in intervals.items()
            },
        }
        for at in keys
    ]


def _percentiles(bins: Sequence[tuple[int, int]]) -> dict[str, float | int | None]:
    """p50, p99 and max of a histogram given as its non-empty (milliseconds, count) bins
    in order, and its number of samples."""
    total = sum(n for _, n in bins)
    result: dict[str, float | int | None] = {"samples": total}
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("max_ms", 1.0)):
        result[name] = None
        rank, seen = q * total, 0
        for ms, count in bins:
            seen += count
            if seen >= rank:
                result[name] = ms
                break
    return result


class _Observer(SyncObserver):
    """Wakes the agent's uploader on every commit and feeds the latency figures."""

    def __init__(self, agent: FleetAgent) -> None:
        self._agent = agent

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self._agent.state = state
        if state is SyncState.PAIRING_LOST:
            log.warning("%s: %s", self._agent.watch.name, detail)

    async def committed(self, commit: Committed) -> None:
        agent = self._agent
        if not agent.stored and commit.result.new:
            agent.fleet.first_commit()
        agent.stored += commit.result.new
        if agent.latency is not None:
            agent.latency.committed(commit, time.time(), agent.watch.phase)
        if agent.uploads is not None:
            agent.uploads.wake()


@dataclass(frozen=True)
class AgentFleetConfig:
    directory: Path
    manifest: Manifest
    transport: str  # loopback:HOST:PORT
    cloud_config: Path | None = None  # a cloud.toml given to every agent
    region: str = "eu"
    count: int | None = None  # the first COUNT watches of the manifest; None: all
    latency_after_s: float | None = None  # measure samples taken this long after start
    # (index, of): this process runs the agents of every ``of``-th watch from ``index``
    # (``harness.fleetsplit``); None: all of them.
    part: tuple[int, int] | None = None
    sync: SyncConfig = field(default_factory=lambda: SyncConfig(backoff_max=5.0))


class FleetAgent:
    """One phone: data dir, store, radio, sync engine and uploader for one watch."""

    def __init__(self, fleet: AgentFleet, index: int, watch: WatchEntry) -> None:
        self.fleet = fleet
        self.index = index
        self.watch = watch
        self.data_dir = fleet.config.directory / "agents" / watch.name
        self.key_file = fleet.config.directory / "keys" / f"{watch.name}.key"
        self.store: Store | None = None
        self.astore: AsyncStore | None = None
        self.uploads: HomeUploader | None = None
        # When it starts syncing after the fleet's ``run``: the agents come in waves.
        self.start_s = index / START_RATE
        self.latency: Latency | None = fleet.latency
        self.state = SyncState.STOPPED
        self.stored = 0
        self.reopened = 0
        self.failed = 0

    def _open_store(self) -> Store:
        """Open (creating on first run) the store, account, consent and agent config."""
        config = self.fleet.config
        self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not self.key_file.exists()
        key = create_key_file(self.key_file) if fresh else read_key_file(self.key_file)
        store = Store.open(self.data_dir, key)
        if store.ledger.get_account() is None:
            profile = ProfileInput(config.region, date(1990, 1, 1), Sex.FEMALE, 170, 650)
            create_account(store, profile)
            if config.cloud_config is not None:
                set_consent(store, "cloud_sync", True)
        path = self.data_dir / CONFIG_NAME
        if not path.exists():  # the identity is the store's own (transport.identity)
            path.write_text(tomli_w.dumps({"transport": config.transport}))
        if config.cloud_config is not None and not endpoints_path(self.data_dir).exists():
            shutil.copyfile(config.cloud_config, endpoints_path(self.data_dir))
        return store

    async def prepare(self) -> None:
        self.store = store = await asyncio.to_thread(self._open_store)
        self.astore = AsyncStore(store, self.fleet.store_calls)
        if self.fleet.config.cloud_config is not None:

            def make(store: Store, endpoint: Endpoint) -> Uploader:
                rng = random.Random(self.index)
                backoff = Backoff(RECONNECT_INITIAL_S, RECONNECT_MAX_S, rng=rng)
                return Uploader(
                    store,
                    endpoint,
                    backoff=backoff,
                    on_acked=self._acked,
                    blocking=self.fleet.store_calls.run,
                )

            self.uploads = HomeUploader(self.data_dir, store, make=make)
            await asyncio.to_thread(self.uploads.choose)

    def uploaded(self) -> int:
        """Samples its uploader had acknowledged (a fleet's agents never change region)."""
        current = None if self.uploads is None else self.uploads.current
        return 0 if current is None else current.stats.samples

    def _acked(self, device: str, last_seq: int) -> None:
        if self.latency is not None:
            self.latency.acknowledged(device, last_seq, time.time())

    async def _open_transport(self, pairing: bool) -> Transport:
        assert self.store is not None
        agent = ControlChannelPasskeys(self.watch.control) if pairing else RefusingAgent()
        legacy = load_config(self.data_dir).agent_address  # a fleet dir from before identities
        config = parse_transport(self.fleet.config.transport, legacy_address=legacy)
        return await open_transport(config, bonds=StoreBonds(self.store), agent=agent)

    def paired(self) -> bool:
        assert self.store is not None
        store, address = self.store, self.watch.address
        return store.get_device(address) is not None and address in store.list_bonds()

    async def pair(self) -> None:
        """Pair once, through the product's pairing, with the passkey off the watch's screen."""
        assert self.store is not None
        if await asyncio.to_thread(self.paired):
            return
        transport = await self._open_transport(pairing=True)
        try:
            await pair_device(
                transport, self.store, self.watch.address, scan_timeout=PASSKEY_WAIT_S
            )
        finally:
            await transport.close()

    def identity(self) -> dict[str, Any]:
        assert self.store is not None
        account = self.store.ledger.get_account()
        device = self.store.get_device(self.watch.address)
        return {
            "watch": self.watch.name,
            "address": self.watch.address,
            "data_dir": str(self.data_dir),
            "key_file": str(self.key_file),
            "user_pseudonym": None if account is None else account.pseudonym,
            "device_pseudonym": None if device is None else device.pseudonym,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Sync until ``stop``; a lost air connection means a new radio, not an exit."""
        uploading = (
            asyncio.create_task(self.uploads.run(stop)) if self.uploads is not None else None
        )
        backoff = Backoff(REOPEN_INITIAL_S, REOPEN_MAX_S, rng=random.Random(self.index))
        try:
            async for attempt in backoff.retrying(_reopened, self._reopening, stop):
                with attempt:
                    while not stop.is_set():
                        await self._one_radio(stop)
                        backoff.reset()
        finally:
            if uploading is not None:
                await uploading

    async def _one_radio(self, stop: asyncio.Event) -> None:
        """Open a radio and sync on it until ``stop`` or its loss. Raises what opening it
        raised, or ``_RadioFailedError`` when syncing on it failed."""
        transport = await self._open_transport(pairing=False)
        try:
            await self._sync(transport, stop)
        except Exception as error:
            # One agent's broken radio (an overloaded host's HCI commands timed out and
            # their late answers no longer match) must not end the process and every
            # other agent in it: counted, then a new radio.
            log.warning("%s: the radio failed (%r); opening a new one", self.watch.name, error)
            self.failed += 1
            raise _RadioFailedError(str(error)) from error
        finally:
            await transport.close()
            if not stop.is_set():
                self.reopened += 1

    async def _reopening(self, error: BaseException, _delay: float) -> None:
        if not isinstance(error, _RadioFailedError):
            log.info("%s: air unreachable (%r)", self.watch.name, error)

    async def _sync(self, transport: Transport, stop: asyncio.Event) -> None:
        """Run the sync engine until ``stop`` or until this radio's transport is lost."""
        assert self.store is not None and self.astore is not None
        daemon = agent_daemon(
            self.astore,
            transport,
            config=self.fleet.config.sync,
            observer=_Observer(self),
            seed=self.index,
            clock=self.fleet.manifest.timeline.now,
        )
        radio = transport.radio
        assert radio is not None and radio.transport_lost is not None
        lost = asyncio.Event()
        radio.transport_lost.add_done_callback(lambda _: lost.set())
        ended = asyncio.Event()
        watcher = asyncio.ensure_future(first_of(stop.wait(), lost.wait()))
        watcher.add_done_callback(lambda _: ended.set())
        try:
            await daemon.run(ended)
        finally:
            watcher.cancel()

    async def close(self) -> None:
        if self.astore is not None:
            await self.astore.aclose()


class AgentFleet:
    """``await start()`` (prepare, pair), ``await run(stop)``, then ``await close()``."""

    def __init__(self, config: AgentFleetConfig) -> None:
        self.config = config
        self.manifest = config.manifest
        watches: Sequence[WatchEntry] = self.manifest.watches
        if config.count is not None:
            if config.count > len(watches):
                raise FleetError(
                    f"the manifest lists {len(watches)} watches, fewer than --count {config.count}"
                )
            watches = watches[: config.count]
        if config.cloud_config is not None:
            load_endpoints(config.cloud_config).for_region(config.region)  # fail early
        self._started = time.time()
        # Measuring starts once every agent is paired (``start``).
        self.latency = (
            None if config.latency_after_s is None else Latency(self.manifest.timeline, math.inf)
        )
        # Every agent's store and uploader calls run on the loop (pairing's and a connect's
        # few reads aside): a thread per agent would be hundreds, and the hand-over to a
        # few shared ones cost more than the calls.
        self.store_calls = OnLoop()
        index, of = config.part or (0, 1)
        self.agents = [FleetAgent(self, i, w) for i, w in enumerate(watches) if i % of == index]
        # Pairings at once across every process of the fleet, as in one.
        self._pair_concurrency = max(1, PAIR_CONCURRENCY // of)
        self._base_rss = _rss_mb()
        self._base_cpu = _cpu_s()
        # Agents that have not committed a sample yet; None once the second freeze is done.
        self._silent: int | None = len(self.agents)

    async def start(self) -> None:
        self.config.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        gate = asyncio.Semaphore(self._pair_concurrency)

        async def one(agent: FleetAgent) -> None:
            async with gate:
                await agent.prepare()
                await agent.pair()

        await asyncio.gather(*(one(a) for a in self.agents))
        if self.latency is not None and self.config.latency_after_s is not None:
            self.latency.since_wall = time.time() + self.config.latency_after_s
        identities = await asyncio.to_thread(lambda: [a.identity() for a in self.agents])
        write_json(self.output(AGENTS_FILE), {"agents": identities})
        # Hundreds of agents' long-lived objects (stores, radios, GATT tables) are made,
        # and pairing's radios are garbage: collected, the rest out of the collector's
        # sight. Their connections, sessions and MQTT clients come next, as they start:
        # full collections wait for those too (``freeze_live``).
        freeze_long_lived()
        hold_full_collections()

    def output(self, name: str) -> Path:
        """Where this process writes ``name`` (a worker: its own part of it)."""
        return self.config.directory / part_name(name, self.config.part)

    def first_commit(self) -> None:
        """An agent committed its first sample. Once every one has, their connections,
        sessions and MQTT clients are made too, and ``freeze_live`` puts them out of the
        collector's sight."""
        if self._silent is not None:
            self._silent -= 1
            if not self._silent:
                self.freeze_live()

    def freeze_live(self) -> None:
        """The second freeze, once: at the last agent's first commit, or at ``run``'s
        deadline if that is sooner, so that an agent that never commits (its watch gone)
        does not keep full collections held. Until then they are (``start``): each walked
        every agent's state made so far, about 1 s of every 10 s per worker at 1,000
        agents on a slow box, a pause every agent's samples waited behind."""
        if self._silent is not None:
            self._silent = None
            freeze_long_lived()
            back_in_background()  # each agent's turn no longer starts with TLB misses

    async def run(self, stop: asyncio.Event) -> None:
        async def one(agent: FleetAgent) -> None:
            await sleep_unless(stop, agent.start_s)
            if not stop.is_set():
                await agent.run(stop)

        deadline = asyncio.get_running_loop().call_later(self.freeze_deadline_s(), self.freeze_live)
        try:
            await asyncio.gather(*(one(a) for a in self.agents))
        finally:
            deadline.cancel()

    def freeze_deadline_s(self) -> float:
        """When ``freeze_live`` comes at the latest, from ``run``: when the latency window
        opens, or, without one (a soak, a plain fleet), once the last agent has started
        and had ``FIRST_COMMIT_WITHIN_S`` to commit."""
        window = self.config.latency_after_s
        if window is not None:
            return window
        return max((a.start_s for a in self.agents), default=0.0) + FIRST_COMMIT_WITHIN_S

    async def close(self) -> None:
        await asyncio.gather(*(a.close() for a in self.agents))

    def result(self) -> dict[str, Any]:
        count = len(self.agents)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu = _cpu_s() - self._base_cpu
        result: dict[str, Any] = {
            "count": count,
            "wall_s": round(time.time() - self._started, 1),
            "peak_rss_mb": round(peak, 1),
            "base_rss_mb": round(self._base_rss, 1),
            "rss_per_agent_mb": round((peak - self._base_rss) / max(1, count), 2),
            "cpu_s": round(cpu, 2),
            "cpu_per_agent_s": round(cpu / max(1, count), 3),
            "stored": sum(a.stored for a in self.agents),
            "uploaded": sum(a.uploaded() for a in self.agents),
            "radio_reopened": sum(a.reopened for a in self.agents),
            "radio_failed": sum(a.failed for a in self.agents),
        }
        if self.latency is not None:
            result["latency"] = self.latency.summary()
            if self.config.part is not None:  # merged with the other parts' histograms
                result["histograms"] = self.latency.histograms()
                result["interval_histograms"] = self.latency.interval_histograms()
        return result

    def write_result(self) -> dict[str, Any]:
        result = self.result()
        write_json(self.output(RESULT_FILE), result)
        return result


def part_name(name: str, part: tuple[int, int] | None) -> str:
    """``result.json`` for a whole fleet, ``result.part1.json`` for its worker 1."""
    if part is None:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.part{part[0]}{dot}{suffix}"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system
