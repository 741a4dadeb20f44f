"""The agent's back-off (``phoneagent.backoff``): its waits seen through an injected sleep,
so nothing here sleeps."""

from __future__ import annotations

import asyncio
import random

import pytest

from phoneagent.backoff import Backoff, wait_unless


class Waits:
    """An injected sleep: records each wait and the stop event it was given, at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.stops: list[asyncio.Event | None] = []

    async def __call__(self, seconds: float, stop: asyncio.Event | None) -> None:
        self.seconds.append(seconds)
        self.stops.append(stop)


class Flaky:
    """An attempt that fails ``failures`` times with ``error``, then returns."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.left = failures
        self.error = error
        self.told: list[tuple[str, float]] = []

    async def __call__(self) -> None:
        if self.left:
            self.left -= 1
            raise self.error(f"{self.left} failures to go")

    async def on_retry(self, error: BaseException, delay: float) -> None:
        self.told.append((str(error), delay))


def retried(error: BaseException) -> bool:
    return isinstance(error, ConnectionError)


async def attempts(backoff: Backoff, flaky: Flaky, stop: asyncio.Event | None = None) -> None:
    async for attempt in backoff.retrying(retried, flaky.on_retry, stop):
        with attempt:
            await flaky()


async def test_waits_double_up_to_the_maximum_with_jitter_below_each_ceiling() -> None:
    waits = Waits()
    flaky = Flaky(6)
    await attempts(Backoff(1.0, 8.0, rng=random.Random(1), sleep=waits), flaky)
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(waits.seconds) == len(ceilings)
    for wait, ceiling in zip(waits.seconds, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    # The hook is told each error and the wait that follows it, before the wait.
    assert flaky.told == [(f"{5 - n} failures to go", w) for n, w in enumerate(waits.seconds)]


async def test_a_seeded_generator_gives_the_same_waits() -> None:
    runs = [Waits(), Waits()]
    for waits in runs:
        await attempts(Backoff(0.5, 30.0, rng=random.Random(7), sleep=waits), Flaky(5))
    assert runs[0].seconds == runs[1].seconds


async def test_progress_makes_the_next_failure_a_first_one() -> None:
    waits = Waits()
    backoff = Backoff(1.0, 60.0, rng=random.Random(3), sleep=waits)
    failures = 0

    async def session() -> None:
        """Fails three times, then gets through (a backfill) and fails twice more."""
        nonlocal failures
        failures += 1
        if failures == 4:
            backoff.reset()
        if failures <= 5:
            raise ConnectionError("link lost")

    async for attempt in backoff.retrying(retried, Flaky(0).on_retry):
        with attempt:
            await session()
    ceilings = [1.0, 2.0, 4.0, 1.0, 2.0]
    for wait, ceiling in zip(waits.seconds, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_an_error_not_retried_ends_the_loop_as_itself() -> None:
    waits = Waits()
    with pytest.raises(PermissionError, match="failures to go"):
        await attempts(Backoff(sleep=waits), Flaky(1, PermissionError))
    assert waits.seconds == []


async def test_the_stop_event_reaches_the_wait_and_cuts_a_real_one_short() -> None:
    waits = Waits()
    stop = asyncio.Event()
    await attempts(Backoff(sleep=waits), Flaky(2), stop)
    assert waits.stops == [stop, stop]
    stop.set()
    async with asyncio.timeout(60):
        await wait_unless(3600.0, stop)  # returns at once: the event is set
