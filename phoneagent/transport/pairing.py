"""The user's side of pairing: the CLI implements ``PairingAgent`` by prompting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

# What a person can do about each reason a watch gives for failing a pairing (SMP Pairing
# Failed, Core Vol 3 Part H 3.5.5). The codes are the spec's, not a library's.
_PAIRING_FAILED: Final[Mapping[int, str]] = {
    0x01: "the passkey was not entered (cancelled, or not in time); pair again",
    0x03: (
        "the watch cannot give the security this phone requires (LE Secure Connections,"
        " protected against a man in the middle)"
    ),
    0x04: "the passkey did not match: type the six digits the watch shows, and pair again",
    0x05: "the watch does not take pairings now; put it in pairing mode and pair again",
    0x08: "the watch gave no reason; pair again",
    0x09: (
        "the watch refuses new attempts for a while after a failed one (up to a minute"
        " after several); wait, then pair again"
    ),
    0x0B: "the two sides' keys did not check out (a wrong passkey or number); pair again",
    0x0C: "the numbers were not confirmed as the same on both; pair again and compare them",
}


def pairing_failure(code: int, name: str) -> str:
    """Why a pairing failed, in words a person can act on; ``name`` for a code not listed."""
    return _PAIRING_FAILED.get(code, f"the watch answered {name} (reason 0x{code:02X})")


class PairingAgent(Protocol):
    """Answers the questions LE Secure Connections asks the phone's user."""

    async def enter_passkey(self, peer: str) -> int | None:
        """The 6-digit passkey the watch shows, or None to refuse."""
        ...

    async def confirm_number(self, peer: str, number: int) -> bool:
        """Whether the watch shows ``number`` too (numeric comparison)."""
        ...


class RefusingAgent:
    """For radios that must never pair (background sync): every request is declined."""

    async def enter_passkey(self, peer: str) -> int | None:
        return None

    async def confirm_number(self, peer: str, number: int) -> bool:
        return False
