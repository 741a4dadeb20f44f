"""A bonded peripheral that breaks the history protocol: malformed, truncated,
out-of-order and duplicated batches, seq regressions, absurd counts, notifications on
handles nobody subscribed to, indications that break the one-at-a-time rule.

After each, the agent has stored only records the peripheral really sent as valid, has
acknowledged (DELETE_UP_TO) nothing it had not committed, did not crash (the daemon's
loop reports an outcome), and said what happened (the state's detail and the log).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bumble.device import Connection
from bumble.link import LocalLink

from phoneagent.logs import RepeatFilter, logs_dir, setup_logging
from phoneagent.sync import SyncState
from protocol import uuids
from tests.adversarial.agent_under_test import AgentUnderTest, Outcome
from tests.adversarial.peripherals import (
    ABORT,
    COUNT,
    DELETE_UP_TO,
    REPORT,
    REPORT_LIVE,
    SUCCESS,
    Hostile,
    Record,
    Script,
    batch,
    gap_batch,
    history,
    serve,
    status,
)

WATCH = "C4:22:33:44:55:66"
RECORDS = history(40)
VALID = {r.seq: r.raw for r in RECORDS}


@pytest.fixture
async def pair(link: LocalLink, tmp_path: Path) -> AsyncIterator[tuple[Hostile, AgentUnderTest]]:
    """The agent bonded with the peripheral (it holds the keys: it is "the watch")."""
    watch = await Hostile(link, WATCH, newest=len(RECORDS)).start()
    agent = await AgentUnderTest.start(link, tmp_path / "agent")
    await agent.pair(WATCH)
    yield watch, agent
    await watch.stop()
    await agent.stop()


def assert_sound(watch: Hostile, agent: AgentUnderTest) -> None:
    """Stored only what was sent valid; acknowledged only below the committed sync position."""
    stored = agent.stored(WATCH)
    assert {seq: VALID.get(seq) for seq in stored} == stored
    position = agent.accounted(WATCH)
    assert all(ack < position for ack in watch.acknowledged()), (watch.acknowledged(), position)


async def run(
    watch: Hostile, agent: AgentUnderTest, script: Script, *, idle_timeout: float = 15.0
) -> Outcome:
    watch.on_request = script
    outcome = await agent.session(WATCH, idle_timeout=idle_timeout)
    assert_sound(watch, agent)
    return outcome


async def recovers(watch: Hostile, agent: AgentUnderTest) -> None:
    """The same watch, well-behaved again: the next session stores everything, once."""
    outcome = await run(watch, agent, serve(RECORDS))
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == VALID
    assert agent.problem(WATCH) is None  # status no longer shows the failure


def on_report(*batches: bytes, last: int | None = None, result: int | None = SUCCESS) -> Script:
    """Answers the first REPORT with ``batches`` then a response (``result`` None: none);
    anything after as a well-behaved watch (so the outcome is the first REPORT's)."""
    done = False
    honest = serve(RECORDS)

    async def script(watch: Hostile, connection: Connection, request: bytes) -> None:
        nonlocal done
        if request[0] != REPORT or done:
            await honest(watch, connection, request)
            return
        done = True
        for value in batches:
            watch.records(connection, value)
        if result is not None:
            watch.respond(connection, REPORT, result, len(RECORDS) if last is None else last)

    return script


def good(first: int, last: int) -> bytes:
    return batch([r for r in RECORDS if first <= r.seq <= last])


def backed_off(outcome: Outcome, agent: AgentUnderTest, *words: str) -> None:
    """The session failed, and the state's detail and ``status`` say why."""
    state, detail = outcome.last
    assert state is SyncState.BACKOFF, outcome.states
    assert all(word in detail for word in words), detail
    assert agent.problem(WATCH) == detail


MALFORMED = {
    "reserved metric tag": good(1, 10) + good(11, 20)[:8] + bytes([0x3F, 0, 0, 0, 1, 0]),
    "reserved entry tag": good(1, 10)[:8] + bytes([0xC0]) + good(1, 10)[9:],
    "truncated entry": good(1, 10)[:-2],
    "header only": good(1, 10)[:8],
    "first entry skips": good(1, 10)[:9] + b"\x01" + good(1, 10)[10:],
    "wide record that fits the compact form": good(1, 10)[:8]
    + struct.pack("<BBIi", 0x40 | 1, 0, RECORDS[0].ts, RECORDS[0].raw),
    "seq past u32": struct.pack("<II", 0xFFFFFFFF, 0) + bytes([0x80, 0]) + struct.pack("<I", 9),
}


@pytest.mark.parametrize("fault", sorted(MALFORMED))
async def test_malformed_batches_store_nothing_of_their_group(
    pair: tuple[Hostile, AgentUnderTest], fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    watch, agent = pair
    caplog.set_level(logging.INFO, "phoneagent")
    outcome = await run(watch, agent, on_report(good(1, 10), MALFORMED[fault], good(11, 40)))
    backed_off(outcome, agent, "History Records")
    assert watch.acknowledged() == []
    assert "backing off" in caplog.text
    await recovers(watch, agent)


async def test_batches_out_of_order_are_stored_in_order(
    pair: tuple[Hostile, AgentUnderTest],
) -> None:
    watch, agent = pair
    outcome = await run(watch, agent, on_report(good(21, 40), good(1, 10), good(11, 20)))
    assert outcome.last[0] is SyncState.LIVE
    assert agent.stored(WATCH) == VALID and watch.acknowledged() == [40]


async def test_duplicated_batches_are_stored_once(pair: tuple[Hostile, AgentUnderTest]) -> None:
    watch, agent = pair
    script = on_report(good(1, 20), good(1, 20), good(11, 30), good(21, 40), good(21, 40))
    outcome = await run(watch, agent, script)
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == VALID and watch.acknowledged() == [40]


async def test_a_gap_reaching_back_into_stored_seqs_adds_only_its_new_part(
    pair: tuple[Hostile, AgentUnderTest],
) -> None:
    """Records 1..20, then "15..40 dropped": 15..20 stay the records they are."""
    watch, agent = pair
    outcome = await run(watch, agent, on_report(good(1, 20), gap_batch(15, 40)))
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == {seq: VALID[seq] for seq in range(1, 21)}
    dropped = [(g.first_seq, g.last_seq) for g in agent.store.gaps(WATCH) if g.last_seq > 0]
    assert dropped == [(21, 40)] and watch.acknowledged() == [40]


async def test_a_seq_regression_after_a_commit_changes_nothing_stored(
    pair: tuple[Hostile, AgentUnderTest],
) -> None:
    """Once 1..40 are stored, the watch answers REPORT from 41 with 1..40 again, with
    other values, and claims success up to 40: nothing is overwritten, nothing new
    acknowledged, and the agent does not loop on it."""
    watch, agent = pair
    await recovers(watch, agent)
    watch.newest = 80
    rewritten = batch([Record(r.seq, r.ts, r.raw + 1) for r in RECORDS])
    outcome = await run(watch, agent, on_report(rewritten, last=40))
    backed_off(outcome, agent, "REPORT from 41")
    assert agent.stored(WATCH) == VALID and agent.accounted(WATCH) == 41
    assert watch.acknowledged() == [40]


async def test_a_report_claiming_seqs_beyond_the_newest_is_refused(
    pair: tuple[Hostile, AgentUnderTest],
) -> None:
    """Status says 40 exist; the REPORT's response claims everything up to 2**32-1 was
    accounted for. Believed, the sync position would jump past every seq the watch will ever
    assign (all later records ignored); the records it did send are kept."""
    watch, agent = pair
    outcome = await run(watch, agent, on_report(good(1, 40), last=0xFFFFFFFF))
    backed_off(outcome, agent, "4294967295", "newest")
    assert agent.stored(WATCH) == VALID and agent.accounted(WATCH) == 41
    (device,) = (await agent.status())["devices"]
    assert "REPORT claims seqs up to 4294967295" in device["problem"]
    await recovers(watch, agent)


async def test_an_absurd_status_is_refused(pair: tuple[Hostile, AgentUnderTest]) -> None:
    """More records than seqs between oldest and newest."""
    watch, agent = pair
    watch.status_value = status(10, 5, 4000)
    outcome = await run(watch, agent, serve(RECORDS))
    backed_off(outcome, agent, "History Status")
    assert agent.stored(WATCH) == {} and watch.writes_to(uuids.USER_PROFILE) == []
    watch.status_value = None
    await recovers(watch, agent)


async def test_notifications_on_handles_nobody_subscribed_to_are_ignored(
    pair: tuple[Hostile, AgentUnderTest], tmp_path: Path
) -> None:
    """Ignored, and not one log line each: the agent's log would grow as fast as the
    peer sends (Bumble warns per PDU)."""
    watch, agent = pair
    flood = 300

    async def script(hostile: Hostile, connection: Connection, request: bytes) -> None:
        if request[0] == REPORT:
            for handle in (hostile.handle(uuids.MANUFACTURER_NAME), 0x0001, 0xFFF0):
                hostile.notify(connection, handle, good(1, 40))
            for _ in range(flood):
                hostile.notify(connection, 0xFFF1, b"\x00")
            hostile.indicate(connection, hostile.handle(uuids.HISTORY_RECORDS), good(1, 40))
            hostile.notify(connection, hostile.handle(uuids.HISTORY_STATUS), b"\xff" * 3)
        await serve(RECORDS)(hostile, connection, request)

    root = logging.getLogger()
    handler = setup_logging(tmp_path / "logs", logging.WARNING, logger=root)
    try:
        outcome = await run(watch, agent, script)
    finally:
        root.removeHandler(handler)
        handler.close()
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == VALID
    (log,) = logs_dir(tmp_path / "logs").iterdir()
    lines = [line for line in log.read_text().splitlines() if "no subscriber" in line]
    assert RepeatFilter.KEEP <= len(lines) <= 2 * RepeatFilter.KEEP, len(lines)  # not 300
    assert any("(occurrence 100; others not logged)" in line for line in lines)


async def test_indications_out_of_turn_and_unsolicited_responses_are_ignored(
    pair: tuple[Hostile, AgentUnderTest],
) -> None:
    """Responses to requests never made (absurd values), indicated back to back without
    waiting for the agent's confirmation, then the REPORT's own response twice."""
    watch, agent = pair

    async def script(hostile: Hostile, connection: Connection, request: bytes) -> None:
        if request[0] == REPORT:
            for opcode in (DELETE_UP_TO, COUNT, ABORT, REPORT_LIVE):
                hostile.respond(connection, opcode, SUCCESS, 0xFFFFFFFF)
        await serve(RECORDS)(hostile, connection, request)
        if request[0] == REPORT:
            hostile.respond(connection, REPORT, SUCCESS, len(RECORDS))

    outcome = await run(watch, agent, script)
    assert outcome.last[0] is SyncState.LIVE, outcome.states
    assert agent.stored(WATCH) == VALID and watch.acknowledged() == [len(RECORDS)]


async def test_a_response_that_never_comes_times_out(pair: tuple[Hostile, AgentUnderTest]) -> None:
    watch, agent = pair
    outcome = await run(watch, agent, on_report(good(1, 20), result=None), idle_timeout=0.5)
    assert outcome.last[0] is SyncState.BACKOFF
    assert watch.acknowledged() == []
    await recovers(watch, agent)
