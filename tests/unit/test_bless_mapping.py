"""Profile -> bless flags and GATT tree (the bless adapter's only logic)."""

from __future__ import annotations

from bless.backends.attribute import GATTAttributePermissions as Perm
from bless.backends.characteristic import GATTCharacteristicProperties as Prop
from hypothesis import given
from hypothesis import strategies as st

from protocol import uuids
from protocol.profile import ADVERTISED_SERVICE_UUIDS, PROFILE, Property, Security
from watchsim.peripheral.bless_adapter import bless_permissions, bless_properties, gatt_tree

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


def test_gatt_tree_has_every_characteristic_and_advertised_services_first() -> None:
    tree = gatt_tree(PROFILE)
    assert set(tree) == {s.uuid for s in PROFILE}
    assert list(tree)[: len(ADVERTISED_SERVICE_UUIDS)] == list(ADVERTISED_SERVICE_UUIDS)
    for service in PROFILE:
        assert set(tree[service.uuid]) == {c.uuid for c in service.characteristics}
    battery = tree[uuids.BATTERY_SERVICE][uuids.BATTERY_LEVEL]
    assert battery["Properties"] == Prop.read | Prop.notify
    assert battery["Permissions"] == Perm.readable
