"""Where the watch's radio comes from: a LocalLink, a Bumble HCI transport, or BlueZ.

The app asks for a fresh started peripheral at every boot and after every out-of-range
spell, so a radio is a factory rather than one peripheral. Each radio imports its stack
when it opens: a watch on BlueZ never loads Bumble, nor a loopback watch bless.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from protocol.profile import ServiceSpec
from watchsim.peripheral.port import PairingDisplay, PairingMode, Peripheral

if TYPE_CHECKING:
    from bumble.link import LocalLink

    from watchsim.peripheral.bumble_adapter import BumblePeripheral


class Radio(Protocol):
    # The watch's identity address once a peripheral was opened ("" if the stack hides it).
    address: str

    async def open(self, display: PairingDisplay, profile: Sequence[ServiceSpec]) -> Peripheral:
        """A started peripheral with ``profile`` published, not yet advertising."""
        ...

    def forget_bonds(self) -> None:
        """Factory reset: drop every bond this radio's stack keeps for the watch."""
        ...


class _BumbleRadio:
    """Bumble keeps the watch's identity address and bonds in the state dir."""

    def __init__(self, state_dir: Path, name: str, mode: PairingMode) -> None:
        self._state_dir, self._name, self._mode = state_dir, name, mode
        self.address = ""

    async def open(self, display: PairingDisplay, profile: Sequence[ServiceSpec]) -> Peripheral:
        peripheral = await self._start(display, profile)
        self.address = peripheral.address
        return peripheral

    async def _start(
        self, display: PairingDisplay, profile: Sequence[ServiceSpec]
    ) -> BumblePeripheral:
        raise NotImplementedError

    def forget_bonds(self) -> None:
        from watchsim.peripheral.bumble_adapter import forget_bonds

        forget_bonds(self._state_dir)


class LinkRadio(_BumbleRadio):
    """A virtual controller on an in-process LocalLink (tests, the in-process demo)."""

    def __init__(
        self,
        link: LocalLink,
        state_dir: Path,
        name: str,
        mode: PairingMode,
        advertising_interval_ms: float = 100.0,
        *,
        fast_advertising: bool = True,
    ) -> None:
        super().__init__(state_dir, name, mode)
        self._link = link
        self._interval_ms = advertising_interval_ms
        self._fast_advertising = fast_advertising

    async def _start(
        self, display: PairingDisplay, profile: Sequence[ServiceSpec]
    ) -> BumblePeripheral:
        from watchsim.peripheral.bumble_adapter import FAST_ADVERTISING_S, start_on_link

        return await start_on_link(
            self._link,
            self._state_dir,
            name=self._name,
            mode=self._mode,
            display=display,
            profile=profile,
            advertise=False,
            advertising_interval_ms=self._interval_ms,
            fast_advertising_s=FAST_ADVERTISING_S if self._fast_advertising else 0.0,
        )


class TransportRadio(_BumbleRadio):
    """Any Bumble HCI transport: the loopback air (tcp-client:HOST:PORT), usb:0, ..."""

    def __init__(self, transport: str, state_dir: Path, name: str, mode: PairingMode) -> None:
        super().__init__(state_dir, name, mode)
        self._transport = transport

    async def _start(
        self, display: PairingDisplay, profile: Sequence[ServiceSpec]
    ) -> BumblePeripheral:
        from watchsim.peripheral.bumble_adapter import open_peripheral

        return await open_peripheral(
            self._transport,
            self._state_dir,
            name=self._name,
            mode=self._mode,
            display=display,
            profile=profile,
            advertise=False,
        )


class BlueZRadio:
    """A Linux adapter through BlueZ; our own Agent1 shows the passkey (``bluez_agent``)."""

    def __init__(self, adapter: str, name: str, mode: PairingMode) -> None:
        self._adapter, self._name, self._mode = adapter, name, mode
        self.address = ""

    async def open(self, display: PairingDisplay, profile: Sequence[ServiceSpec]) -> Peripheral:
        from watchsim.peripheral.bless_adapter import BlessPeripheral

        peripheral = BlessPeripheral(self._adapter, self._name, display, self._mode)
        await peripheral.start(profile)
        self.address = peripheral.address
        return peripheral

    def forget_bonds(self) -> None:
        """BlueZ owns the adapter's bonds; they are removed with BlueZ's tools, not here."""
