"""One Bumble central device, shared by every bleak scanner and client of the agent.

Bumble allows one pending LE connection and one scan state per device, so the radio
serialises connects and reference-counts scanning; it also owns bonds and pairing.
While every scan listener waits for given addresses (a bonded watch), the controller's
Filter Accept List holds just those and the scan reports nothing else, as a phone's
background scan does: on a busy air, an unfiltered scan hears every advertiser.
The bleak backend classes it hands out are bound to it (``radio.scanner_backend`` /
``radio.client_backend``): passing ``backend=`` is then all a caller needs, and an
unbound backend class cannot be used by mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bleak.exc import BleakError
from bumble import core, hci
from bumble.device import (
    DEVICE_DEFAULT_SCAN_INTERVAL,
    DEVICE_DEFAULT_SCAN_WINDOW,
    Advertisement,
    Connection,
    Device,
    DeviceConfiguration,
)
from bumble.host import Host
from bumble.keys import KeyStore, PairingKeys
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from bumblekit.controller import virtual_controller
from bumblekit.lateanswers import drop_late_answers
from bumblekit.quiet import quiet_bumble_debug_strings
from phoneagent.transport.bonds import BondStore, MemoryBondStore
from phoneagent.transport.errors import (
    ConnectTimeoutError,
    PairingFailedError,
    PairingLostError,
    RadioLostError,
    TransportConfigError,
    radio_lost,
)
from phoneagent.transport.identity import (
    IRK_SIZE,
    LEGACY_AGENT_ADDRESS,
    AgentIdentity,
    identity_of,
)
from phoneagent.transport.pairing import PairingAgent, RefusingAgent, pairing_failure
from protocol.address import Address

if TYPE_CHECKING:
    from phoneagent.transport.backend import BumbleClient, BumbleScanner

log = logging.getLogger(__name__)

T = TypeVar("T")
AdvertisementListener = Callable[[Advertisement], None]
# What a scan reports: these addresses only, or (None) everything.
ScanFilter = frozenset[str] | None

# Pairing waits on a human typing a passkey.
DEFAULT_PAIRING_TIMEOUT = 120.0
# Encrypting with a stored key is a link-layer exchange: no human involved.
ENCRYPT_TIMEOUT = 10.0
# Time left to a connect that was sighted just before its deadline.
CONNECT_MIN_S = 1.0
# An advertisement this recent counts as the fresh sighting a connect waits for: the
# engine's scan has just seen the watch, and waiting for the next one cost a whole
# advertising interval (100 ms for the simulator) of every sync and pairing.
SIGHTING_FRESH_S = 0.25
MTU = 517
RPA_LIFETIME_S = 15 * 60.0
# A device at the bonded address that cannot encrypt with the bond is the watch after a
# reset, or another device using its address: nothing was read from or written to it.
_NOT_PROVEN = (
    "; it could not prove the bond (the watch was reset, or another device uses its"
    " address), so nothing was exchanged with it"
)


def address_text(address: hci.Address) -> str:
    """The form bleak and our bond store use: upper-case, no type suffix."""
    return str(address.to_string(False))


async def guarded(connection: Connection, operation: Awaitable[T]) -> T:
    """Await a Bumble operation, turning "aborted by disconnection" into a bleak error.

    Bumble aborts pending requests on disconnection by cancelling them; that must not be
    confused with the caller cancelling us.
    """
    try:
        return await operation
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise BleakError(f"{address_text(connection.peer_address)} disconnected") from None


def _encode(keys: PairingKeys) -> str:
    return json.dumps(keys.to_dict(), sort_keys=True)


def _decode(text: str) -> PairingKeys:
    data: dict[str, Any] = json.loads(text)
    return PairingKeys.from_dict(data)


def _quietly(task: asyncio.Future[None]) -> None:
    """A background disconnect's failure (the peer already left) is nobody's concern."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("dropping a late connection: %r", task.exception())


class CentralDevice(Device):
    """Bumble's ``Device``, knowing whether its connect has asked the controller yet.

    ``connect_le`` sets the own address type just before sending LE Create Connection
    and clears it as it ends; a connection that completes after that (the connect was
    given up while the command was under way, or a cancel crossed the completion) met
    ``assert own_address_type is not None`` in Bumble's event handler and was never
    registered, so the watch stayed connected to a host that could not even drop it.
    Here it is registered under the last type used, for the radio to drop.
    """

    _initiating_as: hci.OwnAddressType | None = None
    _last_own_address_type = hci.OwnAddressType.RANDOM
    # The advertiser address the radio's scan has just heard, for the next connect only.
    sighted: hci.Address | None = None

    async def find_peer_by_identity_address(self, identity_address: hci.Address) -> hci.Address:
        """The connect's own fresh sighting, when it is that peer.

        Holding the peer's IRK, ``connect_le`` asks for the peer's current address and
        Bumble waits for its next advertisement, a whole advertising interval (100 ms for
        the simulator) of every sync, though the radio's scan has just heard it.
        """
        sighted, self.sighted = self.sighted, None
        if sighted is not None and sighted == identity_address:
            return sighted
        return await super().find_peer_by_identity_address(identity_address)

    @property
    def connect_own_address_type(self) -> hci.OwnAddressType:
        return self._initiating_as or self._last_own_address_type

    @connect_own_address_type.setter
    def connect_own_address_type(self, value: hci.OwnAddressType | None) -> None:
        self._initiating_as = value
        if value is not None:
            self._last_own_address_type = value

    @property
    def initiating(self) -> bool:
        """A connect has sent (or is sending) LE Create Connection and not ended: the
        controller may connect whatever the host does now."""
        return self._initiating_as is not None


class BondKeyStore(KeyStore):
    """Bumble's key store interface over a ``BondStore``, so Bumble reads and writes our bonds."""

    def __init__(self, bonds: BondStore) -> None:
        self._bonds = bonds

    async def delete(self, name: str) -> None:
        self._bonds.delete(name)

    async def update(self, name: str, keys: PairingKeys) -> None:
        self._bonds.put(name, _encode(keys))

    async def get(self, name: str) -> PairingKeys | None:
        text = self._bonds.get(name)
        return None if text is None else _decode(text)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        found = ((peer, self._bonds.get(peer)) for peer in self._bonds.peers())
        return [(peer, _decode(text)) for peer, text in found if text is not None]


class AgentDelegate(PairingDelegate):
    """Bumble delegate for one connection, forwarding to the agent.

    Keyboard and display lets the watch pick passkey entry (it displays) or numeric
    comparison (it has yes/no); Just Works is refused since it gives no MITM protection.
    """

    def __init__(
        self, agent: PairingAgent, peer: str, on_just_works: Callable[[str], None]
    ) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT)
        self._agent = agent
        self._peer = peer
        self._on_just_works = on_just_works

    async def accept(self) -> bool:
        return True

    async def confirm(self, auto: bool = False) -> bool:
        """Bumble asks this only for Just Works: refused, and the refusal named."""
        self._on_just_works(self._peer)
        return False

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return await self._agent.confirm_number(self._peer, number)

    async def get_number(self) -> int | None:
        return await self._agent.enter_passkey(self._peer)


class BumbleRadio:
    """A powered-on Bumble ``Device`` in the central role; see the module docstring."""

    def __init__(
        self,
        device: CentralDevice,
        bonds: BondStore | None,
        agent: PairingAgent,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        quiet_bumble_debug_strings()  # about half of a backfill's CPU otherwise
        drop_late_answers()  # a stopped engine's last request: no traceback
        self.device = device
        # Anonymous (no bonds given): it scans, and has no identity to pair with.
        self.anonymous = bonds is None
        self.bonds = MemoryBondStore() if bonds is None else bonds
        self.agent = agent
        self.pairing_timeout = DEFAULT_PAIRING_TIMEOUT
        self._on_close = on_close
        # Resolved when the HCI transport goes away (the air restarted, a dongle pulled).
        self.transport_lost: asyncio.Future[None] | None = None
        self._connect_lock = asyncio.Lock()
        # Disconnects of connections that completed after their caller gave up.
        self._background: set[asyncio.Future[None]] = set()
        self._connecting: asyncio.Future[Connection] | None = None  # Bumble's connect
        self._owned: set[Connection] = set()  # handed to a caller
        self._scan_lock = asyncio.Lock()
        self._scan_listeners: dict[AdvertisementListener, ScanFilter] = {}
        self._scanning_for: ScanFilter = None  # while scanning
        self._accept_list_full = False  # said once, until the list holds them again
        # The newest advertisement: (loop time, its address); one, so nothing grows.
        self._last_sighting: tuple[float, hci.Address] | None = None
        self._just_works: set[str] = set()  # peers whose pairing fell to Just Works
        # How long one resolvable private address is shown (TGAP(private_addr_int), 15 min
        # recommended: Core Vol 3 Part C Appendix A); a new one when a scan starts after.
        self.rpa_lifetime = RPA_LIFETIME_S
        self._rpa_since = asyncio.get_running_loop().time()
        device.keystore = BondKeyStore(self.bonds)
        device.pairing_config_factory = self._pairing_config
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        from phoneagent.transport.backend import bind_backends

        self.scanner_backend: type[BumbleScanner]
        self.client_backend: type[BumbleClient]
        self.scanner_backend, self.client_backend = bind_backends(self)

    @staticmethod
    def _configuration(identity: AgentIdentity | None) -> DeviceConfiguration:
        """``identity`` None: an anonymous radio (a non-resolvable private address)."""
        if identity is None:
            anonymous = hci.Address.generate_private_address()
            return DeviceConfiguration(name="phoneagent", address=anonymous)
        try:
            parsed = hci.Address(identity.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        except (ValueError, TypeError) as error:
            raise TransportConfigError(f"bad agent address {identity.address!r}") from error
        if not parsed.is_static:
            raise TransportConfigError(
                f"agent address {identity.address} is not random static (top two bits must be 1)"
            )
        return DeviceConfiguration(
            name="phoneagent",
            address=parsed,
            irk=identity.irk or bytes(IRK_SIZE),  # all zero: no IRK (Core Vol 3 Part H 3.6.4)
            le_privacy_enabled=identity.private,
            le_rpa_timeout=0,  # rotated by ``_rotate_address``, not Bumble's timer task
        )

    @classmethod
    def _identity(cls, bonds: BondStore | None, legacy_address: str) -> AgentIdentity | None:
        return None if bonds is None else identity_of(bonds, legacy_address)

    @classmethod
    async def on_link(
        cls,
        link: LocalLink,
        *,
        bonds: BondStore | None = None,
        agent: PairingAgent | None = None,
        legacy_address: str = LEGACY_AGENT_ADDRESS,
    ) -> BumbleRadio:
        """A radio on an in-process link (tests, benchmarks): must run in the test's loop.

        ``bonds`` None: an anonymous radio, which scans but cannot pair or connect to a
        bonded watch; otherwise the identity stored with the bonds (made on first use).
        """
        configuration = cls._configuration(cls._identity(bonds, legacy_address))
        controller = virtual_controller("phoneagent", link=link)
        device = CentralDevice(
            config=configuration, host=Host(controller, AsyncPipeSink(controller))
        )
        radio = cls(device, bonds, agent or RefusingAgent())
        await device.power_on()
        return radio

    @classmethod
    async def open(
        cls,
        transport: str,
        *,
        bonds: BondStore | None = None,
        agent: PairingAgent | None = None,
        legacy_address: str = LEGACY_AGENT_ADDRESS,
    ) -> BumbleRadio:
        """A radio on any Bumble HCI transport, e.g. ``tcp-client:127.0.0.1:PORT`` (the air);
        ``bonds`` as for ``on_link``."""
        configuration = cls._configuration(cls._identity(bonds, legacy_address))
        try:
            hci_transport = await open_transport(transport)
        except Exception as error:
            hint = " (is `watchsim air` running there?)" if transport.startswith("tcp-") else ""
            message = f"cannot open Bumble transport {transport!r}: {error}{hint}"
            # Refused or absent (the air not up yet, a dongle not plugged in) comes back
            # by itself; a spec Bumble cannot parse never does.
            absent = isinstance(error, OSError) or radio_lost(error)
            raise (RadioLostError if absent else TransportConfigError)(message) from error
        device = CentralDevice(
            config=configuration, host=Host(hci_transport.source, hci_transport.sink)
        )
        radio = cls(device, bonds, agent or RefusingAgent(), hci_transport.close)
        radio.transport_lost = hci_transport.source.terminated
        try:
            await asyncio.wait_for(device.power_on(), ENCRYPT_TIMEOUT)
        except BaseException as error:
            await hci_transport.close()
            gone = radio.lost or radio_lost(error) or isinstance(error, TimeoutError)
            if not gone or not isinstance(error, Exception):  # cancelled: not ours to say
                raise
            raise RadioLostError(
                f"the radio on {transport!r} went away while powering on: {error!r}"
            ) from error
        return radio

    @property
    def lost(self) -> bool:
        """The transport is gone: nothing can be sent, and no command will be answered."""
        return self.transport_lost is not None and self.transport_lost.done()

    async def close(self) -> None:
        for connection in list(self.device.connections.values()):
            if self.lost:
                break
            await connection.disconnect()
        if self._on_close is not None:
            await self._on_close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- scanning --------------------------------------------------------------------

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self._last_sighting = (asyncio.get_running_loop().time(), advertisement.address)
        for listener in list(self._scan_listeners):
            listener(advertisement)

    async def add_scan_listener(
        self, listener: AdvertisementListener, only: Iterable[str] | None = None
    ) -> None:
        """Scan for the first listener; later ones share the scan. ``only``: the
        addresses this listener waits for (None: everything)."""
        async with self._scan_lock:
            self._scan_listeners[listener] = (
                None if only is None else frozenset(Address(a) for a in only)
            )
            await self._rescan()

    async def remove_scan_listener(self, listener: AdvertisementListener) -> None:
        async with self._scan_lock:
            if self._scan_listeners.pop(listener, False) is not False:
                await self._rescan()

    def _wanted(self) -> ScanFilter:
        wanted: set[str] = set()
        for only in self._scan_listeners.values():
            if only is None:
                return None
            wanted |= only
        return frozenset(wanted)

    async def _rescan(self) -> None:
        """Bring the controller's scan in line with the listeners (under the scan lock)."""
        device = self.device
        wanted = self._wanted()
        if device.is_scanning and (not self._scan_listeners or wanted != self._scanning_for):
            await device.stop_scanning()
        if not self._scan_listeners or device.is_scanning:
            return
        await self._rotate_address()
        self._scanning_for = wanted
        if wanted is not None and await self._accept_only(wanted):
            await self._start_filtered_scan()
        else:
            self._scanning_for = None
            await device.start_scanning(filter_duplicates=False)

    async def _rotate_address(self) -> None:
        """A new resolvable private address once the current one is ``rpa_lifetime`` old.

        Only between scans: the controller refuses a new address while it scans or
        initiates. (Bumble's own timer, ``Device.update_rpa`` in 0.0.236, sends the old
        address to the controller and keeps the new one on the host, so it is off.)
        """
        device = self.device
        now = asyncio.get_running_loop().time()
        due = now - self._rpa_since >= self.rpa_lifetime
        if not (device.le_privacy_enabled and due) or device.is_le_connecting:
            return
        address = hci.Address.generate_private_address(device.irk)
        await device.send_sync_command(
            hci.HCI_LE_Set_Random_Address_Command(random_address=address)
        )
        device.random_address = address
        self._rpa_since = now

    @property
    def air_address(self) -> str:
        """The address this radio shows on air now (a resolvable private one with privacy)."""
        return address_text(self.device.random_address)

    @property
    def identity_address(self) -> str:
        """The identity address the watch learns at pairing and knows this install by."""
        return address_text(self.device.static_address)

    async def _accept_only(self, addresses: frozenset[str]) -> bool:
        """Program the Filter Accept List; False if the controller cannot hold them all.

        As BlueZ does, a list too small for every wanted address is not used: the scan
        goes unfiltered. The size is read each time, since a chip may change it
        (Core Vol 4 Part E 7.8.14), and a refusal to add counts as full too.
        """
        send = self.device.send_sync_command
        kinds = (hci.Address.RANDOM_DEVICE_ADDRESS, hci.Address.PUBLIC_DEVICE_ADDRESS)
        try:
            size = await send(hci.HCI_LE_Read_Filter_Accept_List_Size_Command())
            room = size.filter_accept_list_size
            if len(kinds) * len(addresses) <= room:
                await send(hci.HCI_LE_Clear_Filter_Accept_List_Command())
                for text in addresses:
                    for kind in kinds:
                        await send(
                            hci.HCI_LE_Add_Device_To_Filter_Accept_List_Command(
                                address_type=kind, address=hci.Address(text, kind)
                            )
                        )
                self._accept_list_full = False
                return True
            why = f"room for {room} entries"
        except hci.HCI_Error as error:
            why = str(error)
        if not self._accept_list_full:
            log.info("scanning unfiltered: the accept list cannot hold %s (%s)", addresses, why)
        self._accept_list_full = True
        return False

    async def _start_filtered_scan(self) -> None:
        """``Device.start_scanning`` with the accept-list policy, which Bumble cannot ask for."""
        device = self.device
        interval = int(DEVICE_DEFAULT_SCAN_INTERVAL / 0.625)
        window = int(DEVICE_DEFAULT_SCAN_WINDOW / 0.625)
        if device.supports_le_extended_advertising:
            extended = hci.HCI_LE_Set_Extended_Scan_Parameters_Command
            await device.send_sync_command(
                extended(
                    own_address_type=hci.OwnAddressType.RANDOM,
                    scanning_filter_policy=extended.BASIC_FILTERED_POLICY,
                    scanning_phys=1 << hci.HCI_LE_1M_PHY_BIT,
                    scan_types=[extended.ACTIVE_SCANNING],
                    scan_intervals=[interval],
                    scan_windows=[window],
                )
            )
            await device.send_sync_command(
                hci.HCI_LE_Set_Extended_Scan_Enable_Command(
                    enable=1, filter_duplicates=0, duration=0, period=0
                )
            )
        else:
            legacy = hci.HCI_LE_Set_Scan_Parameters_Command
            await device.send_sync_command(
                legacy(
                    le_scan_type=legacy.ACTIVE_SCANNING,
                    le_scan_interval=interval,
                    le_scan_window=window,
                    own_address_type=hci.OwnAddressType.RANDOM,
                    scanning_filter_policy=legacy.BASIC_FILTERED_POLICY,
                )
            )
            await device.send_sync_command(
                hci.HCI_LE_Set_Scan_Enable_Command(le_scan_enable=1, filter_duplicates=0)
            )
        device.scanning_is_passive = False
        device.scanning = True

    @contextlib.asynccontextmanager
    async def _sighting(self, address: str) -> AsyncIterator[asyncio.Future[hci.Address]]:
        """A fresh advertisement from ``address``, with the scan kept on for it until the
        block ends.

        Fresh, because the virtual controller connects only on an advertisement: one heard
        within ``SIGHTING_FRESH_S`` (the scan that found the watch) counts. Kept on,
        because when it holds the peer's IRK, Bumble's ``connect_le`` looks for the peer
        once more among the scan's reports before connecting: a scan that stopped, or that
        another listener narrowed to other watches, left it waiting for ever.
        """
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[hci.Address] = loop.create_future()
        last = self._last_sighting
        if (
            last is not None
            and loop.time() - last[0] <= SIGHTING_FRESH_S
            and address_text(last[1]) == address
        ):
            seen.set_result(last[1])

        def listener(advertisement: Advertisement) -> None:
            if not seen.done() and address_text(advertisement.address) == address:
                seen.set_result(advertisement.address)

        await self.add_scan_listener(listener, only=(address,))
        try:
            yield seen
        finally:
            await self.remove_scan_listener(listener)

    # --- connections -----------------------------------------------------------------

    async def connect(self, address: str, within: float) -> Connection:
        """Connect to ``address`` once it advertises (within ``within`` s of holding the
        radio), one at a time.

        Bumble's connect runs as a task of its own under Bumble's own timeout, which
        cancels it at the controller and takes a connection that completed meanwhile.
        It is never cancelled once the controller is connecting: that would leave the
        controller connecting, and its late connection would reach a host that no longer
        expects it; and Python 3.11's ``wait_for`` inside it can swallow a cancellation
        that meets the connection's completion, so the caller would never stop. The
        outer deadline, later, only bounds what Bumble does not (its search for the peer
        before connecting). Whatever connection the caller does not get is dropped
        (``_reap``), so the watch advertises again.
        """
        address = Address(address)
        try:
            connection = await self._connect(address, within)
        except (TimeoutError, core.TimeoutError) as error:
            raise ConnectTimeoutError(
                f"{address}: no connectable advertisement within {within:g} s"
            ) from error
        except (hci.HCI_Error, core.ConnectionError) as error:
            raise BleakError(f"{address}: controller refused the connection: {error}") from error
        # The scan's end was awaited since: the peer may have left already, and a
        # connection whose end nobody will hear of would be waited on for ever.
        if self.device.connections.get(connection.handle) is not connection:
            raise BleakError(f"{address} disconnected")
        self._owned.add(connection)
        return connection

    async def _connect(self, address: str, within: float) -> Connection:
        loop = asyncio.get_running_loop()
        connection: Connection | None = None
        try:
            async with self._connect_lock, self._sighting(address) as seen:
                deadline = loop.time() + within
                async with asyncio.timeout_at(deadline):
                    previous = self._connecting
                    if previous is not None and not previous.done():
                        # An abandoned connect still initiating, under Bumble's timeout.
                        await asyncio.wait([previous])
                    peer = await seen
                remaining = max(deadline - loop.time(), CONNECT_MIN_S)
                self.device.sighted = peer
                connecting = asyncio.ensure_future(self.device.connect_le(peer, timeout=remaining))
                self._connecting = connecting
                try:
                    async with asyncio.timeout(remaining + ENCRYPT_TIMEOUT):
                        connection = await asyncio.shield(connecting)
                except BaseException:
                    self._abandon(connecting)
                    raise
                return connection
        except BaseException:
            if connection is not None:
                self._reap()  # made, but ending the scan failed: no caller will have it
            raise

    def _abandon(self, connecting: asyncio.Future[Connection]) -> None:
        """Our caller gave up on a connect: stop it while Bumble is still looking for the
        peer, else let its own timeout end it and drop whatever connection it leaves."""
        if not connecting.done() and not self.device.initiating:
            connecting.cancel()
        connecting.add_done_callback(lambda _: self._reap())

    def _on_connection(self, connection: Connection) -> None:
        """A connection that completed when no connect was running (see ``CentralDevice``)."""
        if self._connecting is None or self._connecting.done():
            self._reap()

    def _reap(self) -> None:
        """Disconnect every connection this central made that no caller holds: a late
        one, or one whose connect failed as it completed (a cancel that crossed it)."""
        live = set(self.device.connections.values())
        self._owned &= live
        for connection in live - self._owned:
            if connection.role != hci.Role.CENTRAL or self.lost:
                continue
            log.info("dropping a connection to %s nobody waits for", connection.peer_address)
            late = asyncio.ensure_future(connection.disconnect())
            self._background.add(late)
            late.add_done_callback(self._background.discard)
            late.add_done_callback(_quietly)

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        return PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=AgentDelegate(
                self.agent, address_text(connection.peer_address), self._just_works.add
            ),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def pair(self, connection: Connection) -> None:
        """Run LE Secure Connections pairing; the agent supplies passkey or confirmation."""
        peer = address_text(connection.peer_address)
        if self.anonymous:
            raise PairingFailedError(f"pairing with {peer} needs the agent's identity (the store)")
        self._just_works.discard(peer)
        try:
            async with asyncio.timeout(self.pairing_timeout):
                await guarded(connection, self.device.pair(connection))
        except TimeoutError as error:
            raise PairingFailedError(f"pairing with {peer} timed out") from error
        except Exception as error:
            if isinstance(error, PairingFailedError):
                raise
            if peer in self._just_works:
                raise PairingFailedError(
                    f"pairing with {peer} refused: the watch offers only Just Works pairing"
                    " (no passkey to type, no number to compare), which cannot stop a"
                    " man in the middle; set the watch to passkey or numeric pairing"
                ) from error
            if isinstance(error, core.ProtocolError) and error.error_namespace == "smp":
                why = pairing_failure(error.error_code or 0, error.error_name)
                raise PairingFailedError(f"pairing with {peer} failed: {why}") from error
            raise PairingFailedError(f"pairing with {peer} failed: {error}") from error

    async def secure(self, connection: Connection) -> None:
        """Encrypt the link with the stored bond (Bumble does not do it on reconnect)."""
        peer = address_text(connection.peer_address)
        if self.bonds.get(peer) is None:
            raise PairingLostError(peer, "this phone holds no bond for it")
        try:
            async with asyncio.timeout(ENCRYPT_TIMEOUT):
                await guarded(connection, self.device.encrypt(connection))
        except TimeoutError as error:
            raise PairingLostError(peer, f"encryption did not complete{_NOT_PROVEN}") from error
        except Exception as error:
            raise PairingLostError(peer, f"it rejected our keys ({error}){_NOT_PROVEN}") from error

    def forget(self, address: str) -> None:
        self.bonds.delete(Address(address))

    def bond_of(self, address: str) -> str | None:
        return self.bonds.get(Address(address))
