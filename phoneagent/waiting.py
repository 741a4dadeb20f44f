"""Waits the long-running parts (uploader, fleet agents, sync engine) share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def sleep_unless(event: asyncio.Event, seconds: float | None) -> None:
    """Sleep ``seconds`` (None: for ever), or less if ``event`` is set meanwhile.

    A task asked to stop whose request a library swallowed (Python 3.11's
    ``asyncio.wait_for``, which Bumble and aiomqtt use, returns a result that arrives
    with the cancellation and drops it) stops here instead of waiting for ever: its
    ``cancelling()`` still counts the request.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    if seconds is None:
        await event.wait()
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


async def first_of(*waits: Awaitable[Any]) -> None:
    """Return when the first of ``waits`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def done_or_set(
    future: asyncio.Future[Any], event: asyncio.Event, within: float | None = None
) -> None:
    """Until ``future`` is done, ``event`` is set or ``within`` seconds passed (None: no
    limit). Unlike ``first_of``, ``future`` is left running: a request's answer, waited
    for in rounds."""
    waiting: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({future, waiting}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
