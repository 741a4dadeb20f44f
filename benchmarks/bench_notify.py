"""Notifications per second into a bleak callback vs raw Bumble, in one process and across
processes, each mode against its baseline in the same run.

In one process, watch and central share an in-process air (``new_link``, the link
``watchsim air`` runs). Across processes, the watch runs in a process of its own and both
join a ``watchsim air`` process over TCP, as watch and agent processes do; the central
side (bleak backend or raw Bumble) is this process. The watch is the same raw Bumble GATT
server in both modes: it pushes a burst of notifications to whoever subscribes, and the
rate is counted where they arrive (first to last), so both centrals are measured the same
way in both modes.

Loopback throughput is a CPU figure, not a radio one; the ratio is what matters
(DESIGN.md expects the bleak layer to keep >= 0.9 of raw Bumble).
Rounds alternate raw and bleak so that load drifts hit both alike. The agent's radio
quietens Bumble's debug strings process-wide, so the raw rounds (and the watch process)
run quietened too, and all devices use the same virtual controllers
(``bumblekit.controller``).
Run: ``python benchmarks/bench_notify.py [--quick] [--count N] [--rounds R]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import _common
from bleak import BleakClient
from bumble.core import UUID
from bumble.device import Connection, Device, DeviceConfiguration, Peer
from bumble.gatt import Characteristic, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from bumblekit.quiet import quiet_bumble_debug_strings
from phoneagent.transport import BumbleRadio, MemoryBondStore
from protocol import uuids
from tests.processes import WATCH_CLI, line
from watchsim.peripheral.bumble_adapter import new_link

SERVICE = uuids.custom_uuid(0xFE00)
CHAR = uuids.custom_uuid(0xFE01)
WATCH = "C5:00:00:00:00:01"
PAYLOAD = bytes(20)
WAIT = 60.0
# Where a device lives: an in-process LocalLink, or the air's transport spec.
Place = LocalLink | str
_central_addresses = (f"F0:00:00:00:{n // 256:02X}:{n % 256:02X}" for n in itertools.count(2))


@contextlib.asynccontextmanager
async def _powered(place: Place, name: str, address: str) -> AsyncIterator[Device]:
    """A powered-on Bumble device on ``place``, its transport closed on the way out."""
    close: Callable[[], Awaitable[None]] | None = None
    if isinstance(place, str):
        transport = await open_transport(place)
        host = Host(transport.source, transport.sink)
        close = transport.close
    else:
        controller = virtual_controller(name, link=place)
        host = Host(controller, AsyncPipeSink(controller))
    device = Device(config=DeviceConfiguration(name=name, address=Address(address)), host=host)
    try:
        await device.power_on()
        yield device
    finally:
        if close is not None:
            await close()


async def _serve(watch: Device, count: int, payload: bytes = PAYLOAD) -> None:
    """Advertise a notify characteristic; push ``count`` notifications of ``payload`` to
    each subscriber."""
    characteristic: Characteristic[bytes] = Characteristic(
        CHAR, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
    )
    watch.add_service(Service(SERVICE, [characteristic]))
    pumps: set[asyncio.Task[None]] = set()

    async def pump(peer: Connection) -> None:
        with contextlib.suppress(Exception):  # the central may leave mid-burst: next round
            for _ in range(count):
                await watch.notify_subscriber(peer, characteristic, payload)

    def on_subscription(bearer: object, notify_enabled: bool, _indicate: bool) -> None:
        if notify_enabled and isinstance(bearer, Connection):
            task = asyncio.create_task(pump(bearer))
            pumps.add(task)
            task.add_done_callback(pumps.discard)

    characteristic.on(characteristic.EVENT_SUBSCRIPTION, on_subscription)
    await watch.start_advertising(auto_restart=True, advertising_interval_min=20)


class _Arrivals:
    """Counts notifications as they arrive; the rate runs from the first to the last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first = self.last = 0.0
        self.done = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self.seen += 1
        if self.seen == 1:
            self.first = time.perf_counter()
        if self.seen == self.count:
            self.last = time.perf_counter()
            self.done.set()

    async def rate(self) -> float:
        await asyncio.wait_for(self.done.wait(), WAIT)
        return (self.count - 1) / (self.last - self.first)


async def raw_bumble(place: Place, count: int) -> float:
    async with _powered(place, "bench-central", next(_central_addresses)) as central:
        connection = await central.connect(Address(WATCH), timeout=WAIT)
        peer = Peer(connection)
        await peer.request_mtu(517)
        await peer.discover_services()
        await peer.discover_characteristics()
        (proxy,) = peer.get_characteristics_by_uuid(UUID(CHAR))
        arrivals = _Arrivals(count)
        await peer.subscribe(proxy, arrivals)
        rate = await arrivals.rate()
        await connection.disconnect()
        return rate


async def bleak_backend(place: Place, count: int) -> float:
    bonds = MemoryBondStore()  # a fresh identity of its own, as every install has
    opening = (
        BumbleRadio.open(place, bonds=bonds)
        if isinstance(place, str)
        else BumbleRadio.on_link(place, bonds=bonds)
    )
    async with (
        await opening as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        arrivals = _Arrivals(count)
        await client.start_notify(CHAR, arrivals)
        return await arrivals.rate()


async def in_process(
    count: int, bench: Callable[[Place, int], Awaitable[float]], payload: bytes = PAYLOAD
) -> float:
    """One round on a fresh in-process air with the watch in this process."""
    link = new_link()
    async with _powered(link, "bench-watch", WATCH) as watch:
        await _serve(watch, count, payload)
        return await bench(link, count)


@contextlib.asynccontextmanager
async def _process(*args: str, ready: str) -> AsyncIterator[str]:
    """A child process, once it printed ``ready`` (a regex; yields its first group)."""
    child = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    try:
        match = await line(child, ready, wait=WAIT)
        yield match[1]
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.wait(), WAIT)
            except TimeoutError:
                child.kill()
                await child.wait()


@contextlib.asynccontextmanager
async def on_air(count: int) -> AsyncIterator[str]:
    """``watchsim air`` and a watch process on it; yields the air's transport spec."""
    air_cli = (sys.executable, "-c", WATCH_CLI, "air", "--port", "0")
    async with _process(*air_cli, ready=r"listening on ([\d.]+:\d+)") as where:
        spec = f"tcp-client:{where}"
        watch_cli = (sys.executable, __file__, "--watch-on", spec, "--count", str(count))
        async with _process(*watch_cli, ready=r"(watch) ready"):
            yield spec


async def watch_process(spec: str, count: int) -> None:
    """The watch side of the across-processes mode, until the benchmark stops it."""
    quiet_bumble_debug_strings()
    async with _powered(spec, "bench-watch", WATCH) as watch:
        await _serve(watch, count)
        print("watch ready", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await watch.stop_advertising()  # no advertising restart racing the transport's close


async def run_all(rounds: int, count: int) -> tuple[dict[str, dict[str, float]], str]:
    """Median rates: in one process, then across processes, raw and bleak interleaved; and
    the CPU time each side used across processes (the busiest process bounds the rate)."""
    medians = {
        "in one process": await _common.interleaved(
            rounds,
            {
                "raw": lambda: in_process(count, raw_bumble),
                "bleak": lambda: in_process(count, bleak_backend),
            },
        )
    }
    central_cpu = time.process_time()
    async with on_air(count) as spec:
        medians["across processes (watchsim air)"] = await _common.interleaved(
            rounds,
            {"raw": lambda: raw_bumble(spec, count), "bleak": lambda: bleak_backend(spec, count)},
        )
    central_cpu = time.process_time() - central_cpu
    others = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = f"CPU-s: centrals {central_cpu:.1f}, air + watch {others.ru_utime + others.ru_stime:.1f}"
    return medians, cpu


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="notifications per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--watch-on", metavar="SPEC", help="internal: be the watch process")
    args = parser.parse_args()
    if args.watch_on:
        asyncio.run(watch_process(args.watch_on, args.count))
        return
    count, rounds = (1000, 3) if args.quick else (args.count, args.rounds)
    quiet_bumble_debug_strings()  # as the first BumbleRadio would: same for every round
    modes, cpu = asyncio.run(run_all(rounds, count))
    for mode, medians in modes.items():
        title = f"notify {mode}: bleak callback vs raw Bumble"
        _common.header(title, f"median of {rounds} x {count}")
        _common.compare(
            _common.Rate("bleak backend (BumbleRadio)", medians["bleak"], "notifications"),
            _common.Rate("raw Bumble Peer.subscribe", medians["raw"], "notifications"),
            target=0.9,
        )
    print(f"   across processes, {cpu}")


if __name__ == "__main__":
    main()
