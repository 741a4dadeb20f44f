"""``phoneagent data`` on a week of samples: time to the first line and in total, per format.

Each format runs as the real command in its own process (start-up included: that is what
a person waits for) over one store of 600k samples (a 7-day sync). The baseline, in the
same run and the same way, is a process that opens the same file with raw sqlcipher3 and
writes the same rows straight from a plain ``SELECT ... ORDER BY ts, seq`` as CSV: the
floor for reading and printing them. Ratio = baseline time / ours (1.0 = free, higher is
better). Issue 16's target: the first line within a second.

    python benchmarks/bench_data_output.py [--quick] [--samples 600000]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common
from bench_store import DEVICE, make_samples

from phoneagent.store import DbKey, Store, create_key_file

FIRST_LINE_TARGET_S = 1.0
_BASELINE = """
import csv, sys, sqlcipher3
conn = sqlcipher3.connect(sys.argv[1])
conn.execute("PRAGMA key = " + sys.argv[2])
out = csv.writer(sys.stdout)
out.writerow(("device_id", "seq", "ts", "metric", "raw"))
out.writerows(conn.execute(
    "SELECT device_id, seq, ts, metric, raw FROM samples ORDER BY device_id, ts, seq"))
"""


def build(directory: Path, key: DbKey, count: int) -> None:
    with Store.open(directory, key) as store:
        store.add_device(DEVICE)
        samples = make_samples(count)[1:]  # seq 0 is never assigned
        for start in range(0, len(samples), 8192):
            store.store_batch(DEVICE, samples[start : start + 8192])


def timed(command: list[str]) -> tuple[float, float, int]:
    """Seconds to the first line of stdout and to the end, and the lines read."""
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        process.stdout.readline()
        first = time.perf_counter() - start
        lines = 1 + sum(1 for _ in process.stdout)
    total = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"{command} exited with {process.returncode}")
    return first, total, lines


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--samples", type=int, default=600_000)
    args = parser.parse_args()
    count = 50_000 if args.quick else args.samples
    with tempfile.TemporaryDirectory() as tmp:
        data, key_file = Path(tmp) / "data", Path(tmp) / "key"
        key = create_key_file(key_file)
        build(data, key, count + 1)
        agent = [sys.executable, "-m", "phoneagent", "--data-dir", str(data)]
        agent += ["--key-file", str(key_file), "data", "--format"]
        raw = [sys.executable, "-c", _BASELINE, str(data / "phoneagent.db"), key.pragma_value()]
        base_first, base_total, base_lines = timed(raw)
        results = {fmt: timed([*agent, fmt]) for fmt in ("table", "json", "csv")}
    _common.header(
        "data output: phoneagent data vs raw sqlcipher3 SELECT to CSV",
        f"{count:,} samples of one watch, each a process of its own (start-up included)",
    )
    print(f"   {'raw SELECT -> csv':<20} first line {base_first:6.2f} s  all {base_total:6.2f} s")
    for fmt, (first, total, lines) in results.items():
        if lines < base_lines:
            raise SystemExit(f"--format {fmt} printed {lines} lines, the baseline {base_lines}")
        print(
            f"   {'data --format ' + fmt:<20} first line {first:6.2f} s  all {total:6.2f} s"
            f"   ratio first {base_first / first:.3f}, all {base_total / total:.3f}"
        )
    _common.limit(
        "slowest first line", max(r[0] for r in results.values()), "s", FIRST_LINE_TARGET_S
    )


if __name__ == "__main__":
    main()
