"""7-day backfill over loopback: samples/s stored, next to its two floors in the same run.

1. raw Bumble notifications/s on a LocalLink (``bench_notify_raw.raw_bumble``), converted
   to samples/s at the batch size the backfill really used;
2. raw sqlcipher3 batched inserts of the same number of samples (``bench_store.bench_raw``);
3. the agent: pair, then ``DeviceSync.sync_once`` from an empty store to the watch's newest
   seq (REPORT, decode, ``store_batch``, DELETE_UP_TO), with peak RSS of the process.

The watch runs in the same process, so the figure includes its packing. A CPU figure.

    PYTHONPATH=. python benchmarks/bench_backfill.py [--days 7]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bumble.link import LocalLink

sys.path.insert(0, str(Path(__file__).parent))

from bench_notify_raw import raw_bumble
from bench_store import bench_raw, make_samples

from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import Committed, DeviceSync, StoreBonds, SyncObserver, SyncPreferences
from phoneagent.sync.discovery import pair_device
from phoneagent.transport import BumbleRadio, radio_transport
from watchsim.testing import LoopbackWatch, start_loopback_watch

KEY = DbKey("5a" * 32)
WAIT = 60.0


class Passkey:
    def __init__(self, watch: LoopbackWatch) -> None:
        self._watch = watch

    async def enter_passkey(self, peer: str) -> int | None:
        async with asyncio.timeout(WAIT):
            return await self._watch.passkeys.get()

    async def confirm_number(self, peer: str, number: int) -> bool:
        return False


class Count(SyncObserver):
    def __init__(self) -> None:
        self.new = 0
        self.groups = 0

    async def committed(self, commit: Committed) -> None:
        self.new += commit.result.new
        self.groups += 1


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def agent_backfill(days: float, work: Path) -> tuple[int, float, float]:
    link = LocalLink()  # type: ignore[no-untyped-call]
    started = time.perf_counter()
    watch = await start_loopback_watch(link, work / "watch", seed=7, backfill=timedelta(days=days))
    built = time.perf_counter() - started
    print(f"watch history built: {watch.history.count} records in {built:.1f} s")
    rss_before = peak_rss_mb()
    store = Store.open(work / "agent", KEY)
    astore = AsyncStore(store)
    radio = await BumbleRadio.on_link(link, bonds=StoreBonds(store), agent=Passkey(watch))
    transport = radio_transport(radio)
    await pair_device(transport, store, watch.address, scan_timeout=WAIT)
    counter = Count()
    sync = DeviceSync(watch.address, transport, astore, SyncPreferences(), observer=counter)
    start = time.perf_counter()
    await sync.sync_once(scan_timeout=WAIT)
    elapsed = time.perf_counter() - start
    await radio.close()
    await watch.stop()
    await astore.aclose()
    return counter.new, elapsed, rss_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--notifications", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stored, elapsed, rss_before = asyncio.run(agent_backfill(args.days, work))
        rss = peak_rss_mb()
        notify_rate = asyncio.run(raw_bumble(args.notifications))
        batch = [make_samples(stored)[i : i + 8192] for i in range(0, stored, 8192)]
        raw_s = bench_raw(work / "raw", KEY, batch)
    per_notification = 84  # samples per 512-byte batch (MTU 517)
    print(
        f"agent backfill: {stored} samples in {elapsed:.2f} s = {stored / elapsed:,.0f} samples/s"
    )
    print(f"  peak RSS {rss:.0f} MB (after building the watch's history: {rss_before:.0f} MB)")
    print(
        f"raw Bumble notifications (1 byte): {notify_rate:,.0f}/s"
        f" = {notify_rate * per_notification:,.0f} samples/s at 84 per batch"
    )
    print(f"raw SQLCipher inserts (8192/txn): {stored / raw_s:,.0f} samples/s")


if __name__ == "__main__":
    main()
