"""The agent as production runs it, facing a hostile peripheral: a real SQLCipher store,
the Bumble radio with the store's bonds and identity, and the sync engine's daemon loop
(``DeviceSync.run``), watched through its observer and its log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bumble.link import LocalLink
from click.testing import CliRunner

from phoneagent.cli import main
from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import DeviceSync, StoreBonds, SyncObserver, SyncState, fixed_preferences
from phoneagent.sync.discovery import pair_device
from phoneagent.sync.engine import Backoff
from phoneagent.sync.preferences import SyncPreferences
from phoneagent.transport import BumbleRadio, Transport, radio_transport
from protocol.settings import Sex, UserProfile
from tests.adversarial.peripherals import PASSKEY

KEY = DbKey("0a" * 32)
WAIT = 20.0
# Where a session ends: the daemon backs off, gives up on the pairing, or is live.
OUTCOMES = frozenset({SyncState.BACKOFF, SyncState.PAIRING_LOST, SyncState.LIVE})
# Personal data the agent writes to a watch it trusts (PR-CORRECT).
PROFILE = UserProfile(age_years=37, sex=Sex.FEMALE, height_cm=168, weight_decikg=612)


class TypesPasskey:
    """The person at the phone, typing the passkey the (hostile) watch shows."""

    def __init__(self) -> None:
        self.asked = 0

    async def enter_passkey(self, peer: str) -> int | None:
        self.asked += 1
        return PASSKEY

    async def confirm_number(self, peer: str, number: int) -> bool:
        self.asked += 1
        return True


@dataclass
class Outcome(SyncObserver):
    """States as the daemon reports them; ``ended`` once a session has an outcome."""

    states: list[tuple[SyncState, str]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    last: tuple[SyncState, str] = (SyncState.STOPPED, "")  # the session's outcome

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self.states.append((state, detail))
        if state in OUTCOMES and not self.ended.is_set():
            self.last = (state, detail)
            self.ended.set()


class AgentUnderTest:
    def __init__(self, store: Store, radio: BumbleRadio, typist: TypesPasskey) -> None:
        self.store = store
        self.astore = AsyncStore(store)
        self.radio = radio
        self.typist = typist
        self.transport: Transport = radio_transport(radio)

    @classmethod
    async def start(cls, link: LocalLink, directory: Path) -> AgentUnderTest:
        store = Store.open(directory, KEY)
        typist = TypesPasskey()
        radio = await BumbleRadio.on_link(link, bonds=StoreBonds(store), agent=typist)
        return cls(store, radio, typist)

    async def status(self) -> dict[str, Any]:
        """``phoneagent status --json`` on this agent's data dir, as the person runs it
        (in a thread: the command runs an event loop of its own)."""
        directory = str(self.store.path.parent)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            ["--data-dir", directory, "status", "--json"],
            env={"PHONEAGENT_DB_KEY": KEY.material},
        )
        assert result.exit_code == 0, result.output
        status: dict[str, Any] = json.loads(result.output)
        return status

    async def pair(self, address: str) -> None:
        await pair_device(self.transport, self.store, address, scan_timeout=WAIT)

    def sync(self, address: str, outcome: SyncObserver, idle_timeout: float) -> DeviceSync:
        preferences = fixed_preferences(SyncPreferences(profile=PROFILE))
        return DeviceSync(
            address,
            self.transport,
            self.astore,
            preferences,
            observer=outcome,
            backoff=Backoff(initial=3600.0, maximum=3600.0),  # one session per call
            idle_timeout=idle_timeout,
        )

    async def sync_once(self, address: str, *, scan_timeout: float) -> int:
        """``phoneagent sync``: one backfill, errors raised."""
        return await self.sync(address, Outcome(), 15.0).sync_once(scan_timeout=scan_timeout)

    async def session(self, address: str, *, idle_timeout: float = 15.0) -> Outcome:
        """One session of the daemon's loop for ``address``, until its outcome.

        The loop must not end by itself (a crash) before it reports one: the task is
        cancelled only after, and any exception it raised fails the test.
        """
        outcome = Outcome()
        task = asyncio.ensure_future(self.sync(address, outcome, idle_timeout).run())
        try:
            ended = asyncio.ensure_future(outcome.ended.wait())
            await asyncio.wait({task, ended}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            assert outcome.ended.is_set(), f"no outcome; states {outcome.states}"
            if task.done():
                assert outcome.last[0] is SyncState.PAIRING_LOST, task.exception()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.astore.pool.run(lambda: None)  # a commit under way has finished
        return outcome

    def problem(self, address: str) -> str | None:
        """What ``phoneagent status`` shows for the device's last failed session."""
        found = self.store.sync_problem(address)
        return None if found is None else found[1]

    def stored(self, address: str) -> dict[int, int]:
        """seq -> raw of every stored sample."""
        return {s.seq: s.sample.raw for s in self.store.iter_samples(address)}

    def accounted(self, address: str) -> int:
        """The sync position: every seq below it is a stored sample or a recorded gap."""
        return self.store.next_seq(address)

    async def stop(self) -> None:
        await self.radio.close()
        await self.astore.aclose()
