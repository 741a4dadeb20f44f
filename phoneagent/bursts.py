"""Interpreter settings for a burst of work: the cyclic garbage collector paused around
allocations that leave no cycles behind, and the GIL handed between threads sooner while
two of them take turns (benchmarks/RESULTS.md, "Backfill, third round" and "Backfill,
fourth round")."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

# The GIL's switch interval while the event loop decodes and the store thread commits:
# a tenth of CPython's 5 ms.
QUICK_SWITCH_S = 0.0005


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


@contextlib.contextmanager
def quick_handoffs() -> Iterator[None]:
    """A thread waiting for the GIL gets it after ``QUICK_SWITCH_S`` instead of 5 ms.

    In a backfill the store thread, back from a GIL-free SQLite step, waited for the event
    loop to finish decoding the next group (3-4 ms of Python) before it could start the
    next statement: up to the whole switch interval at every one of its steps. The
    interval is the process's: one burst at a time (``phoneagent sync`` has one).
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, QUICK_SWITCH_S))
    try:
        yield
    finally:
        sys.setswitchinterval(before)
