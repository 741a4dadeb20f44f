"""Notifications per second into a bleak callback vs raw Bumble, same process, same run.

Loopback throughput is a CPU figure, not a radio one; the ratio is what matters
(DESIGN.md expects the bleak layer to keep >= 0.9 of raw Bumble).
Rounds alternate raw and bleak so that load drifts hit both alike. The agent's radio
quietens Bumble's debug strings process-wide, so the raw rounds run quietened too, and
all devices use the same virtual controllers (``bumblekit.controller``).
Run: ``python benchmarks/bench_notify.py [--quick] [--count N] [--rounds R]``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import _common
from bleak import BleakClient
from bumble.device import Connection, Device, DeviceConfiguration, Peer
from bumble.gatt import Characteristic, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from bumblekit.quiet import quiet_bumble_debug_strings
from phoneagent.transport import BumbleRadio
from protocol import uuids

SERVICE = uuids.custom_uuid(0xFE00)
CHAR = uuids.custom_uuid(0xFE01)
WATCH = "C5:00:00:00:00:01"
PAYLOAD = bytes(20)
WAIT = 60.0


def _link() -> LocalLink:
    return LocalLink()  # type: ignore[no-untyped-call]


def _device(link: LocalLink, name: str, address: str) -> Device:
    controller = virtual_controller(name, link=link)
    return Device(
        config=DeviceConfiguration(name=name, address=Address(address)),
        host=Host(controller, AsyncPipeSink(controller)),
    )


async def _watch(link: LocalLink) -> tuple[Device, Characteristic[bytes]]:
    device = _device(link, "bench-watch", WATCH)
    characteristic: Characteristic[bytes] = Characteristic(
        CHAR, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
    )
    device.add_service(Service(SERVICE, [characteristic]))
    await device.power_on()
    await device.start_advertising(auto_restart=True, advertising_interval_min=20)
    return device, characteristic


async def _pump(
    watch: Device,
    characteristic: Characteristic[bytes],
    peer: Connection,
    done: asyncio.Event,
    count: int,
    payload: bytes = PAYLOAD,
) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await watch.notify_subscriber(peer, characteristic, payload)
    await asyncio.wait_for(done.wait(), WAIT)
    return count / (time.perf_counter() - started)


def _counter(count: int) -> tuple[Callable[..., None], asyncio.Event]:
    done = asyncio.Event()
    seen = 0

    def on_value(*_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set()

    return on_value, done


async def raw_bumble(count: int, payload: bytes = PAYLOAD) -> float:
    link = _link()
    watch, characteristic = await _watch(link)
    central = _device(link, "bench-central", "F0:00:00:00:00:02")
    await central.power_on()
    connection = await central.connect(Address(WATCH), timeout=WAIT)
    peer = Peer(connection)
    await peer.request_mtu(517)
    await peer.discover_services()
    await peer.discover_characteristics()
    (proxy,) = peer.get_characteristics_by_uuid(characteristic.uuid)
    on_value, done = _counter(count)
    await peer.subscribe(proxy, on_value)
    (watch_side,) = watch.connections.values()
    rate = await _pump(watch, characteristic, watch_side, done, count, payload)
    await connection.disconnect()
    return rate


async def bleak_backend(count: int) -> float:
    link = _link()
    watch, characteristic = await _watch(link)
    async with (
        await BumbleRadio.on_link(link) as radio,
        BleakClient(WATCH, timeout=WAIT, backend=radio.client_backend) as client,
    ):
        on_value, done = _counter(count)
        await client.start_notify(CHAR, on_value)
        (watch_side,) = watch.connections.values()
        return await _pump(watch, characteristic, watch_side, done, count)


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--count", type=int, default=5000, help="notifications per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count, rounds = (1000, 3) if args.quick else (args.count, args.rounds)
    quiet_bumble_debug_strings()  # as the first BumbleRadio would: same for every round
    medians = asyncio.run(
        _common.interleaved(
            rounds,
            {"raw": lambda: raw_bumble(count), "bleak": lambda: bleak_backend(count)},
        )
    )
    _common.header("notify: bleak callback vs raw Bumble", f"median of {rounds} x {count}")
    _common.compare(
        _common.Rate("bleak backend (BumbleRadio)", medians["bleak"], "notifications"),
        _common.Rate("raw Bumble Peer.subscribe", medians["raw"], "notifications"),
        target=0.9,
    )


if __name__ == "__main__":
    main()
