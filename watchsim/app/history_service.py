"""The History Sync service: the durable watch -> agent path over the control point.

Requests are handled one at a time in arrival order by a worker, except that a REPORT
streams in its own task so that a COUNT or DELETE can be answered while it runs, and an
ABORT cancels it as soon as the write arrives.
Every response is an indication sent after the write was acknowledged.

A live REPORT (REPORT_LIVE) does not end at the newest record: it sends each new one as
it lands, so a connected agent gets one notification per burst of samples instead of a
Status notification, a REPORT write, its records and a response. Status is not notified
while one runs (the records are the signal). Another REPORT ends it, so an agent that
reconnects (over BlueZ the watch sees no disconnection) is never refused as BUSY.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from protocol import uuids
from protocol.history import (
    MAX_PAYLOAD,
    MIN_PAYLOAD,
    BatchPacker,
    HistoryOpcode,
    HistoryRequest,
    HistoryResponse,
    HistoryResult,
    HistoryStatus,
)
from watchsim.app.tasks import cancel_and_wait
from watchsim.history import History
from watchsim.peripheral.port import ATT_HEADER_SIZE, Peer, Peripheral

logger = logging.getLogger(__name__)

READ_CHUNK: Final = 4096


def status_value(history: History) -> bytes:
    count = history.count
    oldest = history.oldest_seq if history.oldest_seq is not None else history.next_seq
    return HistoryStatus(history.next_seq - 1, oldest if count else 0, count).encode()


class HistoryService:
    """Serves one history over one peripheral; ``close`` before either goes away."""

    def __init__(self, peripheral: Peripheral, history: History) -> None:
        self._peripheral = peripheral
        self._history = history
        self._requests: asyncio.Queue[tuple[HistoryRequest, int]] = asyncio.Queue()
        self._report: asyncio.Task[None] | None = None
        self._abort = False
        self._live = False  # the running REPORT is a live one
        self._appended = asyncio.Event()  # new records, or an ABORT for a live REPORT
        self._status_due = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._serve(), name="history-control-point"),
            asyncio.create_task(self._announce(), name="history-status"),
        ]
        self._unsubscribe = history.subscribe(lambda _first, _last: self._on_appended())
        peripheral.set_read_handler(uuids.HISTORY_STATUS, lambda: status_value(self._history))
        peripheral.set_write_handler(uuids.HISTORY_CONTROL_POINT, self._on_write)

    @property
    def reporting(self) -> bool:
        return self._report is not None and not self._report.done()

    @property
    def _following(self) -> bool:
        """A live REPORT runs: its records are the "records available" signal."""
        return self._live and self.reporting

    async def close(self) -> None:
        self._unsubscribe()
        await cancel_and_wait([*self._tasks, self._report])

    def _on_appended(self) -> None:
        self._appended.set()
        if not self._following:
            self._status_due.set()

    def _stop_report(self) -> None:
        # A flag, not Task.cancel(): asyncio.wait_for in 3.11 can swallow a cancellation.
        self._abort = True
        self._appended.set()  # a live REPORT waiting for records wakes up to it

    async def _on_write(self, peer: Peer, value: bytes) -> None:
        request = HistoryRequest.decode(value)  # a ProtocolError becomes an ATT error
        if request.opcode is HistoryOpcode.ABORT:
            # At once, not in turn: the worker may be waiting on an indication's confirmation.
            self._stop_report()
        mtu = min([peer.mtu, *(p.mtu for p in self._peripheral.peers)])
        self._requests.put_nowait((request, mtu))

    async def _respond(self, response: HistoryResponse) -> None:
        await self._peripheral.indicate(uuids.HISTORY_CONTROL_POINT, response.encode())

    async def _serve(self) -> None:
        while True:
            request, mtu = await self._requests.get()
            try:
                await self._handle(request, mtu)
            except Exception:
                logger.exception("history request %s failed", request)

    async def _handle(self, request: HistoryRequest, mtu: int) -> None:
        op, history = request.opcode, self._history
        if op in (HistoryOpcode.REPORT, HistoryOpcode.REPORT_LIVE):
            if self._report is not None and self.reporting:
                if not self._live:
                    await self._respond(HistoryResponse(op, HistoryResult.BUSY))
                    return
                self._stop_report()  # its ABORTED response goes first
                await self._report
            self._abort = False
            self._live = op is HistoryOpcode.REPORT_LIVE
            self._report = asyncio.create_task(
                self._run_report(op, request.seq, mtu), name="report"
            )
        elif op is HistoryOpcode.COUNT:
            count = history.count_from(request.seq)
            result = HistoryResult.SUCCESS if count else HistoryResult.NO_RECORDS
            await self._respond(HistoryResponse(op, result, count))
        elif op is HistoryOpcode.ABORT:
            if self._report is not None:  # its ABORTED response goes first
                await self._report
            await self._respond(HistoryResponse(op, HistoryResult.SUCCESS))
        else:  # DELETE_UP_TO
            if request.seq >= history.next_seq:
                await self._respond(HistoryResponse(op, HistoryResult.INVALID_OPERAND))
                return
            freed = history.delete_up_to(request.seq)
            result = HistoryResult.SUCCESS if freed else HistoryResult.NO_RECORDS
            await self._respond(HistoryResponse(op, result, freed))

    async def _run_report(self, op: HistoryOpcode, from_seq: int, mtu: int) -> None:
        try:
            last, complete = await self._stream(from_seq, mtu)
        except Exception:
            logger.exception("history report from seq %d failed", from_seq)
            await self._respond(HistoryResponse(op, HistoryResult.FAILED))
            return
        if not complete:
            await self._respond(HistoryResponse(op, HistoryResult.ABORTED, last))
            return
        result = HistoryResult.SUCCESS if last else HistoryResult.NO_RECORDS
        await self._respond(HistoryResponse(op, result, last))

    async def _stream(self, from_seq: int, mtu: int) -> tuple[int, bool]:
        """Notify every gap and record from ``from_seq`` up to the newest at the start.

        A live REPORT then waits for new records and goes on. Returns the highest seq
        sent (0 if none) and whether the REPORT ran to its end (False: aborted; whatever
        was packed is sent first, so the value is exact). Records dropped while it runs
        show up as a gap, since each chunk is read afresh.
        """
        packer = BatchPacker(max(MIN_PAYLOAD, min(MAX_PAYLOAD, mtu - ATT_HEADER_SIZE)))
        history, seq, last = self._history, from_seq, 0
        while True:
            self._appended.clear()
            seq, last = await self._send_up_to(packer, seq, last, history.next_seq)
            batch = packer.flush()
            if batch is not None:
                await self._peripheral.notify(uuids.HISTORY_RECORDS, batch)
            if self._abort:
                return last, False
            if not self._live:
                return last, True
            await self._appended.wait()
            if self._abort:
                return last, False

    async def _send_up_to(
        self, packer: BatchPacker, seq: int, last: int, stop: int
    ) -> tuple[int, int]:
        """Read and notify seqs ``seq``..``stop - 1``; returns the next seq and the last sent.

        Stops early on ABORT, with the entries packed so far left in ``packer``.
        """
        history = self._history
        while seq < stop:
            result = history.read(seq, min(READ_CHUNK, stop - seq))
            if result.gap is not None:
                last = result.gap.last_seq
                if not await self._send(packer.add(result.gap)):
                    return seq, last
            index, seqs = 0, result.columns.seqs
            while index < len(seqs):
                # A whole batch's samples per call, packed in bulk (protocol.history).
                batch, index = packer.add_columns(result.columns, index)
                last = seqs[index - 1]
                if not await self._send(batch):
                    return seq, last
            if result.next_seq <= seq:
                break
            seq = result.next_seq
            if seq < stop:  # not after the last: a live second is one chunk
                await asyncio.sleep(0)  # let ABORT and live traffic in between chunks
        return seq, last

    async def _send(self, batch: bytes | None) -> bool:
        """Notify a finished batch, if any; False when an ABORT arrived meanwhile."""
        if batch is not None:
            await self._peripheral.notify(uuids.HISTORY_RECORDS, batch)
        return batch is None or not self._abort

    async def _announce(self) -> None:
        """Coalesced "records available": one Status notification per burst of appends."""
        while True:
            await self._status_due.wait()
            self._status_due.clear()
            if self._following:  # a live REPORT began since it was due
                continue
            try:
                await self._peripheral.notify(uuids.HISTORY_STATUS, status_value(self._history))
            except Exception:
                logger.exception("history status notification failed")
