"""Peripherals that pose as the bonded watch without its keys, and one that offers only
Just Works: the agent pairs with none of them, syncs from none of them, writes nothing
to them, and keeps its bond for the real watch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bumble.link import LocalLink

from phoneagent.sync import SyncState, WatchProtocolError
from phoneagent.transport import ConnectTimeoutError, PairingFailedError
from protocol import uuids
from tests.adversarial.agent_under_test import WAIT, AgentUnderTest
from tests.adversarial.peripherals import Hostile, history, serve

WATCH = "C4:11:22:33:44:55"
RECORDS = history(30)


@pytest.fixture
async def bonded(link: LocalLink, tmp_path: Path) -> AsyncIterator[AgentUnderTest]:
    """An agent paired with the genuine watch (here: a peripheral that holds the bond),
    synced once, after which the genuine watch goes out of range."""
    genuine = await Hostile(link, WATCH, newest=len(RECORDS), on_request=serve(RECORDS)).start()
    agent = await AgentUnderTest.start(link, tmp_path / "agent")
    await agent.pair(WATCH)
    assert (await agent.session(WATCH)).last[0] is SyncState.LIVE
    assert len(agent.stored(WATCH)) == len(RECORDS)
    await genuine.stop()
    yield agent
    await agent.stop()


async def test_a_spoofer_of_the_watch_address_gets_nothing(
    link: LocalLink, bonded: AgentUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """It advertises the bonded watch's address, name and services, serves every value
    unencrypted and has more records: the agent asks it to prove the bond first (encrypt
    with the bond's key), it cannot, and the agent stops there."""
    before, asked = bonded.stored(WATCH), bonded.typist.asked
    more = history(60)
    spoofer = await Hostile(link, WATCH, newest=len(more), on_request=serve(more)).start()
    caplog.set_level(logging.INFO, "phoneagent")
    outcome = await bonded.session(WATCH)
    state, detail = outcome.last
    assert state is SyncState.PAIRING_LOST
    assert "could not prove the bond" in detail and "another device uses its address" in detail
    assert "could not prove the bond" in caplog.text  # the log says it too
    (device,) = (await bonded.status())["devices"]  # and so does `phoneagent status`
    assert "could not prove the bond" in device["problem"]
    assert spoofer.writes == []  # no clock, no profile, no settings, no REPORT
    assert bonded.stored(WATCH) == before
    assert WATCH in bonded.store.list_bonds()  # the real watch's bond is kept
    assert bonded.typist.asked == asked  # and no pairing was attempted
    await spoofer.stop()


async def test_a_lookalike_at_another_address_is_never_connected(
    link: LocalLink, bonded: AgentUnderTest
) -> None:
    """Same name, services and appearance, its own address: the agent's scan for the
    bonded watch does not even report it (the controller's accept list)."""
    lookalike = await Hostile(link, "C4:66:66:66:66:66", on_request=serve(history(5))).start()
    with pytest.raises(ConnectTimeoutError):  # the daemon would wait on: `sync` gives up
        await bonded.sync_once(WATCH, scan_timeout=1.0)
    assert lookalike.connections == 0 and lookalike.writes == []
    await lookalike.stop()


async def test_just_works_only_is_refused_with_the_reason(link: LocalLink, tmp_path: Path) -> None:
    peripheral = await Hostile(link, WATCH, just_works=True).start()
    agent = await AgentUnderTest.start(link, tmp_path / "agent")
    with pytest.raises(PairingFailedError, match="offers only Just Works pairing"):
        await agent.pair(WATCH)
    assert agent.store.list_bonds() == [] and agent.store.list_devices() == []
    assert peripheral.writes == []
    await peripheral.stop()
    await agent.stop()


async def test_a_watch_without_history_status_is_named_as_such(
    link: LocalLink, bonded: AgentUnderTest
) -> None:
    """The bonded watch comes back without History Status (an update): ``sync`` says what is
    missing, before it reads or writes anything, and ``status`` keeps the reason. A Bumble
    radio discovers the services on every connection: no stale copy to blame."""
    before = bonded.stored(WATCH)
    changed = await Hostile(link, WATCH, omitted=frozenset({uuids.HISTORY_STATUS})).start()
    with pytest.raises(WatchProtocolError) as raised:
        await bonded.sync_once(WATCH, scan_timeout=WAIT)
    message = str(raised.value)
    assert message == (
        f"{WATCH} does not offer History Status: it is not a watch this agent syncs, or its"
        " firmware no longer has them"
    )
    assert changed.connections == 1 and changed.writes == []
    assert bonded.problem(WATCH) == message
    assert bonded.stored(WATCH) == before
    await changed.stop()
