"""One data dir, one agent: the commands that work on the store's sync state and the radio
(``run``, ``sync``, ``pair``, ``store rescue``) hold the data dir for as long as they run.

Two of them at once would fight: two radios with the agent's one identity on air, two
engines acknowledging the same watch's records, a pairing writing the bonds another
process reads, a rescue replacing the file another writes to. Each therefore holds an
exclusive ``flock`` on ``<data dir>/agent.lock``, in which it writes its pid and command;
the kernel drops the lock when the process ends however it ends (``kill -9`` too), so it
is never stale. A second one is told at once who holds it (``DataDirBusyError``, exit 7).

``sync`` while ``run`` holds the data dir asks the running agent over its socket to sync
now (``sync_through_running_agent``; the agent answers through ``sync_handler``) instead,
and ``pair`` asks it to pair (``services.pairing.pair_through_running_agent``).
Commands that only read the store (``status``, ``data``, ``export``) or change it in one
transaction and tell the running agent (``consent``, ``permissions``, ``unpair``) take no
lock: SQLite (WAL) lets them beside a writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final

from phoneagent import control
from phoneagent.daemon import Daemon, SyncNowError
from phoneagent.errors import EXIT_PAIRING_LOST, AgentError, DataDirBusyError, UnreachableError
from phoneagent.store.db import private_dir
from phoneagent.sync import SyncState
from protocol.address import Address, AddressError

LOCK_NAME: Final = "agent.lock"
# How long a refused process waits for the holder to write its name: the moment between
# the holder's lock and its write, which a loaded machine can stretch.
NAMING_WAIT_S: Final = 0.5
SYNC_OP: Final = "sync"


@dataclass(frozen=True)
class Holder:
    """The process holding a data dir, as it wrote itself into the lock file."""

    pid: int
    command: str
    since: str  # ISO 8601, UTC

    def __str__(self) -> str:
        return f"pid {self.pid} (`{self.command}`, since {self.since})"


def _read(fd: int) -> Holder | None:
    """The holder's own words; None in the moment between its lock and its write, or when
    the disk was too full to write them."""
    try:
        fields = json.loads(os.pread(fd, 4096, 0))
        return Holder(int(fields["pid"]), str(fields["command"]), str(fields["since"]))
    except (ValueError, KeyError, TypeError):
        return None


def _holder(fd: int) -> Holder | None:
    """``_read``, again for up to ``NAMING_WAIT_S`` while the holder has not named itself
    (a holder on a full disk never does: it is refused unnamed after the wait)."""
    deadline = time.monotonic() + NAMING_WAIT_S
    while (holder := _read(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return holder


class HeldError(DataDirBusyError):
    """``data_dir`` is held by ``holder`` (None: a process that has not written itself yet)."""

    def __init__(self, data_dir: Path, holder: Holder | None, what: str) -> None:
        by = str(holder) if holder is not None else "another phoneagent process"
        super().__init__(f"{data_dir} is in use by {by}: one data dir, one agent; {what}")
        self.data_dir = data_dir
        self.holder = holder


@contextlib.contextmanager
def holding(data_dir: Path, command: str) -> Iterator[None]:
    """Hold ``data_dir`` for this process while the block runs; ``DataDirBusyError`` at
    once, naming the holder, when another process holds it. ``command`` is what a
    refused process is told the holder runs."""
    private_dir(data_dir)  # nothing is written into a directory others can read
    fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HeldError(data_dir, _holder(fd), "stop it first, or wait until it ends") from None
        since = datetime.now(UTC).isoformat(timespec="seconds")
        words = {"pid": os.getpid(), "command": command, "since": since}
        os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):  # a full disk: held all the same, just unnamed
            os.pwrite(fd, json.dumps(words).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # what a kill -9 leaves is overwritten by the next holder
    finally:
        os.close(fd)  # the kernel drops the lock with the last descriptor


@dataclass(frozen=True)
class SyncedThere:
    """What the running agent stored for a ``sync`` it was asked for; ``by`` names it."""

    by: str
    stored: int
    next_seq: int


class _PairingLostThere(AgentError):
    """The running agent's engine for the watch lost its pairing."""

    exit_code: ClassVar[int] = EXIT_PAIRING_LOST


async def sync_through_running_agent(address: Address, busy: HeldError) -> SyncedThere:
    """``phoneagent sync`` when ``busy`` says another process holds the data dir: a running
    ``phoneagent run`` is asked to sync ``address`` now and its answer is this sync's result.
    Another holder (a ``sync``, a ``pair``) serves no socket: ``busy`` is raised as it is."""
    try:
        answer = await control.request(busy.data_dir, {"op": SYNC_OP, "address": address}, None)
    except control.AgentNotRunningError:
        raise busy from None
    except control.ControlError as error:  # an agent that does not take the request
        what = f"it cannot sync {address} for you ({error})"
        raise HeldError(busy.data_dir, busy.holder, what) from None
    failed = answer.get("failed")
    if failed is not None:
        kind = _PairingLostThere if answer.get("pairing_lost") else UnreachableError
        raise kind(f"the agent running on {busy.data_dir} could not sync {address}: {failed}")
    by = str(busy.holder or f"the agent running on {busy.data_dir}")
    return SyncedThere(by, int(answer["stored"]), int(answer["next_seq"]))


def sync_handler(daemon: Daemon) -> control.Handler:
    """The running agent's side of ``sync_through_running_agent``: the ``sync`` op."""

    async def answer(request: dict[str, Any]) -> dict[str, Any]:
        try:
            address = Address(str(request["address"]))
        except (KeyError, AddressError) as error:
            raise control.ControlUsageError(f"expected {{'address': ADDRESS}}: {error}") from None
        try:
            stored, next_seq = await daemon.sync_now(address)
        except SyncNowError as error:
            lost = error.state is SyncState.PAIRING_LOST
            return {"failed": str(error), "pairing_lost": lost}
        return {"stored": stored, "next_seq": next_seq}

    return answer
