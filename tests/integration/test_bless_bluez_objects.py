"""What BlueZ reads from bless's D-Bus objects once the adapter has described the profile.

bless 0.3.0 has no API for primary services, protected subscriptions, pinned handles or a
discoverable advertisement; the adapter sets private fields (``describe_to_bluez``),
replaces the services by ones with a ``Handle`` (``pin_handles``) and subclasses the
advertisement. These tests export bless's own objects on a real (private) bus and read
them back as bluetoothd does (``GetManagedObjects``, ``GetAll``): they fail when a bless
release moves those fields. The BlueZ VM suite proves what BlueZ then does with them
(``tests/bluez/test_watch_hostile_central.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from bless.backends.bluezdbus.characteristic import flags_to_dbus
from bless.backends.bluezdbus.dbus.advertisement import Type
from bless.backends.bluezdbus.dbus.application import BlueZGattApplication
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus as FastBus
from dbus_next.aio.message_bus import MessageBus

from protocol.profile import PROFILE, Property, Security
from watchsim.peripheral.bless_adapter import (
    DiscoverableAdvertisement,
    bless_properties,
    bluez_flags,
    describe_to_bluez,
    pin_handles,
    service_handles,
)


@pytest.fixture
async def buses(session_bus: str) -> AsyncIterator[tuple[MessageBus, FastBus]]:
    """bless's kind of connection (dbus_next), and a reader standing in for bluetoothd."""
    bless_bus = await MessageBus(bus_address=session_bus).connect()
    reader = await FastBus(bus_address=session_bus).connect()
    try:
        yield bless_bus, reader
    finally:
        reader.disconnect()
        bless_bus.disconnect()


async def _call(reader: FastBus, destination: str | None, **fields: Any) -> list[Any]:
    assert destination is not None, "the bless bus has no unique name"
    reply = await reader.call(Message(destination=destination, **fields))
    assert reply is not None and reply.message_type is MessageType.METHOD_RETURN, reply
    return list(reply.body)


async def test_services_are_primary_at_pinned_handles_and_subscriptions_carry_their_protection(
    buses: tuple[MessageBus, FastBus],
) -> None:
    bless_bus, reader = buses
    app = BlueZGattApplication("Pin", "org.bluez", bless_bus)
    for spec in PROFILE:
        service = await app.add_service(spec.uuid)
        for c in spec.characteristics:
            await service.add_characteristic(
                c.uuid, flags_to_dbus(bless_properties(c.properties)), b""
            )
        describe_to_bluez(service, spec)
    pin_handles(app, PROFILE)
    (objects,) = await _call(
        reader,
        bless_bus.unique_name,
        path="/",
        interface="org.freedesktop.DBus.ObjectManager",
        member="GetManagedObjects",
    )
    services = [
        i["org.bluez.GattService1"] for i in objects.values() if "org.bluez.GattService1" in i
    ]
    assert len(services) == len(PROFILE)
    assert all(service["Primary"].value for service in services)
    handles = {str(UUID(service["UUID"].value)): service["Handle"].value for service in services}
    assert handles == {str(UUID(u)): h for u, h in service_handles(PROFILE).items()}
    flags = {
        str(UUID(i["org.bluez.GattCharacteristic1"]["UUID"].value)): i[
            "org.bluez.GattCharacteristic1"
        ]["Flags"].value
        for i in objects.values()
        if "org.bluez.GattCharacteristic1" in i
    }
    for spec in PROFILE:
        for c in spec.characteristics:
            assert flags[str(UUID(c.uuid))] == bluez_flags(c.properties, c.security)


async def test_the_advertisement_is_discoverable_and_keeps_blesss_content(
    buses: tuple[MessageBus, FastBus],
) -> None:
    bless_bus, reader = buses
    app = BlueZGattApplication("Pin", "org.bluez", bless_bus)
    advertisement: Any = DiscoverableAdvertisement(Type.PERIPHERAL, 1, app)
    advertisement.ServiceUUIDs = ["0000180d-0000-1000-8000-00805f9b34fb"]
    bless_bus.export(advertisement.path, advertisement)
    (properties,) = await _call(
        reader,
        bless_bus.unique_name,
        path=advertisement.path,
        interface="org.freedesktop.DBus.Properties",
        member="GetAll",
        signature="s",
        body=["org.bluez.LEAdvertisement1"],
    )
    assert properties["Discoverable"].value is True
    assert properties["Type"].value == "peripheral"
    assert properties["LocalName"].value == "Pin"
    assert properties["ServiceUUIDs"].value == ["0000180d-0000-1000-8000-00805f9b34fb"]


def test_bluez_flags_protect_every_access_of_a_protected_characteristic() -> None:
    every = Property.READ | Property.WRITE | Property.NOTIFY | Property.INDICATE
    assert bluez_flags(every, Security.OPEN) == ["read", "write", "notify", "indicate"]
    assert bluez_flags(every, Security.ENCRYPTED) == [
        "encrypt-read",
        "encrypt-write",
        "encrypt-notify",
        "encrypt-indicate",
    ]
    assert bluez_flags(every | Property.WRITE_WITHOUT_RESPONSE, Security.AUTHENTICATED) == [
        "encrypt-authenticated-read",
        "encrypt-authenticated-write",
        "encrypt-authenticated-notify",
        "encrypt-authenticated-indicate",
        "write-without-response",
    ]
    with pytest.raises(ValueError, match="write-without-response"):
        bluez_flags(Property.WRITE_WITHOUT_RESPONSE, Security.ENCRYPTED)
