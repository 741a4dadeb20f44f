"""The one place the agent picks a BLE backend.

Every bleak object built here gets an explicit ``backend=``: bleak silently falls back
to BlueZ when it is missing, and a transport that cannot be opened is an error, never
a fallback to the other kind.

Configuration strings:
  ``loopback:HOST:PORT``  the loopback air (Bumble ``tcp-client:HOST:PORT``)
  ``bumble:SPEC``         any Bumble HCI transport (``bumble:usb:0``, ``bumble:hci-socket:0``)
  ``bluez[:ADAPTER]``     bleak's own BlueZ backend on ADAPTER (default ``hci0``)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementDataCallback, BaseBleakScanner
from bleak.exc import BleakError

from phoneagent.bursts import collector_paused
from phoneagent.transport.bonds import BondStore
from phoneagent.transport.errors import TransportConfigError, TransportUnavailableError
from phoneagent.transport.identity import LEGACY_AGENT_ADDRESS
from phoneagent.transport.pairing import PairingAgent

if TYPE_CHECKING:
    from phoneagent.transport.radio import BumbleRadio

_LOOPBACK = re.compile(r"loopback:(?P<host>[^:\s]+):(?P<port>\d{1,5})")
_ADAPTER = re.compile(r"hci\d+")


@dataclass(frozen=True)
class TransportConfig:
    kind: Literal["bumble", "bluez"]
    # A Bumble transport string, or a BlueZ adapter name.
    target: str
    # The address a store bonded before identities existed adopts (``transport.identity``).
    legacy_address: str = LEGACY_AGENT_ADDRESS


def parse_transport(text: str, *, legacy_address: str = LEGACY_AGENT_ADDRESS) -> TransportConfig:
    text = text.strip()
    if match := _LOOPBACK.fullmatch(text):
        port = int(match["port"])
        if not 0 < port < 65536:
            raise TransportConfigError(f"loopback port out of range in {text!r}")
        return TransportConfig("bumble", f"tcp-client:{match['host']}:{port}", legacy_address)
    if text.startswith("bumble:") and len(text) > len("bumble:"):
        return TransportConfig("bumble", text.removeprefix("bumble:"), legacy_address)
    if text == "bluez":
        return TransportConfig("bluez", "hci0", legacy_address)
    if text.startswith("bluez:"):
        adapter = text.removeprefix("bluez:")
        if not _ADAPTER.fullmatch(adapter):
            raise TransportConfigError(f"not a BlueZ adapter name: {adapter!r} (e.g. hci0)")
        return TransportConfig("bluez", adapter, legacy_address)
    raise TransportConfigError(
        f"unknown transport {text!r}: use loopback:HOST:PORT, bumble:SPEC or bluez[:hciN]"
    )


class Transport:
    """Builds bleak scanners and clients, always with this transport's backend."""

    def __init__(
        self,
        scanner_backend: type[BaseBleakScanner],
        client_backend: type[BaseBleakClient],
        backend_kwargs: dict[str, Any],
        close: Callable[[], Awaitable[None]] | None = None,
        radio: BumbleRadio | None = None,
    ) -> None:
        self.scanner_backend = scanner_backend
        self.client_backend = client_backend
        self._kwargs = backend_kwargs
        self._close = close
        # The Bumble radio behind this transport, for pairing settings; None on BlueZ.
        self.radio = radio

    @property
    def bluez_adapter(self) -> str | None:
        """The BlueZ adapter (``hci0``) behind this transport; None on a Bumble radio."""
        adapter: str | None = self._kwargs.get("bluez", {}).get("adapter")
        return adapter

    def scanner(
        self,
        detection_callback: AdvertisementDataCallback | None = None,
        service_uuids: list[str] | None = None,
        *,
        addresses: Sequence[str] | None = None,
    ) -> BleakScanner:
        """``addresses``: only these devices are wanted (a bonded watch). A Bumble radio
        then scans through its controller's Filter Accept List; BlueZ keeps its own."""
        kwargs = dict(self._kwargs)
        if addresses is not None and self.radio is not None:
            kwargs["addresses"] = addresses
        return BleakScanner(
            detection_callback, service_uuids, backend=self.scanner_backend, **kwargs
        )

    def client(
        self,
        address_or_ble_device: BLEDevice | str,
        disconnected_callback: Callable[[BleakClient], None] | None = None,
        *,
        timeout: float = 30.0,
    ) -> BleakClient:
        return BleakClient(
            address_or_ble_device,
            disconnected_callback,
            timeout=timeout,
            backend=self.client_backend,
            **self._kwargs,
        )

    @property
    def lost(self) -> asyncio.Future[None] | None:
        """Resolved when the radio's HCI transport went away (the air restarted, a dongle
        was pulled); None where this transport cannot tell (BlueZ, an in-process link)."""
        return None if self.radio is None else self.radio.transport_lost

    async def close(self) -> None:
        """Close once; a second call (a daemon and its session both) does nothing."""
        close, self._close = self._close, None
        if close is not None:
            await close()


def radio_transport(radio: BumbleRadio) -> Transport:
    """A transport over an existing radio (in-process links); closing it leaves the radio."""
    return Transport(radio.scanner_backend, radio.client_backend, {}, radio=radio)


def bluez_transport(config: TransportConfig, *, agent: PairingAgent | None = None) -> Transport:
    """bleak's BlueZ backend on one adapter; imported explicitly, never picked by default.

    With ``agent``, clients answer BlueZ's pairing questions through it (``bluez_agent``).
    """
    from bleak.backends.bluezdbus.client import BleakClientBlueZDBus
    from bleak.backends.bluezdbus.scanner import BleakScannerBlueZDBus

    from phoneagent.transport.bluez_agent import agent_client

    client = BleakClientBlueZDBus if agent is None else agent_client(agent)
    return Transport(BleakScannerBlueZDBus, client, {"bluez": {"adapter": config.target}})


LOOPBACK_HINT = (
    "without Bluetooth hardware use the loopback air: start `watchsim air` and give "
    '--transport loopback:127.0.0.1:7420 (or transport = "loopback:127.0.0.1:7420" in '
    "the data dir's config.toml)"
)


async def check_bluez() -> None:
    """Reach bluetoothd over the system D-Bus now, so that a machine without either gets
    one sentence at the start instead of a failure deep in the first scan or connect."""
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    try:
        await get_global_bluez_manager()  # bleak's own connection, reused by its scanners
    except OSError as error:
        raise TransportUnavailableError(
            f"the bluez transport needs the system D-Bus, and there is none here "
            f"({error.strerror or error}); {LOOPBACK_HINT}"
        ) from error
    except BleakError as error:
        raise TransportUnavailableError(
            f"the bluez transport needs bluetoothd on the system D-Bus, which did not "
            f"answer ({error}); start it (systemctl start bluetooth), or {LOOPBACK_HINT}"
        ) from error


def _radio_class() -> type[BumbleRadio]:
    # Bumble's modules build ~350 dataclasses and leave no garbage: the collections their
    # allocations set off cost 0.03-0.04 of the ~0.5 CPU-s `phoneagent sync` imports.
    with collector_paused():
        from phoneagent.transport.radio import BumbleRadio  # not loaded on BlueZ
    return BumbleRadio


def start_loading(text: str) -> None:
    """Import the radio for transport ``text`` on a thread of its own, for a command about
    to wait on something that leaves the GIL free: opening the store (SQLCipher derives
    the key and checks every page in C, 0.1 s and more) overlaps Bumble's import (0.25 s).
    ``open_transport`` then finds it loaded, or waits for the import to end."""
    try:
        bumble = parse_transport(text).kind == "bumble"
    except TransportConfigError:
        return  # said where the transport opens
    if bumble:
        threading.Thread(target=_load_radio_early, daemon=True).start()


def _load_radio_early() -> None:
    with contextlib.suppress(Exception):  # raised again where open_transport imports it
        _radio_class()


async def open_transport(
    config: TransportConfig,
    *,
    bonds: BondStore | None = None,
    agent: PairingAgent | None = None,
) -> Transport:
    """Open the configured transport; Bumble failures raise ``TransportConfigError``, a
    machine without BlueZ ``TransportUnavailableError``.

    ``bonds`` (with the agent's identity) None: a Bumble radio is anonymous, for scanning
    only; BlueZ keeps bonds and identity itself (the adapter's, ``docs/bluez.md``).
    """
    if config.kind == "bluez":
        await check_bluez()
        return bluez_transport(config, agent=agent)
    radio = await _radio_class().open(
        config.target, bonds=bonds, agent=agent, legacy_address=config.legacy_address
    )
    return Transport(
        radio.scanner_backend, radio.client_backend, {}, close=radio.close, radio=radio
    )
