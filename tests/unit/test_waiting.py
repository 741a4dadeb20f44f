"""The waits the long-running parts share: a stop request that a library swallowed is
still honoured at the next wait (the one hang the whole suite met in a clean CI run:
a sync engine's task cancelled at teardown went on waiting for records for ever)."""

from __future__ import annotations

import asyncio

import pytest

from phoneagent.waiting import sleep_unless


async def test_a_cancellation_swallowed_by_wait_for_still_ends_the_next_wait() -> None:
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    got: list[int] = []
    never = asyncio.Event()

    async def engine() -> None:
        # On Python 3.11, wait_for returns the answer that arrives with the cancellation
        # and drops the cancellation (3.12 raises it): both must end in CancelledError.
        got.append(await asyncio.wait_for(answer, 10))
        await sleep_unless(never, None)

    task = asyncio.create_task(engine())
    await asyncio.sleep(0)  # the engine waits for the answer
    answer.set_result(7)
    task.cancel()  # in the same loop turn as the answer
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):  # the old wait: for ever
            await task
    assert task.cancelled()


async def test_a_wait_without_a_stop_request_sleeps_or_wakes() -> None:
    event = asyncio.Event()
    await sleep_unless(event, 0)  # the time passes
    event.set()
    await sleep_unless(event, None)  # the event is set
