"""The store for asyncio code: blocking calls run where a ``StoreRunner`` puts them.

The daemon's store has one worker thread of its own (a ``StorePool``): it keeps the calls
of several syncing devices in arrival order and never blocks the event loop, and so the
radio, on a commit. An agent fleet's worker runs its agents' calls on the event loop
itself (``OnLoop``): each of its stores serves one device whose engine awaits every call,
so the order holds there too.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar

from phoneagent.store.db import DeviceRecord, MissingSeqs, Store, StoreResult, sample_rows
from protocol.metrics import Sample

P = ParamSpec("P")
T = TypeVar("T")
_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]


class StoreRunner(Protocol):
    """Where an ``AsyncStore``'s calls, and an uploader's (its ``blocking``), run."""

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


class OnLoop:
    """Each call made at once on the event loop, which waits for it, fsync included.

    For a process whose event loop only drives stores and their radios (an agent fleet's
    worker, hundreds of agents): there the hand-over of a call to a thread and back (a
    futex wake, the GIL both ways, a loop wake-up for the result) cost more CPU than the
    call itself (docs/scaling.md, step 15). Not for the daemon, whose radio would wait.
    """

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)


class StorePool:
    """Worker threads for blocking calls, cheaper per call than ``run_in_executor``.

    An agent fleet makes a few of these calls per agent per second, and the executor's
    machinery per call (a concurrent future with its condition variable, chained to an
    asyncio future, a loop wake-up each) was a fifth of the fleet's event-loop time. Here
    a call is a queue entry and an asyncio future, and results come back to the loop in
    batches: one wake-up for all the calls that finished meanwhile.
    """

    def __init__(self, threads: int, name: str) -> None:
        self._size = threads
        self._name = name
        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._done: list[_Done] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a worker thread; it runs to the end even if cancelled."""
        loop = asyncio.get_running_loop()
        if not self._threads:
            self._loop = loop
            for index in range(self._size):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        elif loop is not self._loop:
            raise RuntimeError("a StorePool serves the event loop it started on")
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((future, functools.partial(fn, *args, **kwargs)))
        return await future

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            future, work = call
            try:
                done: _Done = (future, work(), None)
            except BaseException as error:  # handed to the awaiting task, as an executor does
                done = (future, None, error)
            with self._lock:
                self._done.append(done)
                first = len(self._done) == 1
            if first:
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:
                    return  # the loop is closed: nobody is waiting any more

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, result, error in done:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def shutdown(self) -> None:
        """Let the threads finish what is queued and end (blocks until they have)."""
        for _ in self._threads:
            self._calls.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()


class AsyncStore:
    """Awaitable versions of the calls the daemon makes while devices sync."""

    def __init__(self, store: Store, pool: StoreRunner | None = None) -> None:
        """``pool``: shared with other stores (an agent fleet), kept open here."""
        self.store = store
        # A pool of its own (the daemon's one store thread) ends with the store.
        self._own_pool: StorePool | None = None
        if pool is None:
            pool = self._own_pool = StorePool(1, "phoneagent-store")
        self.pool: StoreRunner = pool

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.pool.run(fn, *args, **kwargs)

    async def store_batch(
        self,
        device: str,
        samples: Sequence[Sample],
        gaps: Iterable[MissingSeqs] = (),
        *,
        durable: bool = True,
    ) -> StoreResult:
        rows = sample_rows(samples)  # here: the store thread's time is SQLite's alone
        return await self._run(self.store.store_batch, device, rows, tuple(gaps), durable=durable)

    async def make_durable(self) -> None:
        await self._run(self.store.make_durable)

    async def store_minutes(self, device: str, samples: Sequence[Sample]) -> StoreResult:
        return await self._run(self.store.store_minutes, device, sample_rows(samples))

    async def next_seq(self, device: str) -> int:
        return await self._run(self.store.next_seq, device)

    async def get_device(self, address: str) -> DeviceRecord | None:
        return await self._run(self.store.get_device, address)

    async def get_bond(self, address: str) -> bytes | None:
        return await self._run(self.store.get_bond, address)

    async def put_bond(self, address: str, blob: bytes) -> None:
        await self._run(self.store.put_bond, address, blob)

    async def delete_bond(self, address: str) -> None:
        await self._run(self.store.delete_bond, address)

    async def list_bonds(self) -> list[str]:
        return await self._run(self.store.list_bonds)

    async def aclose(self) -> None:
        """Finish queued calls, then close the database."""
        await self._run(self.store.close)
        if self._own_pool is not None:
            self._own_pool.shutdown()
