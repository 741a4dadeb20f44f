"""A command's standard output failing: the person's pipe or disk, never a traceback.

``watchsim ctl status | head -1`` or ``phoneagent status | true``: the reader has what it
wanted, so this is no failure (exit 0, as ``git log | head -1``). ``... > /dev/full``: one
line naming standard output, exit 1.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

# Writes that fail because of where the output goes, not because of the command.
_DEVICE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def output_failure(error: BaseException) -> click.ClickException | click.exceptions.Exit | None:
    """How a command ends on ``error`` when it is its standard output failing; None when it
    is not (a broken socket to a running agent, a full disk under a data file: the
    command's own error handling says those)."""
    ending: click.ClickException | click.exceptions.Exit
    if isinstance(error, BrokenPipeError):
        ending = click.exceptions.Exit(0)
    elif isinstance(error, OSError) and error.errno in _DEVICE_FULL:
        ending = click.ClickException(f"standard output: {error.strerror}")
    else:
        return None
    if not _stdout_failed(error):
        return None
    # stdout goes to /dev/null so that the interpreter's last flush does not fail again.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ending


def _stdout_failed(error: OSError) -> bool:
    """Whether stdout itself is what failed, rather than a socket or a data file: a pipe
    whose reader left, or a device or file system that takes no more."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # CliRunner's stdout has no descriptor
        return False
    if isinstance(error, BrokenPipeError):
        poller = select.poll()
        poller.register(descriptor, select.POLLOUT)  # POLLERR: a pipe with no reader any more
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    where = os.fstat(descriptor)
    if stat.S_ISCHR(where.st_mode):  # /dev/full, a device gone
        return error.errno == errno.EIO or where.st_rdev == _full_device()
    if stat.S_ISREG(where.st_mode):
        room = os.fstatvfs(descriptor)
        return (room.f_bfree if os.geteuid() == 0 else room.f_bavail) == 0
    return False


def _full_device() -> int | None:
    try:
        return os.stat("/dev/full").st_rdev
    except OSError:
        return None


class OutputEndsGroup(click.Group):
    """A command group whose commands (and its help) end on a failing standard output as
    ``output_failure`` says: click's own handling exits 1 silently on a closed pipe, and a
    full disk was a traceback."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _output_ends():  # ``--help`` writes while the arguments are parsed
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _output_ends():
            return super().invoke(ctx)


@contextmanager
def _output_ends() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        ended = output_failure(error)
        if ended is None:
            raise
        raise ended from None
