"""The agent's one back-off, for every loop that retries: a watch's sync sessions, a lost
radio reopened, the uploader's broker connection (and the agent fleet's radios).

Built on tenacity: ``retrying`` is the loop (``async for attempt in ...``), the policy
its waits. The n-th failure in a row waits a time uniform in [d/2, d], d = min(maximum,
initial * 2**(n-1)): exponential so that a watch or broker that is away is not
hammered, jittered so that many agents do not retry in step. The jitter is drawn from
``rng`` (seeded: the same waits every run), and every wait goes through ``sleep``, which
a test replaces to see the waits instead of sleeping through them.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Awaitable, Callable

import tenacity

from phoneagent.waiting import sleep_unless

# Waits ``seconds``, or less once the event (when there is one) is set.
Sleep = Callable[[float, asyncio.Event | None], Awaitable[None]]
# Told the error that ended an attempt and how long the loop now waits.
OnRetry = Callable[[BaseException, float], Awaitable[None]]


async def wait_unless(seconds: float, stop: asyncio.Event | None) -> None:
    """The real wait: ``seconds``, cut short when ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
    else:
        await sleep_unless(stop, seconds)


class Backoff(tenacity.wait_exponential):
    """Jittered exponential waits between attempts; ``reset`` when one makes progress."""

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 60.0,
        *,
        rng: random.Random | None = None,
        sleep: Sleep = wait_unless,
    ) -> None:
        super().__init__(multiplier=initial, max=maximum)
        self.sleep = sleep
        self._rng = rng or random.Random()
        self._failed = 0  # attempts the loop saw fail
        self._before_reset = 0  # of those, the ones before the last ``reset``

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """The wait after a failed attempt (tenacity asks)."""
        self._failed = retry_state.attempt_number
        in_a_row = copy.copy(retry_state)
        in_a_row.attempt_number -= self._before_reset
        ceiling = super().__call__(in_a_row)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """The attempt under way got far enough to count as a success (a sync session
        through its backfill): if it fails later, it waits as a first failure does."""
        self._before_reset = self._failed

    def retrying(
        self,
        retry_on: Callable[[BaseException], bool],
        on_retry: OnRetry,
        stop: asyncio.Event | None = None,
    ) -> tenacity.AsyncRetrying:
        """Attempts until one returns; an error ``retry_on`` refuses ends the loop as
        itself. With ``stop``, a wait ends early once it is set (the attempt after it
        should then return at once)."""

        async def told(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None and state.next_action is not None
            error = state.outcome.exception()
            assert error is not None  # only a failed attempt is retried
            await on_retry(error, state.next_action.sleep)

        async def sleep(seconds: float) -> None:
            await self.sleep(seconds, stop)

        return tenacity.AsyncRetrying(
            wait=self,
            retry=tenacity.retry_if_exception(retry_on),
            before_sleep=told,
            sleep=sleep,
        )
