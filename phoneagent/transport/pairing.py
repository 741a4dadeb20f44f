"""The user's side of pairing: the CLI implements ``PairingAgent`` by prompting."""

from __future__ import annotations

from typing import Protocol


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
