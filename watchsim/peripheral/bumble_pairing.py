"""The watch's side of SMP on Bumble (0.0.236): Secure Connections Only, MITM when the
watch can give it, a 30 s timeout and a back-off for repeated attempts.

Bumble's ``smp.Session`` completes any pairing the two I/O capabilities allow (Just
Works and legacy pairing included, any key size, OOB that the watch never offered),
has no SMP timeout and no Repeated Attempts. ``WatchSession`` (installed with Bumble's
public ``Device.smp_session_proxy``) refuses a Pairing Request that could not give
what the watch requires, before any key exists, so that no weaker bond is ever stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from bumble import hci, smp
from bumble.device import Connection, Device
from bumble.pairing import PairingConfig, PairingDelegate

from watchsim.peripheral.bumble_gatt import guard_channel
from watchsim.peripheral.port import PairingDisplay

logger = logging.getLogger(__name__)

# Core Vol 3 Part H 3.4: a pairing not finished in 30 s fails and its link is dropped.
SMP_TIMEOUT_S: Final = 30.0
# Secure Connections Only mode requires the full 128-bit key (Core Vol 3 Part H 2.3.4).
KEY_SIZE: Final = 16


@dataclass(frozen=True)
class PairingPolicy:
    """What a pairing on one connection must meet, decided when it starts."""

    timeout_s: float
    repeated_attempts: bool  # the peer's address failed too recently (Backoff)


class WatchDelegate(PairingDelegate):
    """Routes Bumble's pairing prompts to the watch's display and carries the policy."""

    def __init__(
        self,
        io_capability: PairingDelegate.IoCapability,
        policy: PairingPolicy,
        display: PairingDisplay | None,
        peer: str,
    ) -> None:
        super().__init__(io_capability=io_capability, maximum_encryption_key_size=KEY_SIZE)
        self.policy = policy
        self._display = display
        self._peer = peer

    async def display_number(self, number: int, digits: int) -> None:
        if self._display is not None:
            await self._display.show_passkey(self._peer, number)

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return self._display is not None and await self._display.confirm_number(self._peer, number)


class WatchSession(smp.Session):
    """One pairing as the responder, refused early unless it can meet the policy."""

    def __init__(
        self,
        manager: smp.Manager,
        connection: Connection,
        pairing_config: PairingConfig,
        is_initiator: bool,
    ) -> None:
        super().__init__(manager, connection, pairing_config, is_initiator)
        self._requested = False
        self._timer: asyncio.TimerHandle | None = None
        self._dropping: asyncio.Future[None] | None = None

    @property
    def policy(self) -> PairingPolicy:
        delegate = self.pairing_config.delegate
        assert isinstance(delegate, WatchDelegate)
        return delegate.policy

    @property
    def authenticated(self) -> bool:
        """Whether the key this pairing makes is MITM-protected (what the link gets)."""
        return self.sc and self.pairing_method is not smp.PairingMethod.JUST_WORKS

    def get_long_term_key(self, rand: bytes, ediv: int) -> bytes | None:
        """None until this pairing has made its key (Bumble's raises then): a central
        that encrypts in the middle of a pairing gets the bond's key, if any."""
        if self.sc and getattr(self, "ltk", None) is None:
            return None
        return super().get_long_term_key(rand, ediv)

    def refusal(self, command: smp.SMP_Pairing_Request_Command) -> smp.ErrorCode | None:
        """Why this Pairing Request is refused (Core Vol 3 Part H 2.3.5.1, 2.3.6), if it is."""
        if self.policy.repeated_attempts:
            return smp.ErrorCode.REPEATED_ATTEMPTS
        if command.maximum_encryption_key_size < KEY_SIZE:
            return smp.ErrorCode.ENCRYPTION_KEY_SIZE
        if not command.auth_req & smp.AuthReq.SC:
            return smp.ErrorCode.AUTHENTICATION_REQUIREMENTS
        if command.oob_data_flag:
            return smp.ErrorCode.OOB_NOT_AVAILABLE  # the watch never gave out OOB data
        if self.mitm:
            self.decide_pairing_method(command.auth_req, command.io_capability, self.io_capability)
            if self.pairing_method is smp.PairingMethod.JUST_WORKS:
                return smp.ErrorCode.AUTHENTICATION_REQUIREMENTS
        return None

    def on_smp_command(self, command: smp.SMP_Command) -> None:
        """A pairing step before any Pairing Request, or a second Pairing Request, is out
        of sequence: Bumble's handlers would raise on the missing state."""
        request = isinstance(command, smp.SMP_Pairing_Request_Command)
        if request == self._requested and not isinstance(command, smp.SMP_Pairing_Failed_Command):
            logger.debug("SMP %s out of sequence on 0x%04X", command.name, self.connection.handle)
            self.send_command(
                smp.SMP_Pairing_Failed_Command(reason=smp.ErrorCode.UNSPECIFIED_REASON)
            )
            if not self.completed:
                self.on_pairing_failure(smp.ErrorCode.UNSPECIFIED_REASON)
            return
        super().on_smp_command(command)

    async def on_smp_pairing_request_command_async(
        self, command: smp.SMP_Pairing_Request_Command
    ) -> None:
        self._requested = True
        reason = self.refusal(command)
        if reason is not None:
            logger.info("pairing from %s refused: %s", self.connection.peer_address, reason.name)
            self.send_pairing_failed(reason)
            return
        self._timer = asyncio.get_running_loop().call_later(self.policy.timeout_s, self._time_out)
        await super().on_smp_pairing_request_command_async(command)

    def _time_out(self) -> None:
        if self.completed:
            return
        logger.info("pairing with %s timed out", self.connection.peer_address)
        self.on_pairing_failure(smp.ErrorCode.UNSPECIFIED_REASON)
        self._dropping = asyncio.ensure_future(self._drop())

    async def _drop(self) -> None:
        with contextlib.suppress(hci.HCI_Error):
            await self.connection.disconnect(hci.HCI_AUTHENTICATION_FAILURE_ERROR)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def on_pairing(self) -> None:
        self._cancel_timer()
        await super().on_pairing()

    def on_pairing_failure(self, reason: smp.ErrorCode) -> None:
        """A failed session ends (as at disconnection), so that the next Pairing Request
        on this link starts afresh instead of reaching a completed session."""
        self._cancel_timer()
        super().on_pairing_failure(reason)
        self.on_disconnection(0)

    def on_disconnection(self, reason: int) -> None:
        self._cancel_timer()
        if self.manager.sessions.get(self.connection.handle) is self:
            super().on_disconnection(reason)


class Backoff:
    """Repeated Attempts (Core Vol 3 Part H 2.3.6): after a failed pairing, an address
    waits before its next one, twice as long after each further failure, up to
    ``max_s``; a success forgets it. At most ``capacity`` addresses are remembered
    (the oldest go first), so random addresses cannot grow it without bound."""

    def __init__(self, base_s: float = 1.0, max_s: float = 60.0, capacity: int = 256) -> None:
        self._base = base_s
        self._max = max_s
        self._capacity = capacity
        # address -> (consecutive failures, refused until)
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def blocked(self, address: str, now: float) -> bool:
        entry = self._entries.get(address)
        return entry is not None and now < entry[1]

    def failed(self, address: str, now: float) -> None:
        failures, until = self._entries.pop(address, (0, now))
        if now - until > self._max:
            failures = 0  # quiet for long enough: start over
        failures += 1
        self._entries[address] = (failures, now + min(self._base * 2 ** (failures - 1), self._max))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._entries.pop(address, None)


def guard_smp(device: Device) -> None:
    """An SMP PDU that does not parse fails the pairing (Invalid Parameters)."""

    def refuse(connection: Connection, _pdu: bytes) -> None:
        session = device.smp_manager.sessions.get(connection.handle)
        if session is not None and not session.completed:
            session.send_pairing_failed(smp.ErrorCode.INVALID_PARAMETERS)
        else:
            failed = smp.SMP_Pairing_Failed_Command(reason=smp.ErrorCode.INVALID_PARAMETERS)
            device.smp_manager.send_command(connection, failed)

    guard_channel(device, smp.SMP_CID, smp.SMP_Command.from_bytes, refuse)
