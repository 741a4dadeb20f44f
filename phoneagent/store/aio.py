"""The store for asyncio code: every call runs on one dedicated worker thread.

One thread (rather than ``asyncio.to_thread``'s pool) keeps the calls of several
syncing devices in arrival order and never blocks the event loop on a commit. An agent
fleet shares one small pool between its stores instead: each of its stores serves one
device whose engine awaits every call, so the order holds there too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from phoneagent.store.db import DeviceRecord, Gap, Store, StoreResult
from protocol.metrics import Sample

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """Awaitable versions of the calls the daemon makes while devices sync."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor | None = None) -> None:
        """``executor``: a pool shared with other stores (an agent fleet), kept open here."""
        self.store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="phoneagent-store"
        )

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def store_batch(
        self, device: str, samples: Sequence[Sample], gaps: Iterable[Gap] = ()
    ) -> StoreResult:
        return await self._run(self.store.store_batch, device, samples, tuple(gaps))

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
        if self._own_executor:
            self._executor.shutdown(wait=True)
