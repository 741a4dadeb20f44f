"""Profile -> bless flags and GATT tree, and the central behind a BlueZ request."""

from __future__ import annotations

from bless.backends.attribute import GATTAttributePermissions as Perm
from bless.backends.characteristic import GATTCharacteristicProperties as Prop
from dbus_next.message import Message
from dbus_next.signature import Variant
from hypothesis import given
from hypothesis import strategies as st

from protocol import infinitime, uuids
from protocol.profile import PROFILE, Property, Security
from watchsim.peripheral.bless_adapter import (
    UNKNOWN_PEER,
    bless_permissions,
    bless_properties,
    gatt_tree,
    request_peer,
)
from watchsim.peripheral.port import Peer

properties = st.lists(st.sampled_from(list(Property)), min_size=1).map(
    lambda flags: Property(sum(f.value for f in set(flags)))
)


@given(properties)
def test_each_property_maps_to_its_bless_flag(props: Property) -> None:
    flags = bless_properties(props)
    assert (Prop.read in flags) == (Property.READ in props)
    assert (Prop.write in flags) == (Property.WRITE in props)
    assert (Prop.write_without_response in flags) == (Property.WRITE_WITHOUT_RESPONSE in props)
    assert (Prop.notify in flags) == (Property.NOTIFY in props)
    assert (Prop.indicate in flags) == (Property.INDICATE in props)


@given(properties, st.sampled_from(list(Security)))
def test_permissions_follow_access_and_security(props: Property, security: Security) -> None:
    perms = bless_permissions(props, security)
    reads = Property.READ in props
    writes = bool(props & (Property.WRITE | Property.WRITE_WITHOUT_RESPONSE))
    protected = security is not Security.OPEN
    assert (Perm.readable in perms) == reads
    assert (Perm.writeable in perms) == writes
    assert (Perm.read_encryption_required in perms) == (reads and protected)
    assert (Perm.write_encryption_required in perms) == (writes and protected)


def test_examples_from_the_profile() -> None:
    assert bless_permissions(Property.READ, Security.OPEN) == Perm.readable
    assert bless_permissions(Property.READ | Property.WRITE, Security.AUTHENTICATED) == (
        Perm.readable
        | Perm.writeable
        | Perm.read_encryption_required
        | Perm.write_encryption_required
    )
    assert bless_permissions(Property.NOTIFY, Security.AUTHENTICATED) == Perm(0)


def test_gatt_tree_has_every_characteristic_in_the_profiles_order() -> None:
    tree = gatt_tree(PROFILE)
    assert list(tree) == [s.uuid for s in PROFILE]
    assert list(gatt_tree(infinitime.PROFILE)) == [s.uuid for s in infinitime.PROFILE]
    for service in PROFILE:
        assert set(tree[service.uuid]) == {c.uuid for c in service.characteristics}
    battery = tree[uuids.BATTERY_SERVICE][uuids.BATTERY_LEVEL]
    assert battery["Properties"] == Prop.read | Prop.notify
    assert battery["Permissions"] == Perm.readable


def _call(member: str, options: dict[str, Variant]) -> Message:
    """A call as bluetoothd makes it on a bless characteristic."""
    return Message(
        destination=":1.7",
        path="/org/bluez/example/service0/char0",
        interface="org.bluez.GattCharacteristic1",
        member=member,
        signature="aya{sv}" if member == "WriteValue" else "a{sv}",
        body=[b"\x01", options] if member == "WriteValue" else [options],
    )


def test_request_peer_names_the_central_and_the_packed_notification_room() -> None:
    options = {
        "device": Variant("o", "/org/bluez/hci0/dev_F0_F1_F2_F3_F4_01"),
        "mtu": Variant("q", 517),
        "link": Variant("s", "LE"),
    }
    for member in ("WriteValue", "ReadValue"):
        assert request_peer(_call(member, options)) == Peer("F0:F1:F2:F3:F4:01", False, 515)


def test_request_peer_without_options_is_the_unknown_peer() -> None:
    assert request_peer(_call("WriteValue", {})) is UNKNOWN_PEER
    small = {
        "device": Variant("o", "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF"),
        "mtu": Variant("q", 23),
    }
    assert request_peer(_call("ReadValue", small)) == Peer("AA:BB:CC:DD:EE:FF", False, 23)


def test_request_peer_ignores_everything_else() -> None:
    signal = Message.new_signal("/org/bluez/hci0", "org.freedesktop.DBus.Properties", "Changed")
    assert request_peer(signal) is None
    assert request_peer(_call("StartNotify", {})) is None
