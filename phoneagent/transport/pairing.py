"""The user's side of pairing: the CLI implements ``PairingAgent`` by prompting."""

from __future__ import annotations

from typing import Protocol

from bumble.pairing import PairingDelegate


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


class AgentDelegate(PairingDelegate):
    """Bumble delegate for one connection, forwarding to the agent.

    Keyboard and display lets the watch pick passkey entry (it displays) or numeric
    comparison (it has yes/no); Just Works is refused since it gives no MITM protection.
    """

    def __init__(self, agent: PairingAgent, peer: str) -> None:
        super().__init__(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT)
        self._agent = agent
        self._peer = peer

    async def accept(self) -> bool:
        return True

    async def confirm(self, auto: bool = False) -> bool:
        return False

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return await self._agent.confirm_number(self._peer, number)

    async def get_number(self) -> int | None:
        return await self._agent.enter_passkey(self._peer)
