"""Many simulated watches in one process, on one loopback air that agents join over TCP.

Why one process: a watch is mostly idle (one model step per simulated second), so its cost
is memory and event-loop wake-ups, not a process and an interpreter of its own. The watches
sit on the air's own ``LocalLink`` (no TCP or H4 parsing on their side, which halves the
air's work per packet); only agents come in over TCP. Each watch is a full ``WatchApp``
with its own state dir (identity address, bonds, history), seed, scenario and control
socket, so ``watchsim ctl --state-dir`` drives any one of them, and the fleet has a control
socket of its own in its directory (``status``, ``freeze``, ``air-restart``, ``usage``,
``watch NAME ...``).

Accelerated clocks share one timeline, ``simulated = epoch + (wall - epoch) * speed``, kept
in the manifest: a watch at a speed other than 1 keeps it (it refuses a phone's time,
docs/protocol.md), agents at speed 1 set the clocks from the same timeline (``phoneagent
fleet`` does) and so move them by less than a second, and a restarted fleet continues it.

With ``audit`` every record a watch appends is also written to ``audit/NAME.rec`` (see
``read_audit``): what a soak run compares the agents' stores and the receiver with.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from heapkit import back_in_background, freeze_long_lived, hold_full_collections
from protocol.metrics import Metric, Sample
from watchsim.app import PERSONALITIES, LinkRadio, WatchApp, WatchConfig, WatchError
from watchsim.app.settings_service import SettingsStore
from watchsim.control import (
    ControlError,
    ControlServer,
    ControlUsageError,
    LineServer,
    socket_path,
    start_controlled,
)
from watchsim.controlops import AirRestart, AnyOp, FleetUsage, Freeze, Status, ToWatch
from watchsim.history import DEFAULT_CAPACITY, History
from watchsim.model import load_builtin
from watchsim.peripheral.port import PairingMode

MANIFEST: Final = "fleet.json"
AUDIT_DIR: Final = "audit"
if TYPE_CHECKING:
    from watchsim.air import Air

DEFAULT_SCENARIOS: Final = ("default-day", "workout", "sleep-lab")
# Watches started at once: each start is a burst of in-process HCI work.
START_CONCURRENCY: Final = 16
# Watch i measures at frac(i * golden ratio) into each second, rounded down to a slot: any
# run of consecutive watches spread evenly over the second (``sample_phase``).
_GOLDEN: Final = (5**0.5 - 1) / 2
# A staggered fleet measures in this many slots of the second (20 ms each). The watches of
# a slot measure in one turn of the loop and their records reach each agent worker and the
# broker together, so every process wakes once per slot, not once per watch.
SAMPLE_SLOTS: Final = 50
_AUDIT: Final = struct.Struct("<QqBi")  # seq, timestamp, metric, raw
_METRICS: Final = {int(m): m for m in Metric}


@dataclass(frozen=True)
class FleetConfig:
    directory: Path
    count: int
    seed: int = 1
    scenarios: Sequence[str] = DEFAULT_SCENARIOS
    speed: float = 1.0
    backfill_s: int = 0
    # Every metric measured this often (s); None keeps the watch defaults (HR 1 s, ...).
    interval_s: int | None = None
    pairing: PairingMode = PairingMode.PASSKEY
    personality: str = "watchsim"  # a key of watchsim.app.PERSONALITIES
    prefix: str = "FLEET"
    history_capacity: int = DEFAULT_CAPACITY
    audit: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    # Every advertiser reaches every scanner on the air, so a fleet's (re)connection
    # storm costs advertisers x scanners x rate: watches out of a connection advertise
    # at a watch-like 1 s rather than the 100 ms of a single simulated watch.
    advertising_interval_ms: float = 1000.0
    # Hundreds of histories fsyncing several times a second each would block the one
    # event loop; without it a killed fleet still loses nothing, a host crash could.
    durable: bool = False
    # One sample phase per watch (``sample_phase``) instead of every watch measuring on the
    # second boundary: the fleet's work is spread over the second, not a burst at its start.
    stagger: bool = True


def sample_phase(index: int) -> float:
    """When in each second watch ``index`` of a staggered fleet measures (0 <= phase < 1):
    spread over the second by the golden ratio, on a grid of ``SAMPLE_SLOTS``."""
    return int((index * _GOLDEN) % 1.0 * SAMPLE_SLOTS) / SAMPLE_SLOTS


@dataclass(frozen=True)
class Usage:
    """What the process cost: peak RSS, RSS before the watches started, CPU seconds."""

    count: int
    wall_s: float
    peak_rss_mb: float
    base_rss_mb: float
    cpu_s: float

    @property
    def rss_per_member_mb(self) -> float:
        return (self.peak_rss_mb - self.base_rss_mb) / max(1, self.count)

    def as_dict(self) -> dict[str, float]:
        return {
            "count": self.count,
            "wall_s": round(self.wall_s, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "base_rss_mb": round(self.base_rss_mb, 1),
            "rss_per_watch_mb": round(self.rss_per_member_mb, 2),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_per_watch_s": round(self.cpu_s / max(1, self.count), 3),
        }


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def read_audit(path: Path) -> list[Sample]:
    """Every record one watch appended, in order (the file ``audit`` mode writes)."""
    data = path.read_bytes()
    usable = len(data) - len(data) % _AUDIT.size
    return [
        Sample(seq, ts, _METRICS[metric], raw)
        for seq, ts, metric, raw in _AUDIT.iter_unpack(data[:usable])
    ]


class _Audit:
    """Appends each durable history batch to the watch's audit file (no fsync: a record)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def appended(self, history: History, first: int, last: int) -> None:
        records = history.read(first, last - first + 1).samples
        pack = _AUDIT.pack
        data = b"".join(pack(s.seq, s.timestamp, int(s.metric), s.raw) for s in records)
        os.write(self._fd, data)

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class FleetWatch:
    name: str
    seed: int
    scenario: str
    app: WatchApp
    control: ControlServer
    phase: float
    audit: _Audit | None = None

    def entry(self) -> dict[str, Any]:
        """The watch's line in the manifest."""
        return {
            "name": self.name,
            "address": self.app.radio.address,
            "state_dir": str(self.app.config.state_dir),
            "control": str(self.control.path),
            "seed": self.seed,
            "scenario": self.scenario,
            "phase": self.phase,
        }


class Fleet:
    """``await start()``, then ``await stop()``; see the module docstring."""

    def __init__(self, config: FleetConfig) -> None:
        if config.count < 1:
            raise WatchError("a fleet needs at least one watch")
        if config.speed <= 0:
            raise WatchError("the speed must be positive")
        self.config = config
        from watchsim.air import Air  # Bumble: loaded when a fleet is built, not by the CLI

        self.air: Air = Air(config.host, config.port)
        self.watches: list[FleetWatch] = []
        self.address = ""
        self.epoch = self._epoch()
        self._started = time.monotonic()
        self._base_rss = current_rss_mb()
        self._base_cpu = _cpu_s()

    @property
    def manifest_path(self) -> Path:
        return self.config.directory / MANIFEST

    def _epoch(self) -> float:
        """The timeline's anchor: kept from an earlier run of this fleet directory."""
        try:
            previous = json.loads(self.manifest_path.read_text())
        except (FileNotFoundError, ValueError):
            return time.time()
        epoch = previous.get("epoch")
        same = previous.get("speed") == self.config.speed
        return float(epoch) if same and isinstance(epoch, int | float) else time.time()

    def simulated_now(self) -> float:
        return self.epoch + (time.time() - self.epoch) * self.config.speed

    async def start(self) -> None:
        config = self.config
        config.directory.mkdir(parents=True, exist_ok=True)
        host, port = await self.air.start()
        self.address = f"{host}:{port}"
        gate = asyncio.Semaphore(START_CONCURRENCY)
        # Each full collection would walk every watch started so far; young ones come every
        # 10,000 net allocations from here on (``heapkit.collector``).
        hold_full_collections()

        async def one(index: int) -> FleetWatch:
            async with gate:
                return await self._start_watch(index)

        self.watches = list(await asyncio.gather(*(one(i) for i in range(config.count))))
        self._write_manifest()
        # Hundreds of watches' long-lived objects (models, histories, GATT tables) are
        # made: out of the collector's sight, a full collection no longer walks them all,
        # and on huge pages, each watch's turn no longer starts with TLB misses.
        freeze_long_lived()
        back_in_background()

    async def _start_watch(self, index: int) -> FleetWatch:
        config = self.config
        name = f"{config.prefix}-{index + 1:04d}"
        scenario = config.scenarios[index % len(config.scenarios)]
        state_dir = config.directory / "watches" / name
        phase = sample_phase(index) if config.stagger else 0.0
        watch_config = WatchConfig(
            state_dir=state_dir,
            name=name,
            seed=config.seed + index,
            scenario=load_builtin(scenario),
            speed=config.speed,
            start_time=self.simulated_now(),
            backfill_s=config.backfill_s,
            pairing=config.pairing,
            history_capacity=config.history_capacity,
            durable_history=config.durable,
            sample_phase=phase,
        )
        radio = LinkRadio(
            self.air.link,
            state_dir,
            name,
            config.pairing,
            config.advertising_interval_ms,
            fast_advertising=False,  # a thousand watches at 20 ms would flood the air
        )
        app = PERSONALITIES[config.personality](watch_config, radio)
        app.open_state_dir()
        if config.interval_s is not None and not (state_dir / "settings.json").exists():
            for metric in Metric:
                app.model.set_metric(metric, interval_s=config.interval_s)
            SettingsStore(state_dir).save(app.model)
        audit = _Audit(config.directory / AUDIT_DIR / f"{name}.rec") if config.audit else None
        if audit is not None:
            app.append_listeners.append(audit.appended)
        control = await start_controlled(app)
        return FleetWatch(name, config.seed + index, scenario, app, control, phase, audit)

    def _write_manifest(self) -> None:
        manifest = {
            "air": self.address,
            "control": str(socket_path(self.config.directory)),
            "speed": self.config.speed,
            "epoch": self.epoch,
            "watches": [w.entry() for w in self.watches],
        }
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.manifest_path)

    async def stop(self) -> None:
        async def one(watch: FleetWatch) -> None:
            await watch.control.close()
            await watch.app.stop()
            if watch.audit is not None:
                watch.audit.close()

        await asyncio.gather(*(one(w) for w in self.watches))
        await self.air.close()

    def find(self, name: str) -> FleetWatch:
        for watch in self.watches:
            if watch.name == name:
                return watch
        raise ControlError(f"no watch named {name!r} in this fleet")

    async def freeze(self) -> None:
        """Every wearer stops producing samples (the end of a soak run)."""
        await asyncio.gather(*(w.app.stop_measuring() for w in self.watches))

    async def restart_air(self, down_s: float) -> None:
        """Drop every agent's connection to the air, stay down ``down_s``, listen again."""
        await self.air.close()
        await asyncio.sleep(down_s)  # the outage itself: its length is the point
        await self.air.start()

    def usage(self) -> Usage:
        return Usage(
            count=len(self.watches),
            wall_s=time.monotonic() - self._started,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            base_rss_mb=self._base_rss,
            cpu_s=_cpu_s() - self._base_cpu,
        )

    def status(self) -> dict[str, Any]:
        watches = []
        for watch in self.watches:
            history = watch.app.history
            status = watch.app.status()
            watches.append(
                {
                    "name": watch.name,
                    "address": watch.app.radio.address,
                    "radio": status["radio"],
                    "newest_seq": None if history is None else history.newest_seq,
                    "stored": None if history is None else history.count,
                }
            )
        return {"air": self.address, "air_clients": len(self.air.clients), "watches": watches}


class FleetControl(LineServer):
    """The fleet's own control socket (``watchsim ctl --state-dir FLEET_DIR ...``)."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(fleet.config.directory)
        self.fleet = fleet

    async def handle(self, op: AnyOp) -> Any:
        fleet = self.fleet
        match op:
            case Status():
                return fleet.status()
            case FleetUsage():
                return fleet.usage().as_dict()
            case Freeze():
                await fleet.freeze()
                return {"frozen": len(fleet.watches)}
            case AirRestart(down_s=down_s):
                await fleet.restart_air(down_s)
                return {"air": fleet.address}
            case ToWatch(name=name, command=command):
                return await fleet.find(name).control.handle(command)
        raise ControlUsageError(f"{op.word!r} is a watch's command: `watch NAME {op.word}`")
