"""Store throughput: ``Store.store_batch`` against raw sqlcipher3 ``executemany``, same run.

Both sides write the same rows, in the same batches, into the same schema with the same
pragmas (WAL, synchronous=FULL, one commit per batch), each into a fresh encrypted file.
The ratio is what our layer costs: Sample -> row conversion, the duplicate count and
advancing the sync position inside the transaction.

A commit is an fsync, which on the shared machine swings with everyone else's disk
writes: run one side after the other and single runs gave ratios from 0.28 to 1.27. So
the two sides take turns batch by batch (which goes first alternates), each timed on its
own, and the rounds' medians are compared.

    python benchmarks/bench_store.py [--quick] [--samples 700000] [--batch 500] [--rounds 5]
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

import _common
import sqlcipher3

from phoneagent.paths import database_path
from phoneagent.store import DbKey, Store
from phoneagent.store.schema import migrate
from protocol.metrics import Metric, Sample

DEVICE = "F0:F1:F2:F3:F4:F5"
Row = tuple[int, int, int, int, int]


def make_samples(count: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    metrics = list(Metric)
    return [
        Sample(seq=seq, timestamp=1_700_000_000 + seq, metric=m, raw=rng.randrange(0, 20_000))
        for seq, m in ((seq, metrics[seq % len(metrics)]) for seq in range(count))
    ]


class RawWriter:
    """The floor: the same rows and transactions, straight into sqlcipher3."""

    def __init__(self, directory: Path, key: DbKey) -> None:
        directory.mkdir(mode=0o700)
        conn = sqlcipher3.connect(str(database_path(directory)), isolation_level=None)
        conn.execute(f"PRAGMA key = {key.pragma_value()}")
        for pragma in ("foreign_keys = ON", "temp_store = MEMORY", "synchronous = FULL"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn)
        conn.execute(
            "INSERT INTO devices (address, pseudonym, added_at) VALUES (?, 'p', 0)", (DEVICE,)
        )
        self.conn = conn

    def write(self, rows: list[Row]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT OR IGNORE INTO samples (device_id, seq, metric, ts, raw)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        self.conn.execute("COMMIT")


def rows_of(batches: list[list[Sample]]) -> list[list[Row]]:
    """The raw side's rows, made before its clock starts."""
    return [[(1, s.seq, int(s.metric), s.timestamp, s.raw) for s in b] for b in batches]


def bench_raw(directory: Path, key: DbKey, batches: list[list[Sample]]) -> float:
    """Seconds the raw side alone takes for ``batches`` (bench_backfill's SQLCipher floor)."""
    raw = RawWriter(directory, key)
    rows = rows_of(batches)
    start = time.perf_counter()
    for batch_rows in rows:
        raw.write(batch_rows)
    elapsed = time.perf_counter() - start
    raw.conn.close()
    return elapsed


def one_round(directory: Path, key: DbKey, batches: list[list[Sample]]) -> tuple[float, float]:
    """Seconds spent in ``store_batch`` and in the raw writes, batch by batch in turns."""
    rows = rows_of(batches)
    raw = RawWriter(directory / "raw", key)
    ours, floor = 0.0, 0.0
    with Store.open(directory / "store", key) as store:
        store.add_device(DEVICE)
        for i, batch in enumerate(batches):
            for side in ("store", "raw") if i % 2 else ("raw", "store"):
                began = time.perf_counter()
                if side == "store":
                    store.store_batch(DEVICE, batch)
                    ours += time.perf_counter() - began
                else:
                    raw.write(rows[i])
                    floor += time.perf_counter() - began
        expected = sum(len(b) for b in batches)
        if store.next_seq(DEVICE) != expected:
            raise SystemExit(f"sync position is {store.next_seq(DEVICE)}, expected {expected}")
    raw.conn.close()
    return ours, floor


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--samples", type=int, default=700_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = (50_000, 2) if args.quick else (args.samples, args.rounds)
    samples = make_samples(n)
    batches = [samples[i : i + args.batch] for i in range(0, n, args.batch)]
    key = DbKey(random.Random(1).randbytes(32).hex())
    ours: list[float] = []
    raw: list[float] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            ours_s, raw_s = one_round(Path(tmp), key, batches)
        ours.append(n / ours_s)
        raw.append(n / raw_s)
    _common.header(
        "store: Store.store_batch vs raw sqlcipher3",
        f"{n:,} samples in batches of {args.batch} (WAL, synchronous=FULL, commit per batch),"
        f" median of {rounds}",
    )
    _common.compare(
        _common.Rate("Store.store_batch", statistics.median(ours), "samples"),
        _common.Rate("raw sqlcipher3 executemany", statistics.median(raw), "samples"),
        target=0.9,
    )
    per_round = (f"{o / r:.2f}" for o, r in zip(ours, raw, strict=True))
    print(f"   ratio per round: {', '.join(per_round)}")


if __name__ == "__main__":
    main()
