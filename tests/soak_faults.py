"""A fault soak of the real processes: kill -9 of each at seeded random moments, a disk that
fills and frees, a second agent on the same data dir; then a full account by (device, seq).

Processes: ``watchsim air``, one ``watchsim run`` per watch (its own history file), one
``phoneagent run`` with its data dir on a small tmpfs, Mosquitto and the reference
receiver. After pairing, the agent backfills each watch's history while the faults start
(the first lands within the first seconds, during the backfill), then keeps the watches
live and uploads. The supervisor here restarts only what it killed: the agent must get
through the air's and the broker's loss by itself, the watches through the air's.

The verdict, per watch (``account_history``): every seq the watch freed from its history
(acknowledged) is in the agent's store or a gap it recorded, every stored record is at
the receiver with the same content, and nothing is held under a seq the watch never gave
or with content other than the watch's own. The CI run (``tests/system/test_soak_faults.py``)
and the long one (``scripts/soak --kill``) differ only in ``FaultSoakConfig``.

Mosquitto 2.0 saves after its PUBACK, so a kill -9 between the two loses an acknowledged
message (docs/upload.md, "Broker durability"): the broker is killed with the agent paused
(SIGSTOP) and only after two more QoS 1 round trips, so what the agent was told is saved.
Fault times pace the run; the verdict never depends on when a fault lands.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlcipher3

from phoneagent.store import DbKey, Store, StoreError
from protocol.history import FIRST_SEQ
from protocol.metrics import Sample
from tests.disk import fill
from tests.fleetrun import cloud_toml
from tests.mosquitto import Broker
from tests.processes import AGENT_CLI, ENV, Phone, Watch, start_air
from tests.soak import Report, WatchReport
from tests.soakchart import Reading, SoakTimeline, received_count, sampled
from tests.system.test_upload import make_account
from watchsim.app.watch import HISTORY_DIR
from watchsim.history import History

FAULT_KINDS = ("air", "watch", "agent", "broker", "receiver", "disk-full", "second-agent")
KEY = DbKey(ENV["PHONEAGENT_DB_KEY"])
READY_S = 60.0  # a restarted process prints its ready line within this: a hang bound
STOP_S = 30.0
SECOND_AGENT_S = 10.0  # then a second agent that was not refused is stopped
CHART_EVERY_S = 1.0  # the chart's reading of the store and the receiver (tests/soakchart.py)
Content = tuple[int, int, int]  # timestamp, metric, raw


@dataclass(frozen=True)
class FaultSoakConfig:
    directory: Path  # everything but the agent's data dir
    disk: Path  # a tmpfs (tests/disk.py) for the agent's data dir: filled and freed
    watches: int = 2
    faults: int = 10  # every kind at least once, then seeded random kinds
    duration_s: float = 60.0  # wall time over which the faults are spread
    backfill: str = "6h"  # each watch's history before the agent's first sync
    speed: float = 10.0  # simulated s per real s: live records to upload
    settle_s: float = 90.0  # deadline for the agent and the receiver to catch up at the end
    seed: int = 1
    chart: Path | None = None  # where soak.png and soak.html go; None: ``directory``


def account_history(
    name: str,
    next_seq: int,
    held: dict[int, Content],
    stored: dict[int, Content],
    gaps: list[tuple[int, int]],
    received: dict[int, Content],
) -> WatchReport:
    """One watch's account from its own history: ``next_seq`` (every seq below was given
    out) and the records it still holds (``held``; below them it freed: acknowledged)."""
    report = WatchReport(name, generated=next_seq - FIRST_SEQ)
    floor = min(held, default=next_seq)
    for seq in range(FIRST_SEQ, next_seq):
        content = stored.get(seq)
        if content is None:
            if seq >= floor:
                continue  # still on the watch, not acknowledged: the next sync takes it
            if any(first <= seq <= last for first, last in gaps):
                report.gaps_explained += 1
            else:
                report.lost += 1
            continue
        report.stored += 1
        if received.get(seq) == content:
            report.uploaded += 1
        else:
            report.lost += 1
    report.duplicated += sum(
        1
        for seq, content in stored.items()
        if not FIRST_SEQ <= seq < next_seq or held.get(seq, content) != content
    )
    report.duplicated += sum(1 for seq, c in received.items() if stored.get(seq) != c)
    return report


def _content(s: Sample) -> Content:
    return (s.timestamp, int(s.metric), s.raw)


class Running:
    """A process whose stdout and stderr are read all along (into ``log``), so that it
    never blocks on a full pipe, and whose lines can be waited for."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name, self.process, self.log = name, process, log
        self._lines: list[str] = []
        self._closed = 0  # streams at their end
        self._new = asyncio.Condition()
        streams = (process.stdout, process.stderr)
        self._pumps = [asyncio.create_task(self._pump(s)) for s in streams if s is not None]

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        with self.log.open("a") as out:
            while raw := await stream.readline():
                text = raw.decode(errors="replace")
                out.write(text)
                out.flush()
                async with self._new:
                    self._lines.append(text)
                    self._new.notify_all()
        async with self._new:
            self._closed += 1
            self._new.notify_all()

    async def line(self, pattern: str, within: float = READY_S) -> str:
        """The first line matching ``pattern``; fails if the process ends without one."""
        since = 0
        async with asyncio.timeout(within), self._new:
            while True:
                for text in self._lines[since:]:
                    if re.search(pattern, text):
                        return text
                since = len(self._lines)
                if self._closed == len(self._pumps):
                    raise AssertionError(f"{self.name} ended before {pattern!r}: see {self.log}")
                await self._new.wait()

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def kill(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGKILL)
        await self._ended()

    async def stop(self) -> int:
        """SIGTERM; its exit code (killed after ``STOP_S``)."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_S):
                await self._ended()
        except TimeoutError:
            await self.kill()
        assert self.process.returncode is not None
        return self.process.returncode

    async def _ended(self) -> None:
        await self.process.wait()
        await asyncio.gather(*self._pumps)


class FaultSoak:
    def __init__(self, config: FaultSoakConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.root = config.directory
        self.root.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(config.seed)
        self.broker = Broker(self.root / "broker")
        self.receiver_db = self.root / "receiver.db"
        self.data_dir = config.disk / "agent"
        self.faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self.air_port = 0
        self.watches: list[Watch] = []
        self.addresses: list[str] = []
        self.running: dict[str, Running] = {}
        self.timeline = SoakTimeline()

    # --- processes ----------------------------------------------------------------------

    @property
    def phone(self) -> Phone:
        return Phone(self.data_dir, f"loopback:127.0.0.1:{self.air_port}")

    async def _start_air(self) -> None:
        process, address = await start_air(self.air_port)
        self.air_port = int(address.rsplit(":", 1)[1])
        self.running["air"] = Running("air", process, self.root / "air.log")

    async def _start_agent(self) -> None:
        process = await self.phone._spawn("run", "--no-dbus")
        agent = self.running["agent"] = Running("agent", process, self.root / "agent.log")
        await agent.line("phoneagent running on")

    async def _start_receiver(self) -> None:
        args = ["--port", str(self.broker.port), "--db", str(self.receiver_db), "--no-share"]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            AGENT_CLI,
            "cloud-receiver",
            "--broker",
            "127.0.0.1",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
        )
        receiver = Running("receiver", process, self.root / "receiver.log")
        self.running["receiver"] = receiver
        await receiver.line("receiving as receiver-1")

    async def _setup(self) -> None:
        """Broker, receiver, air, the watches paired, the account with cloud sync, the agent."""
        config = self.config
        self.broker.start()
        await self._start_receiver()
        await self._start_air()
        for n in range(config.watches):
            options = ["--air", f"127.0.0.1:{self.air_port}", "--speed", str(config.speed)]
            options += ["--seed", str(config.seed * 100 + n), "--name", f"Soak{n}"]
            self.watches.append(Watch(self.root / f"watch{n}", options, READY_S, config.backfill))
            process, address = await self.watches[n].start()
            self.addresses.append(address)
            await self.phone("pair", address, passkey_from=process)
            self.running[f"watch{n}"] = Running(f"watch{n}", process, self.root / f"watch{n}.log")
        with Store.open(self.data_dir, KEY) as store:
            make_account(store)
        cloud_toml(self.data_dir / "cloud.toml", self.broker.port)
        await self._start_agent()

    # --- faults -------------------------------------------------------------------------

    def _schedule(self) -> list[tuple[float, str]]:
        """Seeded: every kind once, then random kinds; the first within 3 s (backfill)."""
        config = self.config
        kinds = list(FAULT_KINDS)
        kinds += self.rng.choices(FAULT_KINDS, k=max(0, config.faults - len(kinds)))
        self.rng.shuffle(kinds)
        moments = sorted(self.rng.uniform(3.0, config.duration_s) for _ in kinds[1:])
        return list(zip([self.rng.uniform(0.0, 3.0), *moments], kinds, strict=True))

    async def _faults(self) -> None:
        began = time.monotonic()
        for moment, kind in self._schedule():
            # Pacing, not synchronisation: the verdict does not depend on these times.
            await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
            self.say(f"soak: {time.monotonic() - began:5.1f} s: {kind}")
            self.timeline.fault(kind)
            await self._fault(kind)
            self.faults[kind] += 1
            self._all_running()

    async def _fault(self, kind: str) -> None:
        if kind == "air":
            await self.running["air"].kill()
            await self._start_air()
        elif kind == "watch":
            n = self.rng.randrange(self.config.watches)
            await self.running[f"watch{n}"].kill()
            process, address = await self.watches[n].start()
            assert address == self.addresses[n], "a restarted watch keeps its identity"
            self.running[f"watch{n}"] = Running(f"watch{n}", process, self.root / f"watch{n}.log")
        elif kind == "agent":
            await self.running["agent"].kill()
            await self._start_agent()
        elif kind == "broker":
            await self._kill_broker()
        elif kind == "receiver":
            await self.running["receiver"].kill()
            await self._start_receiver()
        elif kind == "disk-full":
            filler = fill(self.config.disk)
            await asyncio.sleep(self.rng.uniform(1.0, 5.0))  # how long it stays full
            filler.unlink()
        else:
            await self._second_agent()

    async def _kill_broker(self) -> None:
        """SIGKILL with everything it acknowledged saved (the module's docstring)."""
        agent = self.running["agent"].process
        agent.send_signal(signal.SIGSTOP)
        try:
            for _ in range(2):
                await asyncio.to_thread(self.broker.one_more_pass)
            self.broker.kill()
        finally:
            agent.send_signal(signal.SIGCONT)
        self.broker.start()

    async def _second_agent(self) -> None:
        """``run`` again on the same data dir: refused, or running beside the first (then
        stopped) without losing or duplicating anything; the first carries on either way."""
        process = await self.phone._spawn("run", "--no-dbus")
        second = Running("second agent", process, self.root / "second-agent.log")
        try:
            async with asyncio.timeout(SECOND_AGENT_S):
                await second.process.wait()
        except TimeoutError:
            await second.stop()
        await second.kill()  # and its output read to the end
        assert "Traceback" not in second.log.read_text(), f"see {second.log}"

    def _all_running(self) -> None:
        """Every process the supervisor did not just kill and restart still runs by itself."""
        stopped = [name for name, proc in self.running.items() if not proc.running]
        assert not stopped, f"not running without a hand: {stopped} (logs in {self.root})"
        assert self.broker.running, "the broker stopped"

    # --- the end ------------------------------------------------------------------------

    def _devices(self) -> dict[str, str]:
        """Address -> pseudonym (read beside the running agent: WAL readers do not block)."""
        with Store.open(self.data_dir, KEY) as store:
            return {d.address: d.pseudonym for d in store.list_devices()}

    def _reading(self) -> Reading:
        """Records stored per watch, read beside the agent; none while a fault (the full
        disk, the agent starting again) keeps the store from opening."""
        try:
            with Store.open(self.data_dir, KEY) as store:
                counts = store.counts()
        except (StoreError, sqlcipher3.Error, OSError):
            stored: dict[str, int | None] = dict.fromkeys(self._names().values())
        else:
            stored = {n: sum(counts.get(a, {}).values()) for a, n in self._names().items()}
        return stored, received_count(self.receiver_db)

    def _names(self) -> dict[str, str]:
        return {address: f"watch{n}" for n, address in enumerate(self.addresses)}

    def _received(self) -> dict[str, dict[int, Content]]:
        """What the receiver holds, read-only from its embedded SQLite file."""
        if not self.receiver_db.exists():
            return {}
        conn = sqlite3.connect(f"file:{self.receiver_db}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("SELECT device, seq, metric, ts, raw FROM samples").fetchall()
        except sqlite3.OperationalError:  # no table yet
            return {}
        finally:
            conn.close()
        by_device: dict[str, dict[int, Content]] = {}
        for device, seq, metric, ts, raw in rows:
            by_device.setdefault(device, {})[seq] = (ts, metric, raw)
        return by_device

    def _stored(self) -> dict[str, tuple[dict[int, Content], list[tuple[int, int]]]]:
        with Store.open(self.data_dir, KEY) as store:
            return {
                address: (
                    {s.seq: _content(s.sample) for s in store.iter_samples(address)},
                    [(g.first_seq, g.last_seq) for g in store.gaps(address)],
                )
                for address in self.addresses
            }

    async def _caught_up(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.config.settle_s
        while not await asyncio.to_thread(done):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {self.config.settle_s:g} s")
            await asyncio.sleep(0.5)  # polling with a deadline

    async def _settle(self) -> None:
        """The agent carries on: its cursor (every seq below stored, or a gap) passes each
        watch's newest seq of now and the receiver holds every stored record. Then the
        watches stop and the receiver gets what the store took meanwhile."""
        watches = zip(self.addresses, self.watches, strict=True)
        newest = {address: await watch.newest_seq() for address, watch in watches}

        def synced() -> bool:
            with Store.open(self.data_dir, KEY) as store:
                return all(store.next_seq(a) > n for a, n in newest.items())

        await self._caught_up(synced, "the agent's cursor past every watch's newest seq")
        self._all_running()
        for n in range(self.config.watches):
            await self.running.pop(f"watch{n}").stop()
        pseudonyms = self._devices()

        def uploaded() -> bool:
            received = self._received()
            return all(
                set(stored) <= set(received.get(pseudonyms[a], {}))
                for a, (stored, _gaps) in self._stored().items()
            )

        await self._caught_up(uploaded, "the receiver holding every stored record")

    async def _stop(self) -> None:
        for name in sorted(self.running, key=lambda name: name != "agent"):  # the agent first
            await self.running.pop(name).stop()
        self.broker.stop()

    def _report(self, wall_s: float) -> Report:
        received = self._received()
        pseudonyms = self._devices()
        watches = []
        for n, (address, (stored, gaps)) in enumerate(self._stored().items()):
            with History(self.root / f"watch{n}" / HISTORY_DIR) as history:
                held = {
                    s.seq: _content(s)
                    for s in history.iter_from(FIRST_SEQ)
                    if isinstance(s, Sample)
                }
                next_seq = history.next_seq
            got = received.get(pseudonyms[address], {})
            watches.append(account_history(f"watch{n}", next_seq, held, stored, gaps, got))
        known = set(pseudonyms.values())
        unattributed = sum(len(r) for d, r in received.items() if d not in known)
        return Report(watches, self.faults, unattributed, wall_s)

    async def run(self) -> Report:
        began = time.monotonic()
        try:
            await self._setup()
            self.say(f"soak: {self.config.watches} watches paired; agent running")
            async with sampled(self.timeline, self._reading, CHART_EVERY_S):
                await self._faults()
                await self._settle()
        finally:
            await self._stop()
            await self.timeline.write(self.config.chart or self.root, self.say)
        return self._report(time.monotonic() - began)


async def fault_soak(config: FaultSoakConfig, say: Callable[[str], None] = print) -> Report:
    return await FaultSoak(config, say).run()
