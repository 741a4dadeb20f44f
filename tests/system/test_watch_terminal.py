"""A watch started with ``&`` on the terminal where ``phoneagent pair`` then asks for the
passkey must not draw its live view over the prompt (issue 16, item 9): only a process in
the terminal's foreground draws it. Checked on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import termios

import pytest

pytestmark = pytest.mark.system

# The child owns the terminal (session leader, in its foreground); it then starts the same
# check as a background job, in a process group of its own, as a shell's ``&`` does.
CHILD = """
import subprocess, sys
from watchsim.console import owns_terminal
print("foreground", owns_terminal(sys.stdout), flush=True)
check = (
    "import sys; from watchsim.console import owns_terminal; "
    "print('background', owns_terminal(sys.stdout), flush=True)"
)
subprocess.run([sys.executable, "-c", check], process_group=0, check=True)
"""


def _take_terminal() -> None:
    os.setsid()
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_only_a_foreground_watch_draws_its_live_view() -> None:
    master, slave = os.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        output = _read_all(master)
        assert child.wait(timeout=60) == 0, output
    finally:
        os.close(master)
    assert "foreground True" in output, output
    assert "background False" in output, output


def test_a_pipe_is_not_a_terminal() -> None:
    from watchsim.console import owns_terminal

    read, write = os.pipe()
    with os.fdopen(write, "w") as stream:
        assert not owns_terminal(stream)
    os.close(read)
