"""The History Sync service: the durable watch -> agent path over the control point.

Requests are handled one at a time in arrival order by a worker, except that a REPORT
streams in its own task so that a COUNT or DELETE can be answered while it runs, and an
ABORT cancels it as soon as the write arrives.
Every response is an indication sent after the write was acknowledged.
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
    Entry,
    Gap,
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
        self._status_due = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._serve(), name="history-control-point"),
            asyncio.create_task(self._announce(), name="history-status"),
        ]
        self._unsubscribe = history.subscribe(lambda _first, _last: self._status_due.set())
        peripheral.set_read_handler(uuids.HISTORY_STATUS, lambda: status_value(self._history))
        peripheral.set_write_handler(uuids.HISTORY_CONTROL_POINT, self._on_write)

    @property
    def reporting(self) -> bool:
        return self._report is not None and not self._report.done()

    async def close(self) -> None:
        self._unsubscribe()
        await cancel_and_wait([*self._tasks, self._report])

    async def _on_write(self, peer: Peer, value: bytes) -> None:
        request = HistoryRequest.decode(value)  # a ProtocolError becomes an ATT error
        if request.opcode is HistoryOpcode.ABORT:
            # At once, not in turn: the worker may be waiting on an indication's confirmation.
            # A flag, not Task.cancel(): asyncio.wait_for in 3.11 can swallow a cancellation.
            self._abort = True
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
        if op is HistoryOpcode.REPORT:
            if self.reporting:
                await self._respond(HistoryResponse(op, HistoryResult.BUSY))
                return
            self._abort = False
            self._report = asyncio.create_task(self._run_report(request.seq, mtu), name="report")
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

    async def _run_report(self, from_seq: int, mtu: int) -> None:
        op = HistoryOpcode.REPORT
        try:
            last = await self._stream(from_seq, mtu)
        except Exception:
            logger.exception("history report from seq %d failed", from_seq)
            await self._respond(HistoryResponse(op, HistoryResult.FAILED))
            return
        if last is None:
            await self._respond(HistoryResponse(op, HistoryResult.ABORTED))
            return
        result = HistoryResult.SUCCESS if last else HistoryResult.NO_RECORDS
        await self._respond(HistoryResponse(op, result, last))

    async def _stream(self, from_seq: int, mtu: int) -> int | None:
        """Notify every gap and record from ``from_seq`` up to the newest at the start.

        Returns the highest seq accounted for (0 if none), None if aborted. Records
        dropped while the report runs show up as a gap, since each chunk is read afresh.
        """
        packer = BatchPacker(max(MIN_PAYLOAD, min(MAX_PAYLOAD, mtu - ATT_HEADER_SIZE)))
        history, stop, seq, last = self._history, self._history.next_seq, from_seq, 0
        while seq < stop:
            result = history.read(seq, min(READ_CHUNK, stop - seq))
            entries: list[Entry] = []
            if result.gap is not None:
                entries.append(Gap(result.gap.first, result.gap.last))
                last = result.gap.last
            entries.extend(result.samples)
            if result.samples:
                last = result.samples[-1].seq
            for entry in entries:
                batch = packer.add(entry)
                if batch is not None:
                    await self._peripheral.notify(uuids.HISTORY_RECORDS, batch)
                    if self._abort:
                        return None
            if result.next_seq <= seq:
                break
            seq = result.next_seq
            await asyncio.sleep(0)  # let ABORT and live traffic in between chunks
        batch = packer.flush()
        if batch is not None:
            await self._peripheral.notify(uuids.HISTORY_RECORDS, batch)
        return last

    async def _announce(self) -> None:
        """Coalesced "records available": one Status notification per burst of appends."""
        while True:
            await self._status_due.wait()
            self._status_due.clear()
            try:
                await self._peripheral.notify(uuids.HISTORY_STATUS, status_value(self._history))
            except Exception:
                logger.exception("history status notification failed")
