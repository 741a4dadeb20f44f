"""History sync over loopback: what REPORT streams is exactly what the watch holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bumble.device import Peer as BumblePeer
from bumble.link import LocalLink

from protocol import uuids
from protocol.history import (
    Entry,
    Gap,
    HistoryOpcode,
    HistoryRequest,
    HistoryResponse,
    HistoryResult,
    HistoryStatus,
    decode_batch,
)
from protocol.metrics import Metric, Sample
from tests.integration.test_peripheral_bumble import CENTRAL_ADDRESS, WAIT, Central, PasskeyEntry
from tests.integration.test_watch_app import Inbox, paired_phone, read, subscribe, write
from watchsim.testing import start_loopback_watch


class HistoryClient:
    """The agent's side of the control point, reduced to what the tests need."""

    def __init__(self, peer: BumblePeer, records: Inbox, responses: Inbox) -> None:
        self.peer, self.records, self.responses = peer, records, responses

    @classmethod
    async def open(cls, peer: BumblePeer) -> HistoryClient:
        records = await subscribe(peer, uuids.HISTORY_RECORDS)
        responses = await subscribe(peer, uuids.HISTORY_CONTROL_POINT)
        return cls(peer, records, responses)

    async def request(self, opcode: HistoryOpcode, seq: int = 0) -> None:
        await write(self.peer, uuids.HISTORY_CONTROL_POINT, HistoryRequest(opcode, seq).encode())

    async def response(self) -> HistoryResponse:
        return HistoryResponse.decode(await self.responses.get("control point response"))

    async def report(self, from_seq: int) -> tuple[list[Entry], HistoryResponse]:
        await self.request(HistoryOpcode.REPORT, from_seq)
        response = await self.response()
        # Notifications and the indication share one bearer, so every batch came first.
        entries: list[Entry] = []
        while not self.records.values.empty():
            entries.extend(decode_batch(self.records.values.get_nowait()).entries)
        return entries, response


def samples_of(entries: list[Entry]) -> list[Sample]:
    return [e for e in entries if isinstance(e, Sample)]


async def test_report_streams_exactly_the_held_records_and_they_survive_a_restart(
    link: LocalLink, tmp_path: Path
) -> None:
    state_dir = tmp_path / "watch"
    # Worn throughout: the default day charges off the wrist at 19:30.
    watch = await start_loopback_watch(
        link, state_dir, backfill=timedelta(hours=2), scenario="workout"
    )
    try:
        central_passkey = watch.passkeys
        central = Central(link, CENTRAL_ADDRESS, PasskeyEntry(lambda: _next(central_passkey)))
        peer = await central.connect(watch.address)
        await asyncio.wait_for(peer.connection.pair(), WAIT)
        await asyncio.wait_for(peer.request_mtu(247), WAIT)
        client = await HistoryClient.open(peer)
        entries, response = await client.report(1)
        assert response.request is HistoryOpcode.REPORT
        assert response.result is HistoryResult.SUCCESS
        held = watch.history.read(1, response.value).samples
        assert len(held) > 7000  # two hours of 1 Hz heart rate, plus the rest
        assert samples_of(entries) == held
        assert {s.metric for s in held} == set(Metric)
    finally:
        await watch.stop()

    watch = await start_loopback_watch(link, state_dir)
    try:
        peer = await central.connect(watch.address)
        await asyncio.wait_for(peer.connection.encrypt(), WAIT)  # the bond survived too
        client = await HistoryClient.open(peer)
        again, response = await client.report(1)
        assert response.result is HistoryResult.SUCCESS
        assert samples_of(again)[: len(held)] == held
        assert watch.passkeys.empty()
    finally:
        await watch.stop()


async def _next(passkeys: asyncio.Queue[int]) -> int:
    return await asyncio.wait_for(passkeys.get(), WAIT)


async def test_dropped_records_are_reported_as_a_gap(link: LocalLink, tmp_path: Path) -> None:
    watch = await start_loopback_watch(
        link,
        tmp_path / "watch",
        backfill=timedelta(minutes=10),
        history_capacity=100,
        scenario="workout",  # worn throughout: the default day charges off the wrist at 19:30
    )
    try:
        client = await HistoryClient.open(await paired_phone(link, watch))
        entries, response = await client.report(1)
        assert response.result is HistoryResult.SUCCESS
        assert isinstance(entries[0], Gap)
        gap = entries[0]
        assert gap.first_seq == 1
        assert gap.last_seq > 500  # ten minutes of 1 Hz heart rate went over capacity
        # Every seq from 1 to the last one reported is accounted for: lost or delivered.
        seqs = [s.seq for s in samples_of(entries)]
        assert seqs == list(range(gap.last_seq + 1, response.value + 1))
    finally:
        await watch.stop()


async def test_count_delete_busy_and_abort(link: LocalLink, tmp_path: Path) -> None:
    watch = await start_loopback_watch(link, tmp_path / "watch", backfill=timedelta(hours=6))
    try:
        client = await HistoryClient.open(await paired_phone(link, watch))
        await client.request(HistoryOpcode.COUNT, 101)
        count = await client.response()
        assert count.result is HistoryResult.SUCCESS
        assert count.value == watch.history.count_from(101)

        await client.request(HistoryOpcode.DELETE_UP_TO, 100)
        deleted = await client.response()
        assert (deleted.result, deleted.value) == (HistoryResult.SUCCESS, 100)
        assert watch.history.oldest_seq == 101
        status = HistoryStatus.decode(await read(client.peer, uuids.HISTORY_STATUS))
        assert status.oldest_seq == 101

        await client.request(HistoryOpcode.DELETE_UP_TO, watch.history.next_seq + 5)
        assert (await client.response()).result is HistoryResult.INVALID_OPERAND

        # Six hours at MTU 23 is thousands of notifications: still running when asked again.
        await client.request(HistoryOpcode.REPORT, 101)
        await client.request(HistoryOpcode.REPORT, 101)
        assert (await client.response()).result is HistoryResult.BUSY
        await client.request(HistoryOpcode.ABORT)
        aborted = await client.response()
        assert (aborted.request, aborted.result) == (HistoryOpcode.REPORT, HistoryResult.ABORTED)
        done = await client.response()
        assert (done.request, done.result) == (HistoryOpcode.ABORT, HistoryResult.SUCCESS)
    finally:
        await watch.stop()


async def test_a_live_report_streams_each_new_record_until_another_report_or_abort(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(
        link, tmp_path / "watch", backfill=timedelta(minutes=5), speed=120.0, scenario="workout"
    )
    try:
        peer = await paired_phone(link, watch)
        client = await HistoryClient.open(peer)
        status = await subscribe(peer, uuids.HISTORY_STATUS)
        backlog = watch.history.next_seq - 1
        await client.request(HistoryOpcode.REPORT_LIVE, 1)
        # The backlog, then records measured since: one seq after the other, no response.
        seqs: list[int] = []

        def take(raw: bytes) -> None:
            seqs.extend(e.seq for e in decode_batch(raw).entries if isinstance(e, Sample))

        take(await client.records.get("the first live batch"))
        while not status.values.empty():  # announced before the live REPORT began
            status.values.get_nowait()
        while len(seqs) < backlog + 100:
            take(await client.records.get("live records"))
        assert seqs == list(range(1, len(seqs) + 1))
        assert client.responses.values.empty()
        assert status.values.empty()  # the records are the signal while it runs

        # A plain REPORT takes over: the live one ends first, saying what it sent.
        await client.request(HistoryOpcode.REPORT, watch.history.next_seq)
        ended = await client.response()
        assert (ended.request, ended.result) == (HistoryOpcode.REPORT_LIVE, HistoryResult.ABORTED)
        while not client.records.values.empty():
            take(client.records.values.get_nowait())
        assert ended.value == seqs[-1]
        assert (await client.response()).request is HistoryOpcode.REPORT
        # Not live any more: new records are announced again.
        assert HistoryStatus.decode(await status.get("history status")).newest_seq > seqs[-1]

        await client.request(HistoryOpcode.REPORT_LIVE, watch.history.next_seq)
        await client.records.get("a live record")
        await client.request(HistoryOpcode.ABORT)
        aborted = await client.response()
        assert (aborted.request, aborted.result) == (
            HistoryOpcode.REPORT_LIVE,
            HistoryResult.ABORTED,
        )
        assert (await client.response()).request is HistoryOpcode.ABORT
    finally:
        await watch.stop()


async def test_live_records_are_announced_and_a_disabled_metric_is_not_measured(
    link: LocalLink, tmp_path: Path
) -> None:
    watch = await start_loopback_watch(link, tmp_path / "watch", speed=120.0)
    try:
        peer = await paired_phone(link, watch)
        status = await subscribe(peer, uuids.HISTORY_STATUS)

        async def records_after(mark: int, at_least: int) -> list[Sample]:
            """Wait for "records available" until ``at_least`` records past ``mark``."""
            while True:
                newest = HistoryStatus.decode(await status.get("history status")).newest_seq
                if newest >= mark + at_least:
                    return watch.history.read(mark + 1, newest - mark).samples

        # SpO2 every second: it shows up among the live records...
        await write(
            peer, uuids.METRIC_SETTINGS, bytes.fromhex("01010100 02013c00 03010100 04013c00")
        )
        mark = watch.history.next_seq - 1
        assert Metric.SPO2 in {s.metric for s in await records_after(mark, 200)}
        # ...and once switched off, it is not measured at all.
        await write(
            peer, uuids.METRIC_SETTINGS, bytes.fromhex("01010100 02013c00 03000100 04013c00")
        )
        mark = watch.history.next_seq - 1
        later = await records_after(mark, 200)
        assert Metric.HEART_RATE in {s.metric for s in later}
        assert Metric.SPO2 not in {s.metric for s in later}
        assert not watch.app.model.settings(Metric.SPO2).enabled
    finally:
        await watch.stop()


async def test_factory_reset_wipes_history_and_bonds(link: LocalLink, tmp_path: Path) -> None:
    watch = await start_loopback_watch(
        link, tmp_path / "watch", backfill=timedelta(minutes=30), scenario="workout"
    )
    try:
        peer = await paired_phone(link, watch)
        before = HistoryStatus.decode(await read(peer, uuids.HISTORY_STATUS))
        assert before.record_count > 1800
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        peer.connection.once("disconnection", lambda _reason: gone.set_result(None))
        await write(peer, uuids.SETTINGS_CONTROL, b"\x02")
        await asyncio.wait_for(gone, WAIT)

        # The bond is gone: the phone has to pair again, with a new passkey.
        peer = await paired_phone(link, watch, "F3:22:33:44:55:66")
        after = HistoryStatus.decode(await read(peer, uuids.HISTORY_STATUS))
        # Nothing from before the reset is held; numbering went on (seqs are never reused).
        assert after.newest_seq >= before.newest_seq
        assert after.record_count == 0 or after.oldest_seq > before.newest_seq
        assert all(s.seq > before.newest_seq for s in watch.history.read(1, 10_000).samples)
        assert not (tmp_path / "watch" / "settings.json").exists()
    finally:
        await watch.stop()
