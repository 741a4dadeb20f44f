"""Pausing Python's cyclic garbage collector around bursts of allocation that leave no
cycles behind (benchmarks/RESULTS.md, "Backfill, third round")."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collections inside the block, and after it the collector as it was
    before, whose first collection takes whatever cyclic garbage the block left. Each
    collection walks every young object, and objects that stay referenced (loaded
    modules, a backfill's Samples waiting for their commit) are walked again and again
    for nothing: reference counting frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
