"""7-day backfill over loopback: samples/s stored and peak RSS, next to two floors.

The agent pairs, then ``DeviceSync.sync_once`` runs from an empty store to the watch's
newest seq (REPORT, decode, ``store_batch``, DELETE_UP_TO). Two modes:

- ``split``: the watch is a separate ``watchsim run`` process on a ``watchsim air``
  process; this process is the agent alone, so its peak RSS is the agent's. Runs first,
  before anything else grows this process.
- ``inproc``: watch and agent share this process and an in-process air (``new_link``,
  as ``phoneagent demo`` and ``watchsim air`` use; the issue's 15 s
  target); the RSS then covers both, including the watch's history.

Floors measured in the same run, in this process: raw Bumble notifications of 512 bytes
(a full history batch) on a LocalLink, as samples/s at the batch size the history uses,
with Bumble's debug strings quietened and the same virtual controllers (251-byte LE ACL
buffers, ``bumblekit``) as the watch and the agent use; raw sqlcipher3 batched inserts
(``executemany``) of the same number of samples. A CPU figure.

    python benchmarks/bench_backfill.py [--quick] [--days 7] [--mode both|split|inproc]
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import _common
from bench_notify import in_process, raw_bumble
from bench_store import bench_raw, make_samples

from bumblekit.quiet import quiet_bumble_debug_strings
from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import Committed, DeviceSync, StoreBonds, SyncObserver, SyncPreferences
from phoneagent.sync.discovery import pair_device
from phoneagent.sync.preferences import fixed_preferences
from phoneagent.transport import BumbleRadio, radio_transport
from protocol import history
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch

KEY = DbKey("5a" * 32)
WAIT = 120.0
CLI = "import sys; from watchsim.cli import main; sys.exit(main())"
# A full history notification: 8-byte header, then 6-byte compact entries.
PER_NOTIFICATION = (history.MAX_PAYLOAD - 8) // 6
AGENT_RSS_TARGET_MB = 150.0
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
    rss_mb: float  # this process's peak after the backfill


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
        CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def _line(process: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        while raw := await process.stdout.readline():
            if match := re.search(pattern, raw.decode()):
                return match
    raise RuntimeError(f"watchsim exited before printing {pattern!r}")


async def _passkeys(process: asyncio.subprocess.Process, shown: asyncio.Queue[int]) -> None:
    """Hand every PASSKEY line the watch prints to the agent."""
    while True:
        await shown.put(int((await _line(process, r"PASSKEY (\d{6})"))[1]))


async def split(days: float, work: Path) -> Backfill:
    air = await _spawn("air", "--port", "0")
    watch = None
    try:
        host, port = (await _line(air, r"listening on ([\d.]+):(\d+)")).groups()
        began = time.perf_counter()
        watch = await _spawn(
            "run",
            *("--transport", "loopback", "--air", f"{host}:{port}", "--seed", "7"),
            *("--backfill", f"{days * 24 * 60:.0f}m", "--state-dir", str(work / "watch")),
            *("--name", "BenchWatch"),
        )
        address = (await _line(watch, r"ready: address ([0-9A-F:]{17})"))[1]
        print(f"   watch process ready in {time.perf_counter() - began:.1f} s (history built)")
        shown: asyncio.Queue[int] = asyncio.Queue()
        reader = asyncio.ensure_future(_passkeys(watch, shown))
        store = Store.open(work / "agent", KEY)
        radio = await BumbleRadio.open(
            f"tcp-client:{host}:{port}", bonds=StoreBonds(store), agent=Passkeys(shown)
        )
        stored, elapsed = await _agent(radio, address, store)
        reader.cancel()
        return Backfill(stored, elapsed, _common.peak_rss_mb())
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


def main() -> None:
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
        report(f"backfill {days:g} d, watch in its own process", run, notify_rate, insert_rate)
        _common.limit("agent peak RSS", run.rss_mb, "MB", AGENT_RSS_TARGET_MB)
    if "inproc" in runs:
        run = runs["inproc"]
        title = f"backfill {days:g} d, watch and agent in one process"
        report(title, run, notify_rate, insert_rate)
        _common.limit("backfill time", run.seconds, "s", INPROC_SECONDS_TARGET)
        print(f"   peak RSS of watch + agent: {run.rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
