"""Store throughput: ``Store.store_batch`` against raw sqlcipher3 ``executemany``, same run.

Both sides write the same rows, in the same batches, into the same schema with the same
pragmas (WAL, synchronous=FULL, one commit per batch), each into a fresh encrypted file.
The ratio is what our layer costs: Sample -> row conversion, the duplicate count and
advancing the sync position inside the transaction. Each round writes fresh files, the
two sides in turns (which goes first alternates), and the medians are compared: a commit
is an fsync, and on the shared machine single runs swung between 0.48 and 1.06.

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


def make_samples(count: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    metrics = list(Metric)
    return [
        Sample(seq=seq, timestamp=1_700_000_000 + seq, metric=m, raw=rng.randrange(0, 20_000))
        for seq, m in ((seq, metrics[seq % len(metrics)]) for seq in range(count))
    ]


def bench_store(directory: Path, key: DbKey, batches: list[list[Sample]]) -> float:
    with Store.open(directory, key) as store:
        store.add_device(DEVICE)
        start = time.perf_counter()
        for batch in batches:
            store.store_batch(DEVICE, batch)
        elapsed = time.perf_counter() - start
        expected = sum(len(b) for b in batches)
        if store.next_seq(DEVICE) != expected:
            raise SystemExit(f"sync position is {store.next_seq(DEVICE)}, expected {expected}")
    return elapsed


def bench_raw(directory: Path, key: DbKey, batches: list[list[Sample]]) -> float:
    """The floor: the same rows and transactions, straight into sqlcipher3."""
    directory.mkdir(mode=0o700)
    conn = sqlcipher3.connect(str(database_path(directory)), isolation_level=None)
    conn.execute(f"PRAGMA key = {key.pragma_value()}")
    for pragma in ("foreign_keys = ON", "temp_store = MEMORY", "synchronous = FULL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    conn.execute("INSERT INTO devices (address, pseudonym, added_at) VALUES (?, 'p', 0)", (DEVICE,))
    rows = [[(1, s.seq, int(s.metric), s.timestamp, s.raw) for s in b] for b in batches]
    start = time.perf_counter()
    for batch_rows in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO samples (device_id, seq, metric, ts, raw)"
            " VALUES (?, ?, ?, ?, ?)",
            batch_rows,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


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
    for turn in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            sides = [
                (raw, lambda: bench_raw(Path(tmp) / "raw", key, batches)),
                (ours, lambda: bench_store(Path(tmp) / "store", key, batches)),
            ]
            for rates, run in sides[:: 1 if turn % 2 == 0 else -1]:
                rates.append(n / run())
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
