"""Notifications per second over a LocalLink: our Bumble adapter against raw Bumble.

Two baselines, because the adapter changes Bumble process-wide: a plain Bumble ``Device``
GATT server calling ``notify_subscriber`` measured first (stock Bumble, as a user of
Bumble gets it), then the same burst through ``BumblePeripheral.notify`` (back-pressure,
security, debug strings quietened), then the plain server again, now with the quietened
debug strings: against that one the ratio is the adapter's own cost. A CPU figure, not a
BLE figure. Run: ``python benchmarks/bench_notify_raw.py [--quick] [--count N]``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import _common
from bumble import gatt, hci
from bumble.device import Connection, Device, DeviceConfiguration, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from protocol import uuids
from watchsim.peripheral.bumble_adapter import bumble_uuid, new_link, start_on_link
from watchsim.peripheral.port import PairingMode

TIMEOUT = 120.0


def _device(link: LocalLink, address: str) -> Device:
    controller = virtual_controller(address, link=link)
    config = DeviceConfiguration(name=address, address=hci.Address(address))
    return Device(config=config, host=Host(controller, AsyncPipeSink(controller)))


async def _burst(
    link: LocalLink, address: str, count: int, send: Callable[[int], Awaitable[object]]
) -> float:
    """Subscribe a central to Battery Level on ``address``, time ``count`` sends."""
    central = _device(link, "F0:00:00:00:00:01")
    await central.power_on()
    peer = Peer(await central.connect(hci.Address(address)))
    await peer.discover_services()
    for service in peer.services:
        await peer.discover_characteristics(service=service)
    received = 0
    done = asyncio.Event()

    def on_value(_value: bytes) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    battery = peer.get_characteristics_by_uuid(bumble_uuid(uuids.BATTERY_LEVEL))[0]
    await peer.subscribe(battery, on_value)
    start = time.perf_counter()
    for i in range(count):
        await send(i)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    return count / (time.perf_counter() - start)


async def raw_bumble(count: int) -> float:
    link = new_link()
    device = _device(link, "C0:00:00:00:00:02")
    battery: gatt.Characteristic[bytes] = gatt.Characteristic(
        bumble_uuid(uuids.BATTERY_LEVEL),
        gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY,
        gatt.Characteristic.READABLE,
        b"\x00",
    )
    device.add_service(gatt.Service(bumble_uuid(uuids.BATTERY_SERVICE), [battery]))
    await device.power_on()
    await device.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
    connections: list[Connection] = []
    device.on(Device.EVENT_CONNECTION, connections.append)

    async def send(i: int) -> None:
        await device.notify_subscriber(connections[0], battery, bytes([i % 100]))

    return await _burst(link, str(device.random_address), count, send)


async def adapter(count: int) -> float:
    link = new_link()
    with tempfile.TemporaryDirectory() as state:
        watch = await start_on_link(link, Path(state), mode=PairingMode.JUST_WORKS)

        async def send(i: int) -> int:
            return await watch.notify(uuids.BATTERY_LEVEL, bytes([i % 100]))

        try:
            return await _burst(link, watch.address, count, send)
        finally:
            await watch.stop()


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--count", type=int, default=5000, help="notifications per run")
    args = parser.parse_args()
    count = 1000 if args.quick else args.count
    stock = asyncio.run(raw_bumble(count))
    ours = asyncio.run(adapter(count))
    quiet = asyncio.run(raw_bumble(count))  # the adapter has quietened Bumble by now
    _common.header("notify: watch peripheral adapter vs raw Bumble", f"{count} notifications")
    _common.compare(
        _common.Rate("BumblePeripheral.notify", ours, "notifications"),
        _common.Rate("raw Bumble notify_subscriber, stock", stock, "notifications"),
        _common.Rate("raw Bumble, debug strings quietened", quiet, "notifications"),
    )


if __name__ == "__main__":
    main()
