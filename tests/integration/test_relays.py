"""Relays end to end over loopback: a paired watchsim watch, the live sync engine with
the relay service, and the CLI (``permissions``, ``inject``) talking to it over its
socket. Only injection here; the D-Bus sources are in tests/system/test_relays_dbus.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bumble.link import LocalLink
from click.testing import CliRunner

from phoneagent.backoff import Backoff
from phoneagent.cli import main
from phoneagent.control import AgentNotRunningError, request
from phoneagent.privacy import POLICY_VERSION
from phoneagent.relays.permissions import (
    AppMode,
    CallPrivacy,
    Feature,
    QuietHours,
    RelayPermissionError,
    RelayPolicy,
    load_policy,
    set_app_mode,
    set_call_privacy,
    set_permission,
    set_quiet_hours,
)
from phoneagent.relays.service import RelayService
from phoneagent.store import Store
from phoneagent.sync import SyncObserver, SyncState
from tests.integration.test_sync_engine import KEY, WAIT, Agent, paired
from watchsim.control import request as ctl
from watchsim.controlops import Music, Press, Volume
from watchsim.testing import LoopbackWatch


class States(SyncObserver):
    """Lets a test wait for the engine to reach a state (it attaches relays before BACKFILL)."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.seen: list[SyncState] = []

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self.seen.append(state)
        self._changed.set()

    async def reach(self, state: SyncState, after: int = 0) -> int:
        """Wait until ``state`` is seen at or after index ``after``; returns its index + 1."""
        async with asyncio.timeout(WAIT):
            while state not in self.seen[after:]:
                self._changed.clear()
                await self._changed.wait()
        return self.seen.index(state, after) + 1


class Screen:
    """What the watch shows, awaited through its event log rather than polled."""

    def __init__(self, watch: LoopbackWatch) -> None:
        self._watch = watch
        self._changed = asyncio.Event()
        watch.app.log_listeners.append(lambda _line: self._changed.set())

    async def until(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        status: dict[str, Any] = {}
        try:
            async with asyncio.timeout(WAIT):
                while not check(status := self._watch.app.status()):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"the watch never showed {what}; it shows {status}") from None
        return status


@contextlib.contextmanager
def hub_log() -> Iterator[asyncio.Queue[str]]:
    """The hub's log lines as they are emitted: proof that it handled an event."""
    lines: asyncio.Queue[str] = asyncio.Queue()
    handler = logging.Handler()
    handler.emit = lambda record: lines.put_nowait(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("phoneagent.relays.hub")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass
class Rig:
    watch: LoopbackWatch
    agent: Agent
    service: RelayService
    screen: Screen
    states: States
    data_dir: Path

    def grant(self, feature: Feature, granted: bool = True, app: str | None = None) -> None:
        set_permission(self.agent.store, feature, granted, app)

    async def cli(self, *args: str) -> str:
        """The real CLI in a thread: it runs its own event loop, as in a second process."""
        runner = CliRunner()
        env = {"PHONEAGENT_DB_KEY": KEY.material}
        result = await asyncio.to_thread(
            runner.invoke, main, ["--data-dir", str(self.data_dir), *args], env=env
        )
        assert result.exit_code == 0, result.output
        return result.output

    async def inject(self, **payload: Any) -> Any:
        return await request(self.data_dir, payload)


@contextlib.asynccontextmanager
async def relay_rig(link: LocalLink, tmp_path: Path, **service: Any) -> AsyncIterator[Rig]:
    watch, agent = await paired(link, tmp_path, hours=0.02)
    data_dir = tmp_path / "agent"
    # D-Bus sources only on the buses a test gives: never this machine's own.
    relays = RelayService(agent.store, data_dir, dbus="session_bus" in service, **service)
    await relays.start()
    states = States()
    sync = agent.sync(
        watch.address, observer=states, relays=relays.hub, backoff=Backoff(initial=0.05)
    )
    task = asyncio.create_task(sync.run())
    rig = Rig(watch, agent, relays, Screen(watch), states, data_dir)
    try:
        await states.reach(SyncState.BACKFILL)
        yield rig
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relays.aclose()
        await agent.stop()
        await watch.stop()


def shown(status: dict[str, Any]) -> list[str]:
    return [n["title"] for n in status["notifications"]]


async def test_notifications_need_the_grant_and_an_allowed_app__PR_NOTIF(
    link: LocalLink, tmp_path: Path
) -> None:
    async with relay_rig(link, tmp_path) as rig:
        blocked = await rig.inject(op="notify", app="chat", title="too early", body="x")
        assert blocked["result"] == "notifications not granted"

        out = await rig.cli("permissions", "grant", "notifications")
        assert "in effect now on connected watches" in out
        await rig.cli("permissions", "revoke", "notifications", "--app", "spam")
        spam = await rig.inject(op="notify", app="spam", title="buy now")
        assert spam["result"] == "app not allowed"
        out = await rig.cli(
            "inject", "notification", "--app", "chat", "--title", "Ann", "--body", "Hi"
        )
        assert "delivered" in out
        status = await rig.screen.until(lambda s: "Ann" in shown(s), "the chat notification")
        assert shown(status) == ["Ann"]  # neither the early one nor spam, ever

        # Allow-list mode: an app without its own grant no longer passes.
        await rig.cli("permissions", "set", "--apps", "allow-list")
        assert (await rig.inject(op="notify", app="mail", title="m"))["result"] == "app not allowed"
        await rig.cli("permissions", "grant", "notifications", "--app", "mail")
        assert (await rig.inject(op="notify", app="mail", title="m"))["result"] == "delivered"

        ledger = [(e.subject, e.scope, e.granted) for e in rig.agent.store.ledger.consent_history()]
        assert ledger == [
            ("notifications", "", True),
            ("notifications", "spam", False),
            ("notifications", "@apps=allow-list", True),
            ("notifications", "mail", True),
        ]
        assert {e.policy_version for e in rig.agent.store.ledger.consent_history()} == {
            "2023-08-15"
        }


async def test_revoking_takes_alerts_off_the_watch_at_once__PR_WITHDRAW(
    link: LocalLink, tmp_path: Path
) -> None:
    async with relay_rig(link, tmp_path) as rig:
        rig.grant(Feature.NOTIFICATIONS)
        rig.grant(Feature.MUSIC)
        await rig.service.reload()
        await rig.inject(op="notify", app="chat", title="Ann", body="Hi")
        await rig.inject(op="notify", app="mail", title="Bob", body="Re:")
        await rig.cli("inject", "music", "playing", "--title", "Song", "--artist", "Band")
        await rig.screen.until(lambda s: len(s["notifications"]) == 2, "both notifications")
        await rig.screen.until(lambda s: (s["music"] or {}).get("title") == "Song", "the song")

        await rig.cli("permissions", "revoke", "notifications", "--app", "chat")
        status = await rig.screen.until(lambda s: shown(s) == ["Bob"], "chat withdrawn")
        await rig.cli("permissions", "revoke", "music")
        status = await rig.screen.until(lambda s: s["music"]["title"] == "", "music cleared")
        assert status["music"]["playback"] == "stopped"
        await rig.cli("permissions", "revoke", "notifications")
        await rig.screen.until(lambda s: s["notifications"] == [], "every notification withdrawn")
        assert rig.service.hub.status()["notifications_held"] == 0


async def test_queued_while_away_and_delivered_on_reconnect__PR_NOTIF(
    link: LocalLink, tmp_path: Path
) -> None:
    async with relay_rig(link, tmp_path) as rig:
        rig.grant(Feature.NOTIFICATIONS)
        await rig.service.reload()
        seen = len(rig.states.seen)
        await rig.watch.app.out_of_range(3600)
        await rig.states.reach(SyncState.BACKOFF, seen)
        assert rig.service.hub.watches == []
        assert (await rig.inject(op="notify", app="chat", title="while away"))["result"] == "queued"
        seen = len(rig.states.seen)
        await rig.watch.reboot()  # back in range at once (and the screen starts empty)
        await rig.states.reach(SyncState.BACKFILL, seen)
        await rig.screen.until(lambda s: shown(s) == ["while away"], "the queued notification")


async def test_calls_ring_until_ended_and_reject_reaches_the_phone__PR_CALL(
    link: LocalLink, tmp_path: Path
) -> None:
    async with relay_rig(link, tmp_path) as rig:
        out = await rig.cli("inject", "call", "incoming", "--caller", "Mum")
        assert "not relayed" in out
        await rig.cli("permissions", "grant", "calls")

        ringing = await rig.inject(op="call", state="incoming", caller="Mum")
        status = await rig.screen.until(lambda s: s["calls"] != [], "a ringing call")
        assert status["calls"][0] == {
            "id": ringing["call_id"],
            "state": "incoming",
            "name": "Mum",
            "muted": False,
        }
        await rig.inject(op="call", state="ended", key=ringing["key"])  # hung up on the phone
        status = await rig.screen.until(lambda s: s["calls"] == [], "ringing stopped")
        assert status["recent_calls"][0]["state"] == "ended"

        # A number is never shown; reject from the watch reaches the phone.
        second = await rig.inject(op="call", state="incoming", caller="+44 20 7946 0123")
        status = await rig.screen.until(lambda s: s["calls"] != [], "the second call")
        assert status["calls"][0]["name"] == ""
        await ctl(rig.watch.app.config.state_dir, Press("reject"))
        status = await rig.screen.until(lambda s: s["calls"] == [], "the call rejected")
        assert status["recent_calls"][0] == {
            "id": second["call_id"],
            "state": "rejected",
            "name": "",
        }
        actions = json.loads(await rig.cli("inject", "status"))["watch_actions"]
        assert actions == [{"key": second["key"], "action": "reject"}]

        await rig.cli("permissions", "set", "--call-privacy", "hidden")
        await rig.inject(op="call", state="incoming", caller="Mum")
        status = await rig.screen.until(lambda s: s["calls"] != [], "the hidden call")
        assert status["calls"][0]["name"] == ""


async def test_watch_music_buttons_need_the_grant__PR_MUSIC(
    link: LocalLink, tmp_path: Path
) -> None:
    async with relay_rig(link, tmp_path) as rig:
        state_dir = rig.watch.app.config.state_dir
        out = await rig.cli("inject", "music", "playing", "--title", "Song", "--volume", "40")
        assert "not relayed (music not granted)" in out
        with hub_log() as lines:
            await ctl(state_dir, Music("pause"))  # not granted: dropped
            async with asyncio.timeout(WAIT):
                assert await lines.get() == "music button pause dropped"
        rig.grant(Feature.MUSIC)
        await rig.service.reload()
        await rig.screen.until(lambda s: (s["music"] or {}).get("title") == "Song", "the song")
        pressed: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        rig.service.inject.action_listeners.append(pressed.put_nowait)
        await ctl(state_dir, Volume(70))
        async with asyncio.timeout(WAIT):
            assert await pressed.get() == {"key": "music", "action": "set_volume", "volume": "70"}
        assert len(rig.service.inject.actions) == 1  # the pause before the grant never arrived


async def test_cli_without_a_running_agent(tmp_path: Path) -> None:
    with pytest.raises(AgentNotRunningError):
        await request(tmp_path, {"op": "status"})


def test_the_policy_is_the_ledger_replayed__PR_VERSION(tmp_path: Path) -> None:
    with Store.open(tmp_path / "agent", KEY) as store:
        assert load_policy(store) == RelayPolicy()  # everything off before any grant
        set_permission(store, Feature.NOTIFICATIONS, True)
        set_permission(store, Feature.NOTIFICATIONS, False, app="chat")
        set_permission(store, Feature.NOTIFICATIONS, True, app="chat")
        set_permission(store, Feature.CALLS, True)
        set_permission(store, Feature.CALLS, False)
        set_quiet_hours(store, QuietHours.parse("22:00-07:00"))
        set_call_privacy(store, CallPrivacy.HIDDEN)
        set_app_mode(store, AppMode.ALLOW_LIST)
        with pytest.raises(RelayPermissionError, match="notifications only"):
            set_permission(store, Feature.MUSIC, True, app="chat")
        with pytest.raises(RelayPermissionError, match="app id"):
            set_permission(store, Feature.NOTIFICATIONS, True, app="@apps=deny-list")
        policy = load_policy(store)
        assert policy == RelayPolicy(
            granted=frozenset({Feature.NOTIFICATIONS}),
            app_mode=AppMode.ALLOW_LIST,
            app_rules={"chat": True},
            quiet_hours=QuietHours.parse("22:00-07:00"),
            call_privacy=CallPrivacy.HIDDEN,
        )
        set_quiet_hours(store, None)
        assert load_policy(store).quiet_hours is None
        assert all(e.policy_version == POLICY_VERSION for e in store.ledger.consent_history())
