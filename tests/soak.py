"""A soak run: a fleet against a real Mosquitto, faults on a schedule, then a full account.

Processes: Mosquitto, the reference receiver (``phoneagent cloud-receiver``), ``watchsim
fleet --audit`` (watches and air) and ``phoneagent fleet``. Faults, spread over the run
and cycling through the kinds: a watch out of range, a watch reboot, the agent process
killed with SIGKILL and started again, the broker restarted, the air restarted (every
agent loses its radio). Then the watches stop measuring, the run waits (with a deadline)
until the receiver holds each watch's newest record, everything stops, and per watch the
records the watch generated (its audit file) are compared with the agent's store and the
receiver's database:

- stored / uploaded: generated records held with the same seq and the same content;
- gaps explained: generated records the store lacks but covers with a recorded gap;
- lost: generated records neither stored nor explained, or stored but not uploaded;
- duplicated: records held that the watch did not generate at that seq (a copy under
  another seq, altered content) and receiver rows under a pseudonym no agent has.

``Report.ok`` is false on any loss or duplicate. Fault times are a schedule (pacing the
load), never a synchronisation: the verdict does not depend on when a fault lands.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3

from cloudreceiver.store import open_store
from phoneagent.store import Store, StoreError, read_key_file
from protocol.metrics import Sample
from tests.fleetrun import AGENT_CLI, Proc, cloud_toml, spawn, start_agents, start_watches
from tests.mosquitto import Broker
from tests.soakchart import Reading, SoakTimeline, received_count, sampled
from watchsim.control import request
from watchsim.controlops import AirRestart, Freeze, OutOfRange, Reboot, Status, ToWatch
from watchsim.fleet import AUDIT_DIR, read_audit

FAULT_KINDS = ("out-of-range", "reboot", "agent-kill", "broker-restart", "air-restart")
STARTUP_S = 120.0
STOP_S = 60.0
# The chart's reading of every agent's store (each open checks every page) and the receiver.
CHART_EVERY_S = 15.0


# Per device: the newest seq held, the lowest, and how many (``held_through`` reads them).
HELD_QUERY = "SELECT device, max(seq), min(seq), count(*) FROM samples GROUP BY device"


def held_through(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """Per device, the newest seq the receiver holds with nothing missing between it and the
    lowest one held (below which an erasure may have deleted); one below the lowest while
    a hole remains. Receivers in a group commit out of order, and what a killed one held
    comes back only when the broker redelivers it, so the newest seq alone is not enough."""
    return {
        str(device): int(newest) if count == newest - lowest + 1 else int(lowest) - 1
        for device, newest, lowest, count in rows
    }


@dataclass(frozen=True)
class SoakConfig:
    directory: Path
    watches: int = 3
    duration_s: float = 600.0  # wall time with faults
    speed: float = 144.0  # 10 minutes wall = 24 h simulated
    faults: int = 10  # spread evenly, cycling through FAULT_KINDS
    settle_s: float = 120.0  # deadline for the receiver to catch up at the end
    seed: int = 1
    chart: Path | None = None  # where soak.png and soak.html go; None: ``directory``


@dataclass
class WatchReport:
    name: str
    generated: int = 0
    stored: int = 0
    uploaded: int = 0
    lost: int = 0
    duplicated: int = 0
    gaps_explained: int = 0


@dataclass
class Report:
    watches: list[WatchReport]
    faults: dict[str, int]
    unattributed: int  # receiver rows under a pseudonym no agent holds
    wall_s: float
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.unattributed == 0 and all(
            w.lost == 0 and w.duplicated == 0 for w in self.watches
        )

    def table(self) -> str:
        head = ("watch", "generated", "stored", "uploaded", "lost", "duplicated", "gaps explained")
        rows = [head] + [
            (
                w.name,
                *(
                    str(v)
                    for v in (
                        w.generated,
                        w.stored,
                        w.uploaded,
                        w.lost,
                        w.duplicated,
                        w.gaps_explained,
                    )
                ),
            )
            for w in self.watches
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
        faults = ", ".join(f"{k} x{v}" for k, v in self.faults.items())
        verdict = "OK" if self.ok else "FAILED: unexplained loss or duplicates"
        return "\n".join(
            [
                *lines,
                f"faults: {faults}; unattributed receiver rows: {self.unattributed}",
                f"{verdict} ({self.wall_s:.0f} s)",
            ]
        )


def _content(s: Sample) -> tuple[int, int, int]:
    return (s.timestamp, int(s.metric), s.raw)


def account(
    audit: list[Sample],
    stored: dict[int, tuple[int, int, int]],
    gaps: list[tuple[int, int]],
    received: dict[int, tuple[int, int, int]],
    name: str,
) -> WatchReport:
    """Compare one watch's generated records with what the store and receiver hold."""
    generated = {s.seq: _content(s) for s in audit}
    report = WatchReport(name, generated=len(generated))
    for seq, content in generated.items():
        if stored.get(seq) == content:
            report.stored += 1
            if received.get(seq) == content:
                report.uploaded += 1
            else:
                report.lost += 1
        elif seq not in stored and any(first <= seq <= last for first, last in gaps):
            report.gaps_explained += 1
        elif seq not in stored:
            report.lost += 1
    for held in (stored, received):
        report.duplicated += sum(1 for seq, c in held.items() if generated.get(seq) != c)
    return report


class Soak:
    def __init__(self, config: SoakConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        root = config.directory
        root.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(root)
        self.fleet_dir = root / "watches"
        self.agents_dir = root / "agents"
        self.receiver_db = root / "receiver.db"
        # What the verdict reads: this file, or a subclass's PostgreSQL URL.
        self.database: str | Path = self.receiver_db
        self.cloud = root / "cloud.toml"
        self.watches: Proc | None = None
        self.agents: Proc | None = None
        self.receiver: Proc | None = None
        self.faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._rng = random.Random(config.seed)
        self.timeline = SoakTimeline()

    async def _start_agents(self) -> None:
        self.agents = await start_agents(
            self.agents_dir,
            self.fleet_dir / "fleet.json",
            "--cloud",
            str(self.cloud),
            # Two workers whatever the machine: the split (a parent merging its workers'
            # results, workers dying with it under kill -9) is part of what a soak checks.
            "--processes",
            "2",
            within=STARTUP_S,
        )

    async def _start_receiver(self) -> None:
        args = [
            "cloud-receiver",
            "--broker",
            "127.0.0.1",
            "--port",
            str(self.broker.port),
            "--db",
            str(self.receiver_db),
            # Mosquitto does not restore shared subscriptions after its restart.
            "--no-share",
        ]
        stderr = self.config.directory / "receiver.stderr"
        self.receiver = await spawn("cloud-receiver", AGENT_CLI, args, stderr)

    async def run(self) -> Report:
        began = time.monotonic()
        config = self.config
        self.broker.start()
        cloud_toml(self.cloud, self.broker.port)
        try:
            await self._start_receiver()
            self.watches = await start_watches(
                self.fleet_dir,
                config.watches,
                "--audit",
                "--speed",
                str(config.speed),
                "--seed",
                str(config.seed),
                within=STARTUP_S,
            )
            await self._start_agents()
            self.say(f"soak: {config.watches} watches and agents running")
            async with sampled(self.timeline, self._reading, CHART_EVERY_S):
                await self._faults(began)
                await self._settle()
        finally:
            await self._stop()
            await self.timeline.write(config.chart or config.directory, self.say)
        return await self._report(time.monotonic() - began)

    async def _faults(self, began: float) -> None:
        config = self.config
        kinds = itertools.cycle(FAULT_KINDS)
        step = config.duration_s / (config.faults + 1)
        for n in range(config.faults):
            # Pacing, not synchronisation: the outcome must not depend on these times.
            await asyncio.sleep(max(0.0, began + step * (n + 1) - time.monotonic()))
            kind = next(kinds)
            await self._fault(kind)
            self.faults[kind] += 1
        await asyncio.sleep(max(0.0, began + config.duration_s - time.monotonic()))

    async def _fault(self, kind: str) -> None:
        watch = f"FLEET-{self._rng.randrange(self.config.watches) + 1:04d}"
        self.say(f"soak: fault {kind}" + (f" on {watch}" if kind in FAULT_KINDS[:2] else ""))
        self.timeline.fault(kind)
        if kind == "out-of-range":
            await request(self.fleet_dir, ToWatch(watch, OutOfRange(10)))
        elif kind == "reboot":
            await request(self.fleet_dir, ToWatch(watch, Reboot()))
        elif kind == "agent-kill":
            assert self.agents is not None
            await self.agents.kill()
            await self._start_agents()
        elif kind == "broker-restart":
            self.broker.stop()
            self.broker.start()
        else:
            await request(self.fleet_dir, AirRestart(1))

    async def _settle(self) -> None:
        """Stop measuring, then wait until the receiver holds every watch's newest seq."""
        await request(self.fleet_dir, Freeze())
        status = await request(self.fleet_dir, Status())
        newest = {w["address"]: w["newest_seq"] for w in status["watches"]}
        pseudonyms = self._pseudonyms()
        deadline = time.monotonic() + self.config.settle_s
        while time.monotonic() < deadline:
            held = self._receiver_held_through()
            if all(held.get(pseudonyms.get(a, ""), 0) >= (n or 0) for a, n in newest.items()):
                return
            await asyncio.sleep(0.5)  # polling with a deadline
        self.say("soak: the receiver did not catch up before the deadline")

    def _reading(self) -> Reading:
        """Records each agent has stored (none while its store will not open: the agents
        starting again) and the receiver's."""
        stored: dict[str, int | None] = {}
        for identity in self._identities():
            try:
                key = read_key_file(Path(identity["key_file"]))
                with Store.open(Path(identity["data_dir"]), key) as store:
                    counts = store.counts().get(identity["address"], {})
            except (StoreError, sqlcipher3.Error, OSError):
                stored[identity["watch"]] = None
            else:
                stored[identity["watch"]] = sum(counts.values())
        return stored, received_count(self.receiver_db)

    def _identities(self) -> list[dict[str, Any]]:
        agents: list[dict[str, Any]] = json.loads((self.agents_dir / "agents.json").read_text())[
            "agents"
        ]
        return agents

    def _pseudonyms(self) -> dict[str, str]:
        return {a["address"]: a["device_pseudonym"] for a in self._identities()}

    def _receiver_held_through(self) -> dict[str, int]:
        if not self.receiver_db.exists():
            return {}
        conn = sqlite3.connect(f"file:{self.receiver_db}?mode=ro", uri=True, timeout=30)
        try:
            return held_through(conn.execute(HELD_QUERY).fetchall())
        except sqlite3.OperationalError:  # no table yet
            return {}
        finally:
            conn.close()

    async def _stop(self) -> None:
        for proc in (self.agents, self.receiver, self.watches):
            if proc is not None:
                try:
                    await proc.stop(within=STOP_S)
                except TimeoutError:
                    self.say(f"soak: {proc.name} did not stop within {STOP_S:g} s; killed")
                    await proc.kill()
        self.broker.stop()

    async def _report(self, wall_s: float) -> Report:
        db = await open_store(self.database)
        try:
            rows = await db.samples()
        finally:
            await db.close()
        by_device: dict[str, dict[int, tuple[int, int, int]]] = {}
        for device, seq, metric, ts, raw in rows:
            by_device.setdefault(device, {})[seq] = (ts, metric, raw)
        watches = []
        known: set[str] = set()
        for identity in self._identities():
            known.add(identity["device_pseudonym"])
            store = Store.open(
                Path(identity["data_dir"]), read_key_file(Path(identity["key_file"]))
            )
            try:
                address = identity["address"]
                stored = {s.seq: _content(s.sample) for s in store.iter_samples(address)}
                gaps = [(g.first_seq, g.last_seq) for g in store.gaps(address)]
            finally:
                store.close()
            audit = read_audit(self.fleet_dir / AUDIT_DIR / f"{identity['watch']}.rec")
            received = by_device.get(identity["device_pseudonym"], {})
            watches.append(self._account(identity, audit, stored, gaps, received))
        unattributed = sum(len(r) for d, r in by_device.items() if d not in known)
        return Report(watches, self.faults, unattributed, wall_s)

    def _account(
        self,
        identity: dict[str, Any],
        audit: list[Sample],
        stored: dict[int, tuple[int, int, int]],
        gaps: list[tuple[int, int]],
        received: dict[int, tuple[int, int, int]],
    ) -> WatchReport:
        """One watch's account (a run with erasures holds a watch to its erasure's bound)."""
        return account(audit, stored, gaps, received, identity["watch"])


async def soak(config: SoakConfig, say: Callable[[str], None] = print) -> Report:
    return await Soak(config, say).run()
