"""The receiver's one back-off, for the broker connection and the database connection
alike: exponential from 0.5 s up to 10 s, forever, telling the operator each time.

The agent's ``phoneagent.backoff`` is not the receiver's to import (the back end's side
reads the agent's wire format and nothing else), so this is tenacity directly.
"""

from __future__ import annotations

from collections.abc import Callable

import tenacity

RETRY_S = 0.5
RETRY_MAX_S = 10.0


def retrying(
    errors: type[BaseException] | tuple[type[BaseException], ...],
    what: str,
    say: Callable[[str], None],
) -> tenacity.AsyncRetrying:
    """Retry on ``errors``, saying ``"<what> (<error>); retrying in N s"`` before each wait."""

    def lost(retry: tenacity.RetryCallState) -> None:
        assert retry.outcome is not None and retry.next_action is not None
        error, delay = retry.outcome.exception(), retry.next_action.sleep
        say(f"{what} ({one_line(error)}); retrying in {delay:g} s")

    return tenacity.AsyncRetrying(
        wait=tenacity.wait_exponential(multiplier=RETRY_S, max=RETRY_MAX_S),
        retry=tenacity.retry_if_exception_type(errors),
        before_sleep=lost,
    )


def one_line(error: BaseException | None) -> str:
    """A library's message (libpq's run over several lines) as one line for the operator."""
    return " ".join(str(error).split())
