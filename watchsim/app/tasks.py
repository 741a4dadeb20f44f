"""Stopping background tasks for sure.

In Python 3.11, ``asyncio.wait_for`` returns the inner result instead of raising
``CancelledError`` when the cancellation and the inner completion coincide, so a single
``Task.cancel()`` can be lost inside Bumble's flow-control and indication waits and the
task runs on (a loop then never ends). Cancelling again until the task is done is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Final

logger = logging.getLogger(__name__)

_RECANCEL_S: Final = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel ``tasks`` (repeatedly, if a cancellation is swallowed) until all are done."""
    wanted = {task for task in tasks if task is not None}
    pending = {task for task in wanted if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=_RECANCEL_S)
    for task in wanted:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("task %s failed: %r", task.get_name(), error)
