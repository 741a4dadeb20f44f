"""Suite-wide settings: deterministic property tests, no wall-clock deadlines, a hung
test's asyncio tasks printed before pytest-timeout ends the run, and the loopback air."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator

import pytest
from bumble.link import LocalLink
from hypothesis import settings

import harness.fleet
import watchsim.fleet
from heapkit import freeze_long_lived
from watchsim.peripheral.bumble_adapter import new_link

# Fixtures that live beside their helpers (a broker, a 3-node NATS cluster, a private
# D-Bus, a small disk, a PostgreSQL database):
# every test module can ask for them by name.
pytest_plugins = (
    "tests.mosquitto",
    "tests.natscluster",
    "tests.dbus_session",
    "tests.disk",
    "tests.postgres",
)

settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("deterministic")


@pytest.fixture
async def link() -> LocalLink:
    """A fresh air of the kind production runs on (``new_link``: the air process and the
    in-process watch use it), built inside the test's event loop because Bumble objects
    bind to the loop they start in."""
    return new_link()


@pytest.fixture(autouse=True, scope="session")
def _collector_set_for_the_session() -> None:
    """What the test process has imported by now lives as long as it does: out of the
    collector's sight, and young collections every 10,000 allocations, as a fleet process
    sets them (``heapkit.collector``). Every test starts from this schedule, whichever
    test ran before it; a fleet started in-process once changed it for the rest of the
    session."""
    freeze_long_lived()


@pytest.fixture(autouse=True)
def _heap_left_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fleet started inside the test process (the ctl tests' watches, the agent fleet's
    unit tests) leaves pytest's own heap alone: copying it onto huge pages takes a second
    on a thread that would outlive the test, and the collector's schedule is back after
    it (what it froze stays frozen: the test process's long-lived objects). Fleets in
    processes of their own (system tests, benchmarks) keep both, and
    ``tests/unit/test_heapkit*.py`` test them."""
    monkeypatch.setattr(watchsim.fleet, "back_in_background", threading.Thread)
    monkeypatch.setattr(harness.fleet, "back_in_background", threading.Thread)
    schedule = gc.get_threshold()
    yield
    gc.set_threshold(*schedule)


# Before pytest-timeout's own dump (thread stacks), which ends the run.
TASK_DUMP_BEFORE_TIMEOUT_S = 10.0


@pytest.fixture(autouse=True)
def _tasks_dumped_if_hung(request: pytest.FixtureRequest) -> Iterator[None]:
    """A hung test's event loop sits idle in ``select``: its thread stack cannot say which
    await never returned. Shortly before the timeout, every task's stack goes to stderr."""
    marker = request.node.get_closest_marker("timeout")
    timeout = float(marker.args[0] if marker else request.config.getini("timeout") or 0)
    if timeout <= TASK_DUMP_BEFORE_TIMEOUT_S:
        yield
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")
    timer = threading.Timer(
        timeout - TASK_DUMP_BEFORE_TIMEOUT_S, _dump_tasks_of_running_loops, (capture,)
    )
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


def _dump_tasks_of_running_loops(capture: object) -> None:
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_running():
            loop.call_soon_threadsafe(_print_tasks, capture)


def _await_chain(coroutine: object) -> Iterator[str]:
    """Where each coroutine of a task's await chain stands (``print_stack`` shows only
    the outermost on Python 3.11)."""
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        if frame is None:
            yield repr(coroutine)
            return
        yield f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "gi_yieldfrom", None)


def _print_tasks(capture: object) -> None:
    """In the loop's thread: the stacks of all its tasks, past pytest's output capture."""
    suspend = getattr(capture, "suspend_global_capture", None)
    if suspend is not None:
        suspend(in_=True)
    print("\n==== asyncio tasks of the hung test ====", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}: {task!r}", file=sys.stderr)
        for line in _await_chain(task.get_coro()):
            print(f"    {line}", file=sys.stderr)
    sys.stderr.flush()
