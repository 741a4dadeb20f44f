"""Fleet size on this machine: N watch+agent pairs at 1 Hz per metric, latency and memory.

Per size N, three processes as a back-end team would run them: ``watchsim fleet`` (N
watches and the air), ``phoneagent fleet`` (N agents, each with its own SQLCipher store
and MQTT connection) and a local Mosquitto. Every metric is measured every second
(4 samples/s per watch). After pairing and a warm-up, the agents record, for every sample
taken in the window, sample time -> committed in the store and sample time -> PUBACK from
the broker. The baseline is the same pipeline with one pair, measured in the same run: the
latency floor and the fixed cost of the two processes.

Reported per N: p50/p99 of both latencies (ms), whether the fleet kept up (samples stored
and acknowledged in the window vs generated), resident memory per pair (total of both
processes / N, and the marginal cost above one pair), CPU seconds per pair per minute, and
the cores each process used in the window (the watch fleet, each agent worker, Mosquitto).
The watches measure at staggered phases in the second and latency counts from that moment
(``watchsim.fleet``); ``--no-stagger`` measures them all on the second boundary.
Two charts are written as PNGs (their paths printed): the latency percentiles and the
throughput per N, and, over each N's window second by second, the broker-ack latency
p50/p99, the throughput and the cores all processes used (``harness.fleet`` keeps a
latency histogram per second). With ``--results`` the figures go to
``benchmarks/RESULTS-fleet.md`` and the charts beside it (``RESULTS-fleet.png``,
``RESULTS-fleet-time.png``).

    python benchmarks/bench_fleet.py [--quick] [--sizes 1,100,300,500] [--seconds 60]
        [--dir DIR]

``--dir`` keeps the fleet (watches, paired agents, the broker and its port) in DIR, so a
later run with the same DIR pairs nobody again: A/B runs of two versions of the code at
N=300 then take a minute each instead of five.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _common
import _speed
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from harness import chart
from harness.fleet import INTERVAL_S, START_RATE
from heapkit import huge_page_mode
from tests.fleetrun import cloud_toml, start_agents, start_watches
from tests.mosquitto import Broker
from watchsim.control import request
from watchsim.controlops import FleetUsage

P99_TARGET_MS = 1000
RSS_TARGET_MB = 20.0
TARGET_PAIRS = 1000
MILLICORES_TARGET = 1.0  # per pair, all processes: 1,000 pairs on this 2-core machine
METRICS = 4  # heart rate, steps, SpO2, skin temperature: one each per second


@dataclass(frozen=True)
class Run:
    pairs: int
    seconds: float
    stored: dict[str, float | int | None]
    acked: dict[str, float | int | None]
    watch_usage: dict[str, float]
    agent_result: dict[str, float]
    cores: dict[str, float]  # CPU used in the window / window, per process
    timeline: list[dict[str, float]]  # the same, second by second
    window_wall: float  # when the window began (wall clock)
    over_time: list[dict[str, Any]]  # latency per INTERVAL_S of wall time (harness.fleet)
    load: tuple[float, float, float]  # load average at the end of the window

    @property
    def rss_mb(self) -> float:
        return float(self.watch_usage["peak_rss_mb"]) + float(self.agent_result["peak_rss_mb"])

    @property
    def cpu_s(self) -> float:
        return float(self.watch_usage["cpu_s"]) + float(self.agent_result["cpu_s"])

    @property
    def expected(self) -> float:
        """Samples the window should have produced at 1 Hz per metric."""
        return self.pairs * METRICS * self.seconds

    def kept_up(self) -> float:
        return float(self.acked["samples"] or 0) / self.expected

    @property
    def millicores_per_pair(self) -> float:
        """Every process's cores in the window (watches, agents, broker), per pair."""
        return 1000 * sum(self.cores.values()) / self.pairs


def _kept_port(root: Path) -> int | None:
    """The broker port of an earlier run in ``root``: its agents were configured for it
    (each agent keeps its own copy of ``cloud.toml``)."""
    try:
        return int(tomllib.loads((root / "cloud.toml").read_text())["regions"]["eu"]["port"])
    except FileNotFoundError:
        return None


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes(watches: int, agents: int, broker: int) -> dict[str, int]:
    """The pids to watch: the agent fleet's workers when it has them, else itself."""
    children = Path(f"/proc/{agents}/task/{agents}/children").read_text().split()
    workers = {f"agents {i}": int(pid) for i, pid in enumerate(children)}
    return {"watches": watches, **(workers or {"agents": agents}), "mosquitto": broker}


async def measure(
    root: Path,
    broker: Broker,
    pairs: int,
    warmup: float,
    seconds: float,
    stagger: bool,
    processes: int | None,
) -> Run:
    # One directory for every size: the first N watches and agents of the previous size are
    # reused, so each is paired once (pairing is a one-off, not what is measured).
    directory = root
    cloud = cloud_toml(root / "cloud.toml", broker.port)
    warmup += pairs / START_RATE  # the agents start in waves
    # Pairing hundreds of agents takes a while: generous deadlines, not timings.
    staggering = "--stagger" if stagger else "--no-stagger"
    watches = await start_watches(
        directory / "watches", pairs, "--interval", "1", staggering, within=120
    )
    try:
        agents = await start_agents(
            directory / "agents",
            directory / "watches" / "fleet.json",
            "--cloud",
            str(cloud),
            "--latency-after",
            str(warmup),
            *(["--processes", str(processes)] if processes else []),
            within=60 + 3 * pairs,
        )
        try:
            await asyncio.sleep(warmup)
            pids = _processes(watches.process.pid, agents.process.pid, broker.pid)
            window_wall = time.time()
            cores, timeline = await _cores_used(pids, seconds)
            load = os.getloadavg()
            usage = await request(directory / "watches", FleetUsage())
        finally:
            await agents.stop(within=120)
        result = json.loads((directory / "agents" / "result.json").read_text())
    finally:
        await watches.stop(within=120)
    latency = result["latency"]
    return Run(
        pairs,
        seconds,
        latency["stored"],
        latency["acked"],
        usage,
        result,
        cores,
        timeline,
        window_wall,
        latency["over_time"],
        load,
    )


async def _cores_used(
    pids: dict[str, int], seconds: float
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Cores each process used over the window (it is a duration), and in each second."""
    first = last = {name: _cpu_s(pid) for name, pid in pids.items()}
    began = ticked = time.monotonic()
    timeline = []
    while ticked - began < seconds:
        await asyncio.sleep(min(1.0, seconds - (ticked - began)))
        now, at = {name: _cpu_s(pid) for name, pid in pids.items()}, time.monotonic()
        timeline.append({name: (now[name] - last[name]) / (at - ticked) for name in pids})
        last, ticked = now, at
    return {name: (last[name] - first[name]) / (ticked - began) for name in pids}, timeline


def show(run: Run, base: Run) -> list[str]:
    per_pair = run.rss_mb / run.pairs
    marginal = (run.rss_mb - base.rss_mb) / max(1, run.pairs - 1) if run.pairs > 1 else per_pair
    cpu_per_min = run.cpu_s / run.pairs / ((run.seconds + float(run.agent_result["wall_s"])) / 2)
    lines = [
        f"N={run.pairs}: stored p50 {run.stored['p50_ms']} ms p99 {run.stored['p99_ms']} ms; "
        f"broker ack p50 {run.acked['p50_ms']} ms p99 {run.acked['p99_ms']} ms "
        f"(baseline N=1: p50 {base.acked['p50_ms']} ms, p99 {base.acked['p99_ms']} ms)",
        f"      kept up: {run.kept_up():.3f} of the samples due in the window were acknowledged; "
        f"agent radios failed and reopened: {run.agent_result.get('radio_failed', 0)}",
        f"      RSS {run.rss_mb:.0f} MB for both processes = {per_pair:.2f} MB per pair "
        f"(marginal {marginal:.2f} MB per pair above N=1's {base.rss_mb:.0f} MB); "
        f"CPU {run.cpu_s:.0f} s = {cpu_per_min * 60:.2f} CPU-s per pair per minute",
        f"      cores in the window: {_cores(run)} = {run.millicores_per_pair:.2f} milli-cores"
        f" per pair; load average at its end {_load(run)}",
    ]
    return lines


def _cores(run: Run) -> str:
    return ", ".join(f"{name} {used:.2f}" for name, used in run.cores.items())


def _load(run: Run) -> str:
    return " ".join(f"{x:.2f}" for x in run.load)


def machine() -> list[str]:
    mosquitto = subprocess.run(
        ["mosquitto", "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    versions = ", ".join(
        f"{p} {version(p)}" for p in ("bumble", "bleak", "sqlcipher3", "aiomqtt", "paho-mqtt")
    )
    return [
        f"- {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"transparent huge pages: {huge_page_mode() or 'unknown'}",
        f"- Python {platform.python_version()} ({_interpreter()}), {versions}, {mosquitto}",
    ]


def _interpreter() -> str:
    """Which build runs the fleet: the same code used less CPU on Debian's CPython (PGO,
    linked statically) than on pyenv's default build (a shared libpython, no PGO):
    docs/scaling.md, step 20."""
    maps = Path("/proc/self/maps")
    shared = maps.exists() and "libpython" in maps.read_text(errors="replace")
    linked = "libpython shared" if shared else "libpython linked in"
    return f"{os.path.realpath(sys.executable)}, {linked}"


async def main() -> None:
    args = _common.parser(__doc__)
    args.add_argument(
        "--sizes", default="1,100,300,500", help="fleet sizes, the first is the baseline"
    )
    args.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    args.add_argument("--warmup", type=float, default=15.0)
    args.add_argument("--results", action="store_true", help="write benchmarks/RESULTS-fleet.md")
    args.add_argument(
        "--dir", type=Path, help="keep the paired fleet here and reuse it (default: a temp dir)"
    )
    args.add_argument(
        "--no-stagger",
        dest="stagger",
        action="store_false",
        help="every watch measures on the second boundary (watchsim fleet --no-stagger)",
    )
    args.add_argument(
        "--processes",
        type=int,
        help="agent worker processes (phoneagent fleet --processes; default: its own)",
    )
    options = args.parse_args()
    sizes = [1, 10] if options.quick else [int(s) for s in options.sizes.split(",")]
    seconds = 10.0 if options.quick else options.seconds
    warmup = 5.0 if options.quick else options.warmup
    _common.header(
        "fleet: watch+agent pairs at 1 Hz per metric -> SQLCipher -> Mosquitto",
        f"sizes {sizes}, warm-up {warmup:g} s, window {seconds:g} s",
    )
    about = machine()
    started = time.strftime("%Y-%m-%d %H:%M")
    speed_before = _speed.reference_cpu_s()
    runs: list[Run] = []
    with contextlib.ExitStack() as stack:
        if options.dir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        else:
            root = options.dir
            root.mkdir(parents=True, exist_ok=True)
        broker = Broker(root, port=_kept_port(root))
        broker.start()
        try:
            for pairs in sizes:
                runs.append(
                    await measure(
                        root, broker, pairs, warmup, seconds, options.stagger, options.processes
                    )
                )
                for line in show(runs[-1], runs[0]):
                    print("   " + line)
        finally:
            broker.stop()
    speed = (speed_before, _speed.reference_cpu_s())
    print(
        f"   reference work (benchmarks/_speed.py): {speed[0]:.3f} CPU-s before the fleets, "
        f"{speed[1]:.3f} after: the machine's speed, to compare runs of other days by"
    )
    about.append(f"- reference work (benchmarks/_speed.py): {speed[0]:.3f} / {speed[1]:.3f} CPU-s")
    base = runs[0]
    within = [
        r
        for r in runs
        if r.acked["p99_ms"] is not None
        and r.acked["p99_ms"] < P99_TARGET_MS
        and r.kept_up() > 0.95
    ]
    best = max((r.pairs for r in within), default=0)
    verdict = "met" if best >= TARGET_PAIRS else "NOT met"
    print(
        f"   largest measured N with p99 < {P99_TARGET_MS} ms and keeping up: {best} "
        f"(target {TARGET_PAIRS}: {verdict})"
    )
    biggest = runs[-1]
    _common.limit(
        f"cores per pair at N={biggest.pairs}",
        biggest.millicores_per_pair,
        "milli-cores",
        MILLICORES_TARGET,
    )
    _common.limit(
        f"RSS per pair at N={biggest.pairs}", biggest.rss_mb / biggest.pairs, "MB", RSS_TARGET_MB
    )
    if options.results:
        write_results(started, about, runs, base, best, options.stagger)
        pictures = _common.ROOT / "benchmarks" / "RESULTS-fleet"
    else:
        pictures = Path(tempfile.mkdtemp(prefix="bench-fleet-")) / "fleet"
    for figure, picture in (
        (by_size(runs), pictures.with_suffix(".png")),
        (over_time(runs), pictures.with_name(f"{pictures.name}-time.png")),
    ):
        await chart.write_png(figure, picture)
        print(f"   chart: {picture}")


def by_size(runs: list[Run]) -> go.Figure:
    """Latency percentiles and throughput per fleet size."""
    figure = make_subplots(
        rows=2,
        cols=1,
        vertical_spacing=0.15,
        subplot_titles=[
            "Latency by fleet size (ms, from the sample's moment)",
            "Throughput by fleet size (samples per second)",
        ],
    )
    pairs = [str(r.pairs) for r in runs]
    for stage in ("stored", "acked"):
        for percentile in ("p50_ms", "p99_ms"):
            figure.add_trace(
                go.Scatter(
                    x=pairs,
                    y=[getattr(r, stage)[percentile] for r in runs],
                    name=f"{stage} {percentile[:3]}",
                    mode="lines+markers",
                ),
                row=1,
                col=1,
            )
    figure.add_trace(
        go.Bar(x=pairs, y=[r.expected / r.seconds for r in runs], name="due"), row=2, col=1
    )
    figure.add_trace(
        go.Bar(x=pairs, y=[(r.acked["samples"] or 0) / r.seconds for r in runs], name="acked"),
        row=2,
        col=1,
    )
    figure.update_xaxes(title_text="pairs", type="category", row=1, col=1)
    figure.update_xaxes(title_text="pairs", type="category", row=2, col=1)
    figure.update_layout(height=700, template="plotly_white", barmode="group")
    return figure


def over_time(runs: list[Run]) -> go.Figure:
    """Each size's window second by second: a stall or a slow climb shows where a p99 of
    the whole window cannot."""
    latency, throughput, cores = [], [], []
    for run in runs:
        group = f"N={run.pairs}"
        seconds = [
            s for s in run.over_time if 0 <= s["at"] - run.window_wall <= run.seconds - INTERVAL_S
        ]
        at = [s["at"] - run.window_wall for s in seconds]
        for percentile, dash in (("p50_ms", "dot"), ("p99_ms", "solid")):
            y = [s["acked"][percentile] for s in seconds]
            latency.append(chart.Series(f"{group} {percentile[:3]}", at, y, group, dash))
        acked = [s["acked"]["samples"] / INTERVAL_S for s in seconds]
        throughput.append(chart.Series(f"{group} acked", at, acked, group))
        used = [sum(second.values()) for second in run.timeline]
        cores.append(chart.Series(f"{group} cores", range(len(used)), used, group))
    return chart.over_time(
        [
            chart.Panel("Latency to the broker's ack (ms; dotted p50, solid p99)", latency),
            chart.Panel(f"Samples acknowledged per second ({METRICS} due per pair)", throughput),
            chart.Panel("Cores used by all processes", cores),
        ],
        "second of the window",
    )


def write_results(
    started: str, about: list[str], runs: list[Run], base: Run, best: int, stagger: bool
) -> None:
    timing = (
        "Each watch measures at its own phase in the second (`watchsim fleet --stagger`); "
        "latency counts from that moment."
        if stagger
        else "Every watch measures on the second boundary (`watchsim fleet --no-stagger`)."
    )
    rows = [
        "| pairs | stored p50 / p99 ms | broker ack p50 / p99 ms | kept up | RSS MB (both) "
        "| MB per pair | CPU-s per pair per min | cores in the window | milli-cores per pair "
        "| load at its end |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        cpu = run.cpu_s / run.pairs / ((run.seconds + float(run.agent_result["wall_s"])) / 2) * 60
        rows.append(
            f"| {run.pairs} | {run.stored['p50_ms']} / {run.stored['p99_ms']} "
            f"| {run.acked['p50_ms']} / {run.acked['p99_ms']} | {run.kept_up():.3f} "
            f"| {run.rss_mb:.0f} | {run.rss_mb / run.pairs:.2f} | {cpu:.2f} "
            f"| {_cores(run)} | {run.millicores_per_pair:.2f} | {_load(run)} |"
        )
    text = "\n".join(
        [
            "# Fleet benchmark results",
            "",
            f"Written by `python benchmarks/bench_fleet.py --results` ({started}). "
            f"Baseline: N={base.pairs} in the same run. {timing} Cores: CPU seconds each "
            "process used in the window / the window.",
            "",
            "## Machine and versions",
            "",
            *about,
            "",
            "## Figures",
            "",
            *rows,
            "",
            "![Latency and throughput by fleet size](RESULTS-fleet.png)",
            "",
            "![Latency, throughput and cores second by second in each window]"
            "(RESULTS-fleet-time.png)",
            "",
            f"Largest N measured with broker-ack p99 < {P99_TARGET_MS} ms and keeping up: "
            f"**{best}** (target {TARGET_PAIRS}). Cores per pair at N={runs[-1].pairs}: "
            f"{runs[-1].millicores_per_pair:.2f} milli-cores (target <= {MILLICORES_TARGET:g}).",
            "",
        ]
    )
    (_common.ROOT / "benchmarks" / "RESULTS-fleet.md").write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
