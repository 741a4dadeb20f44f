"""What the system tests share: a ``watchsim air`` process to join."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.processes import kill, start_air, stop_air


@pytest.fixture
async def air() -> AsyncIterator[str]:
    """The air's transport spec; the air is stopped cleanly, or killed if that fails."""
    process, where = await start_air()
    try:
        yield f"tcp-client:{where}"
        await stop_air(process)
    finally:
        await kill(process)
