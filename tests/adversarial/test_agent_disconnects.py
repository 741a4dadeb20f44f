"""A bonded peripheral that drops the link in the middle of every phase of a session:
connect, discovery, pairing, encryption, the status read, REPORT, records and
DELETE_UP_TO. The agent stores nothing invalid, acknowledges nothing it has not
committed, reports the loss (and keeps the pairing: a dropped link proves nothing about
the keys), and the next session stores every record once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak.exc import BleakError
from bumble.link import LocalLink

from phoneagent.sync import SyncState
from tests.adversarial.agent_under_test import AgentUnderTest
from tests.adversarial.peripherals import PHASES, Hostile, history, serve
from tests.adversarial.test_agent_history import VALID, assert_sound

WATCH = "C4:22:33:44:55:66"  # test_agent_history's: assert_sound checks this address
RECORDS = history(len(VALID))


@pytest.fixture
async def agent(link: LocalLink, tmp_path: Path) -> AsyncIterator[AgentUnderTest]:
    agent = await AgentUnderTest.start(link, tmp_path / "agent")
    yield agent
    await agent.stop()


async def test_a_drop_during_pairing_leaves_no_bond(link: LocalLink, agent: AgentUnderTest) -> None:
    watch = await Hostile(link, WATCH, drop_in="pairing").start()
    with pytest.raises(BleakError):
        await agent.pair(WATCH)
    assert agent.store.list_bonds() == [] and agent.store.list_devices() == []
    watch.drop_in = None
    await agent.pair(WATCH)  # and pairing again works
    assert agent.store.list_bonds() == [WATCH]
    await watch.stop()


@pytest.mark.parametrize("phase", [p for p in PHASES if p != "pairing"])
async def test_a_drop_in_any_phase_loses_and_acknowledges_nothing(
    link: LocalLink, agent: AgentUnderTest, phase: str, caplog: pytest.LogCaptureFixture
) -> None:
    watch = await Hostile(link, WATCH, newest=len(RECORDS), on_request=serve(RECORDS)).start()
    await agent.pair(WATCH)
    caplog.set_level(logging.INFO, "phoneagent")
    watch.drop_in = phase
    outcome = await agent.session(WATCH)
    assert watch.dropped == [phase]
    state, detail = outcome.last
    assert state is SyncState.BACKOFF, outcome.states  # not "pairing lost"
    assert "disconnected" in detail or "not connected" in detail, detail
    assert f"{WATCH}: backing off" in caplog.text
    assert agent.problem(WATCH) == detail
    assert_sound(watch, agent)
    assert agent.store.list_bonds() == [WATCH]

    watch.drop_in = None
    outcome = await agent.session(WATCH)
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == VALID and agent.problem(WATCH) is None
    assert_sound(watch, agent)
    await watch.stop()
