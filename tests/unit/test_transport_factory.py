"""Transport configuration: parsing, backend selection, and no silent fallbacks."""

from __future__ import annotations

import pytest
from bleak import BleakClient, BleakScanner

from phoneagent.transport import (
    BumbleClient,
    BumbleScanner,
    MemoryBondStore,
    TransportConfig,
    TransportConfigError,
    open_transport,
    parse_transport,
)
from phoneagent.transport.factory import bluez_transport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loopback:127.0.0.1:7000", TransportConfig("bumble", "tcp-client:127.0.0.1:7000")),
        ("bumble:usb:0", TransportConfig("bumble", "usb:0")),
        ("bumble:tcp-client:localhost:9", TransportConfig("bumble", "tcp-client:localhost:9")),
        ("bluez", TransportConfig("bluez", "hci0")),
        (" bluez:hci1 ", TransportConfig("bluez", "hci1")),
    ],
)
def test_parse(text: str, expected: TransportConfig) -> None:
    assert parse_transport(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "loopback", "loopback:host", "loopback:h:70000", "bumble:", "bluez:wlan0", "usb:0"],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(TransportConfigError):
        parse_transport(text)


def test_bluez_objects_name_their_backend_and_adapter() -> None:
    transport = bluez_transport(parse_transport("bluez:hci1"))
    assert transport.client_backend.__name__ == "BleakClientBlueZDBus"
    assert transport.scanner_backend.__name__ == "BleakScannerBlueZDBus"
    client = transport.client("F0:00:00:00:00:01")
    assert isinstance(client, BleakClient)
    assert client.backend_id == "BleakClientBlueZDBus"
    assert client._backend._adapter == "hci1"  # type: ignore[attr-defined]


async def test_unopenable_bumble_transport_is_an_error() -> None:
    with pytest.raises(TransportConfigError):
        await open_transport(TransportConfig("bumble", "no-such-transport:0"))


async def test_bad_legacy_agent_address_is_an_error() -> None:
    # A store bonded before identities adopts the configured address; a public-looking
    # one (top bits 00) cannot be a random static identity.
    bonds = MemoryBondStore()
    bonds.put("C0:00:00:00:00:01", "{}")
    config = TransportConfig("bumble", "usb:0", legacy_address="00:11:22:33:44:55")
    with pytest.raises(TransportConfigError, match="not random static"):
        await open_transport(config, bonds=bonds)


def test_unbound_backend_refuses() -> None:
    with pytest.raises(TransportConfigError):
        BleakClient("F0:00:00:00:00:01", backend=BumbleClient)
    with pytest.raises(TransportConfigError):
        BleakScanner(backend=BumbleScanner)


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        '{"address": "C0:00:00:00:00:01"}',
        '{"address": "C0:00:00:00:00:01", "irk": "00"}',
    ],
)
async def test_a_damaged_stored_identity_is_an_error_not_a_new_identity(stored: str) -> None:
    bonds = MemoryBondStore()
    bonds.set_identity(stored)
    with pytest.raises(TransportConfigError, match=r"agent (identity|IRK)"):
        await open_transport(TransportConfig("bumble", "usb:0"), bonds=bonds)
    assert bonds.identity() == stored  # kept for whoever repairs it
