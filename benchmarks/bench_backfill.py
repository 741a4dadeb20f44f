"""7-day backfill over loopback: seconds and samples/s, peak RSS, next to two floors.

Two modes:

- ``split`` (the issue's target: <= 2 s, agent peak RSS < 100 MB): the watch is a
  separate ``watchsim run`` process on a ``watchsim air`` process, and the agent is
  ``phoneagent sync ADDRESS`` run as a user runs it, after ``phoneagent pair``, timed
  from its start to its exit (interpreter, imports, opening the store, scan, connect,
  encrypt, REPORT, decode, ``store_batch``, DELETE_UP_TO). Its peak RSS is that
  process's. The fixed part is printed beside it: ``phoneagent status`` on the same data
  dir (start, imports, the store opened, exit).
- ``inproc``: watch and agent share this process and an in-process air (``new_link``,
  as ``phoneagent demo`` and ``watchsim air`` use), ``DeviceSync.sync_once`` timed
  alone; the RSS then covers both, including the watch's history.

Floors measured in the same run, in this process: raw Bumble notifications of 512 bytes
(a full history batch) on a LocalLink, as samples/s at the batch size the history uses,
with Bumble's debug strings quietened and the same virtual controllers (251-byte LE ACL
buffers, ``bumblekit``) as the watch and the agent use; raw sqlcipher3 batched inserts
(``executemany``) of the same number of samples. A CPU figure: the CPU seconds of the
agent, watch and air processes are printed too (the machine is shared).

    python benchmarks/bench_backfill.py [--quick] [--days 7] [--mode both|split|inproc]
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import _common
from bench_notify import in_process, raw_bumble
from bench_store import bench_raw, make_samples

import tests.processes
from bumblekit.quiet import quiet_bumble_debug_strings
from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import Committed, DeviceSync, StoreBonds, SyncObserver, SyncPreferences
from phoneagent.sync.discovery import pair_device
from phoneagent.sync.preferences import fixed_preferences
from phoneagent.transport import BumbleRadio, radio_transport
from protocol import history
from tests.processes import WATCH_CLI, Phone, line
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch

KEY = DbKey("5a" * 32)
WAIT = 120.0
# A full history notification: 8-byte header, then 6-byte compact entries.
PER_NOTIFICATION = (history.MAX_PAYLOAD - 8) // 6
AGENT_RSS_TARGET_MB = 100.0
SPLIT_SECONDS_TARGET = 2.0
INPROC_SECONDS_TARGET = 15.0


class Passkeys:
    """The agent's pairing agent: enters the passkey the watch displayed."""

    def __init__(self, shown: asyncio.Queue[int]) -> None:
        self._shown = shown

    async def enter_passkey(self, peer: str) -> int | None:
        async with asyncio.timeout(WAIT):
            return await self._shown.get()

    async def confirm_number(self, peer: str, number: int) -> bool:
        return False


class Count(SyncObserver):
    def __init__(self) -> None:
        self.new = 0

    async def committed(self, commit: Committed) -> None:
        self.new += commit.result.new


@dataclass(frozen=True, slots=True)
class Backfill:
    samples: int
    seconds: float
    rss_mb: float  # peak RSS of the agent (split: the sync process; inproc: this one)


async def _agent(radio: BumbleRadio, address: str, store: Store) -> tuple[int, float]:
    """Pair and backfill; (samples stored, seconds of ``sync_once``)."""
    transport = radio_transport(radio)
    await pair_device(transport, store, address, scan_timeout=WAIT)
    astore = AsyncStore(store)
    counter = Count()
    sync = DeviceSync(
        address, transport, astore, fixed_preferences(SyncPreferences()), observer=counter
    )
    began = time.perf_counter()
    await sync.sync_once(scan_timeout=WAIT)
    elapsed = time.perf_counter() - began
    await radio.close()
    await astore.aclose()
    return counter.new, elapsed


async def inproc(days: float, work: Path) -> Backfill:
    link = new_link()
    watch = await start_loopback_watch(link, work / "watch", seed=7, backfill=timedelta(days=days))
    store = Store.open(work / "agent", KEY)
    radio = await BumbleRadio.on_link(link, bonds=StoreBonds(store), agent=Passkeys(watch.passkeys))
    stored, elapsed = await _agent(radio, watch.address, store)
    await watch.stop()
    return Backfill(stored, elapsed, _common.peak_rss_mb())


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WATCH_CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=tests.processes.ENV,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _timed(phone: Phone, *args: str) -> tuple[str, float]:
    began = time.perf_counter()
    out = await phone(*args)
    return out, time.perf_counter() - began


async def split(days: float, work: Path) -> Backfill:
    air = await _spawn("air", "--port", "0")
    watch = None
    try:
        host, port = (await line(air, r"listening on ([\d.]+):(\d+)", wait=WAIT)).groups()
        began = time.perf_counter()
        watch = await _spawn(
            "run",
            *("--transport", "loopback", "--air", f"{host}:{port}", "--seed", "7"),
            *("--backfill", f"{days * 24 * 60:.0f}m", "--state-dir", str(work / "watch")),
            *("--name", "BenchWatch"),
        )
        address = (await line(watch, r"ready: address ([0-9A-F:]{17})", wait=WAIT))[1]
        print(f"   watch process ready in {time.perf_counter() - began:.1f} s (history built)")
        phone = Phone(work / "agent", f"loopback:{host}:{port}", wait=WAIT)
        await phone("pair", address, passkey_from=watch)
        _, fixed = await _timed(phone, "status")
        cpu = {"watch": _cpu_seconds(watch.pid), "air": _cpu_seconds(air.pid)}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, elapsed = await _timed(phone, "sync", address)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {
            "agent": after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
            **{
                name: _cpu_seconds(p.pid) - cpu[name]
                for name, p in (("watch", watch), ("air", air))
            },
        }
        stored = re.search(r"Stored (\d+) new sample", out)
        assert stored is not None, out
        print(f"   fixed part: `phoneagent status` on the same data dir {fixed:.2f} s")
        print("   CPU-s during the sync: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
        # The children waited for so far are the pair, status and sync commands: the
        # largest is the sync (this process's own RSS is not in it).
        return Backfill(int(stored[1]), elapsed, after.ru_maxrss / 1024)
    finally:
        for process in (watch, air):
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()


def report(title: str, run: Backfill, notify_rate: float, insert_rate: float) -> None:
    _common.header(title, f"{run.samples:,} samples stored in {run.seconds:.2f} s")
    _common.compare(
        _common.Rate("agent backfill", run.samples / run.seconds, "samples"),
        _common.Rate(
            f"raw Bumble (quiet) 512-byte notifications x {PER_NOTIFICATION}",
            notify_rate * PER_NOTIFICATION,
            "samples",
        ),
        _common.Rate("raw SQLCipher inserts, 8192 per txn", insert_rate, "samples"),
    )


def _compiled_like_an_install() -> None:
    """Child processes keep their bytecode, as an installed package has it (pip compiles
    it): with PYTHONDONTWRITEBYTECODE, which this box sets, every command compiled our
    sources again, about 0.5 CPU-s of its start. The bytecode goes to a temporary
    prefix, not into the source tree."""
    tests.processes.ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    tests.processes.ENV["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir(), "bench-pyc"))


def main() -> None:
    _compiled_like_an_install()
    parser = _common.parser(__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--mode", choices=("both", "split", "inproc"), default="both")
    parser.add_argument("--notifications", type=int, default=10_000)
    args = parser.parse_args()
    days = 1.0 if args.quick else args.days
    runs: dict[str, Backfill] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.mode in ("both", "split"):
            runs["split"] = asyncio.run(split(days, work / "split"))
        if args.mode in ("both", "inproc"):
            runs["inproc"] = asyncio.run(inproc(days, work / "inproc"))
        quiet_bumble_debug_strings()  # as the watch and the agent have it: one floor for both
        notify_rate = asyncio.run(
            in_process(args.notifications, raw_bumble, bytes(history.MAX_PAYLOAD))
        )
        stored = max(run.samples for run in runs.values())
        samples = make_samples(stored)
        batches = [samples[i : i + 8192] for i in range(0, stored, 8192)]
        insert_rate = stored / bench_raw(work / "raw", KEY, batches)
    if "split" in runs:
        run = runs["split"]
        title = f"backfill {days:g} d, `phoneagent sync` with the watch in its own process"
        report(title, run, notify_rate, insert_rate)
        _common.limit("`phoneagent sync` start to exit", run.seconds, "s", SPLIT_SECONDS_TARGET)
        _common.limit("agent peak RSS", run.rss_mb, "MB", AGENT_RSS_TARGET_MB)
    if "inproc" in runs:
        run = runs["inproc"]
        title = f"backfill {days:g} d, watch and agent in one process"
        report(title, run, notify_rate, insert_rate)
        _common.limit("backfill time", run.seconds, "s", INPROC_SECONDS_TARGET)
        print(f"   peak RSS of watch + agent: {run.rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
