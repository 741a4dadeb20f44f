"""Finding watches: a scan listing, waiting for one address to advertise, and pairing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from phoneagent.store import DeviceRecord, Store
from phoneagent.sync.personality import advertises_infinitime, detect
from phoneagent.sync.watch_client import WatchClient
from phoneagent.transport import ConnectTimeoutError, PairingLostError, Transport, appearance
from protocol.address import Address
from protocol.profile import ADVERTISED_SERVICE_UUIDS
from protocol.uuids import APPEARANCE_SMARTWATCH


@dataclass(frozen=True, slots=True)
class Sighting:
    address: str
    name: str | None
    rssi: int
    # Advertises our watch's services or the smartwatch appearance, or InfiniTime's name.
    watch: bool


async def scan(transport: Transport, seconds: float) -> list[Sighting]:
    """Everything that advertised within ``seconds``, strongest signal first."""
    seen: dict[str, Sighting] = {}

    def on_advertisement(device: BLEDevice, data: AdvertisementData) -> None:
        services = {u.lower() for u in data.service_uuids}
        name = data.local_name or device.name
        watch = (
            bool(services & set(ADVERTISED_SERVICE_UUIDS))
            or appearance(data) == APPEARANCE_SMARTWATCH
            or advertises_infinitime(name)
        )
        address = Address(device.address)
        seen[address] = Sighting(address, name, data.rssi, watch)

    async with transport.scanner(on_advertisement):
        await asyncio.sleep(seconds)  # a scan window is a duration, not a synchronisation
    return sorted(seen.values(), key=lambda s: (-s.rssi, s.address))


async def wait_for_advertising(
    transport: Transport, address: str, within: float | None
) -> BLEDevice:
    """The watch's ``BLEDevice`` once it advertises; ``ConnectTimeoutError`` after ``within`` s."""
    address = Address(address)
    seen: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

    def on_advertisement(device: BLEDevice, _: AdvertisementData) -> None:
        if not seen.done() and Address(device.address) == address:
            seen.set_result(device)

    try:
        async with (
            asyncio.timeout(within),
            transport.scanner(on_advertisement, addresses=[address]),
        ):
            return await seen
    except TimeoutError as error:
        raise ConnectTimeoutError(f"{address} did not advertise within {within:g} s") from error


async def pair_device(
    transport: Transport, store: Store, address: str, *, scan_timeout: float, bond: bool = False
) -> DeviceRecord:
    """Pair (the transport's agent answers passkey or comparison) and record the device
    with the personality its services show.

    Our watch: reading the History Status afterwards proves that the new bond opens the
    protected characteristics before anything is recorded. A watch that needs no bond
    (InfiniTime) is paired only when it asks for it, by refusing a read for lack of
    security, or when ``bond`` says so; otherwise it is recorded unbonded, as its
    companions use it.
    """
    device = await wait_for_advertising(transport, address, scan_timeout)
    async with transport.client(device, timeout=scan_timeout) as client:
        personality = detect(s.uuid for s in client.services)
        watch = WatchClient(client)
        if personality.needs_bond or bond:
            await client.pair()
            if personality.needs_bond:
                await watch.read_status()
            info = await watch.read_device_info()
        else:
            try:
                info = await watch.read_device_info()
            except PairingLostError:
                # The watch refused the read for lack of security: it wants a bond. (A
                # Bumble radio meets such a refusal by encrypting with the bond, of which
                # there is none yet; bluetoothd pairs through its agent by itself.)
                await client.pair()
                info = await watch.read_device_info()
    return await asyncio.to_thread(
        store.add_device,
        Address(device.address),
        name=device.name,
        model=info.model,
        serial=info.serial,
        firmware=info.firmware,
        personality=personality,
        live_derived=personality.live_derived,
    )


async def pair_and_check_bond(
    transport: Transport, store: Store, address: str, *, scan_timeout: float, bond: bool
) -> tuple[DeviceRecord, bool]:
    """``pair_device``, and whether the store holds a bond for the watch afterwards (an
    InfiniTime watch may stay unbonded): what ``pair`` reports, here or through ``run``."""
    record = await pair_device(transport, store, address, scan_timeout=scan_timeout, bond=bond)
    return record, record.address in await asyncio.to_thread(store.list_bonds)
