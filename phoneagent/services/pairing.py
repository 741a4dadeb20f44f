"""Pairing a watch and forgetting one (``pair``, ``unpair``), also while ``run`` runs.

``pair`` holds the data dir (``phoneagent.instance``): with ``phoneagent run`` holding it,
the running agent pairs instead, on its own radio and into the store it holds, and the
questions of LE Secure Connections (the passkey the watch shows, or whether it shows a
number) come back over the agent's socket to the terminal that asked
(``pair_through_running_agent``). The running agent answers them through a
``PairingRelay``: its radio's pairing agent, which refuses every pairing except the one a
``pair`` command asked it for, with that watch, while that command is there to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from phoneagent import control
from phoneagent.daemon import Daemon
from phoneagent.errors import AgentUsageError, UnreachableError
from phoneagent.instance import HeldError
from phoneagent.privacy import delete_data
from phoneagent.store import DeviceRecord, Store
from phoneagent.store.ledger import EraseRequest
from phoneagent.transport import PairingAgent
from protocol.address import Address, AddressError

log = logging.getLogger(__name__)

PAIR_OP: Final = "pair"
ANSWER_OP: Final = "pair-answer"
# How long the running agent waits for the person at the ``pair`` command to answer (a
# command that went away answers never: the pairing then fails and the relay is free).
ANSWER_TIMEOUT_S: Final = 120.0
# How long a ``pair`` that was interrupted waits for the agent to take its refusal.
REFUSE_TIMEOUT_S: Final = 5.0


class NotPairedError(UnreachableError):
    """Neither a device record nor a bond for the address."""


def unpair(store: Store, address: Address, *, keep_data: bool) -> tuple[EraseRequest, ...]:
    """Forget ``address``; returns the cloud erase requests its data's deletion recorded."""
    if store.get_device(address) is None and address not in store.list_bonds():
        raise NotPairedError(f"{address} is not paired.")
    store.delete_bond(address)
    if keep_data:
        return ()
    # The same deletion as ``delete --device``: cloud copies get an erase request too.
    return delete_data(store, device=address).erase_requests


@dataclass(frozen=True)
class Paired:
    """What a pairing recorded, as the ``pair`` command reports it."""

    address: str
    name: str | None
    model: str | None
    live_derived: bool
    bonded: bool

    @classmethod
    def of(cls, record: DeviceRecord, bonded: bool) -> Paired:
        return cls(record.address, record.name, record.model, record.live_derived, bonded)


@dataclass
class _Conversation:
    """One ``pair`` command's pairing: what it is told next, and the answer awaited."""

    address: Address
    steps: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    answer: asyncio.Future[Any] | None = None
    asked: bool = False  # a question went to the command, which has not answered yet


class PairingRelay:
    """The running agent's ``PairingAgent``: a question about the watch a ``pair`` command
    asked for goes to that command; any other is refused, as a background radio must."""

    def __init__(self, answer_timeout: float = ANSWER_TIMEOUT_S) -> None:
        self._answer_timeout = answer_timeout
        self._conversation: _Conversation | None = None
        # The last one, once it ended with a question still on the terminal: its outcome
        # is the answer's reply (the watch went away meanwhile, for one).
        self._ended: _Conversation | None = None
        self._pairing: asyncio.Task[None] | None = None

    async def enter_passkey(self, peer: str) -> int | None:
        answer = await self._ask(peer, {"ask": "passkey", "peer": peer})
        return answer if isinstance(answer, int) and not isinstance(answer, bool) else None

    async def confirm_number(self, peer: str, number: int) -> bool:
        answer = await self._ask(peer, {"ask": "confirm", "peer": peer, "number": number})
        return answer is True

    async def _ask(self, peer: str, question: dict[str, Any]) -> object:
        talk = self._conversation
        if talk is None or _address(peer) != talk.address or talk.answer is not None:
            log.warning("refused a pairing request from %s: no `pair` asked for it", peer)
            return None
        talk.answer = asyncio.get_running_loop().create_future()
        talk.steps.put_nowait(question)
        talk.asked = True
        try:
            async with asyncio.timeout(self._answer_timeout):
                return await talk.answer
        except TimeoutError:
            log.warning("no answer from `pair` within %g s; pairing refused", self._answer_timeout)
            return None
        finally:
            talk.answer = None

    def handlers(self, daemon: Daemon) -> dict[str, control.Handler]:
        """The socket's ``pair`` and ``pair-answer`` ops for ``daemon``'s radio and store."""

        async def pair(request: dict[str, Any]) -> dict[str, Any]:
            try:
                address = Address(str(request["address"]))
                scan_timeout = float(request["timeout"])
                bond = bool(request.get("bond", False))
            except (KeyError, TypeError, ValueError, AddressError) as error:
                raise control.ControlUsageError(
                    f"expected {{'address': ADDRESS, 'timeout': SECONDS}}: {error}"
                ) from None
            if self._pairing is not None:
                raise control.ControlError("it is pairing another watch now; try again after")
            talk = self._conversation = _Conversation(address)
            self._ended = None
            self._pairing = asyncio.create_task(self._pair(daemon, talk, scan_timeout, bond))
            return await talk.steps.get()

        async def answer(request: dict[str, Any]) -> dict[str, Any]:
            ended, self._ended = self._ended, None
            if ended is not None and not ended.steps.empty():
                return ended.steps.get_nowait()  # how the pairing ended while it was asked
            talk = self._conversation
            if talk is None or talk.answer is None or talk.answer.done():
                raise control.ControlError("no pairing question is waiting for an answer")
            talk.answer.set_result(request.get("passkey", request.get("confirm")))
            talk.asked = False
            return await talk.steps.get()

        return {PAIR_OP: pair, ANSWER_OP: answer}

    async def _pair(
        self, daemon: Daemon, talk: _Conversation, scan_timeout: float, bond: bool
    ) -> None:
        try:
            record, bonded = await daemon.pair(talk.address, scan_timeout=scan_timeout, bond=bond)
            paired = Paired.of(record, bonded)
        except Exception as error:
            log.info("%s: pairing for `pair` failed: %s", talk.address, error)
            usage = isinstance(error, AgentUsageError)
            talk.steps.put_nowait({"failed": str(error) or type(error).__name__, "usage": usage})
        else:
            talk.steps.put_nowait({"paired": asdict(paired)})
        finally:
            if talk.asked:  # ended while the command asks the person: its answer gets this
                self._ended = talk
            self._conversation = None
            self._pairing = None


async def pair_through_running_agent(
    busy: HeldError, address: Address, *, scan_timeout: float, bond: bool, asker: PairingAgent
) -> Paired:
    """``phoneagent pair`` when ``busy`` says another process holds the data dir: a running
    ``phoneagent run`` pairs instead, asking ``asker`` what the watch shows. Another holder
    (a ``sync``, a ``pair``) serves no socket: ``busy`` is raised as it is."""
    request = {"op": PAIR_OP, "address": address, "timeout": scan_timeout, "bond": bond}
    try:
        step = await control.request(busy.data_dir, request, None)
        while "ask" in step:
            peer = str(step["peer"])
            try:
                if step["ask"] == "passkey":
                    reply: dict[str, Any] = {"passkey": await asker.enter_passkey(peer)}
                else:
                    reply = {"confirm": await asker.confirm_number(peer, int(step["number"]))}
            except BaseException:  # Ctrl-C, end of input: no answer is coming
                await _refuse(busy)
                raise
            step = await control.request(busy.data_dir, {"op": ANSWER_OP, **reply}, None)
    except control.AgentNotRunningError:
        raise busy from None
    except control.ControlError as error:  # an agent that does not take the request
        raise HeldError(busy.data_dir, busy.holder, f"it cannot pair {address} ({error})") from None
    if "failed" in step:
        kind = AgentUsageError if step.get("usage") else UnreachableError
        raise kind(
            f"the agent running on {busy.data_dir} could not pair {address}: {step['failed']}"
        )
    return Paired(**step["paired"])


async def _refuse(busy: HeldError) -> None:
    """Answer no for a ``pair`` that stops asking: the running agent ends that pairing now
    instead of holding its radio's one pairing for the answer timeout (the next ``pair``
    was refused, "it is pairing another watch now", for two minutes)."""
    with contextlib.suppress(control.ControlError, OSError):
        await control.request(busy.data_dir, {"op": ANSWER_OP, "passkey": None}, REFUSE_TIMEOUT_S)


def _address(text: str) -> Address | None:
    try:
        return Address(text)
    except AddressError:
        return None
