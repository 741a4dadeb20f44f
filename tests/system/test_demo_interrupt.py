"""``phoneagent demo`` stopped with Ctrl-C: the data directory it made for itself in the
temporary folder, the database key file inside it, is not left behind; a data directory
the user named is kept, and the message says where. Before, the demo said "Aborted!" and
left its folder, key included, in /tmp.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from phoneagent.errors import EXIT_ERROR
from tests.processes import AGENT_CLI, ENV, START, line

pytestmark = pytest.mark.system

DEMO = ("demo", "--hours", "1", "--seconds", "600", "--start", START)
WAIT = 60.0  # pairing and an hour's backfill come before the live values


async def _interrupted(
    tmp: Path, *options: str, stop: signal.Signals = signal.SIGINT
) -> tuple[str, str]:
    """The demo's data directory line and its stderr, once ``stop`` stopped it in its live
    phase (the watch running, the agent connected to it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT_CLI,
        *options,
        *DEMO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**ENV, "TMPDIR": str(tmp)},
    )
    try:
        directory = (await line(process, r"Agent data directory: (.+)"))[1]
        await line(process, r"live seq \d+", wait=WAIT)
        process.send_signal(stop)
        _, said = await asyncio.wait_for(process.communicate(), WAIT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = said.decode()
    assert process.returncode == EXIT_ERROR, errors
    assert "Traceback" not in errors and "Aborted" not in errors, errors
    return directory, errors


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
async def test_an_interrupted_demo_removes_the_folder_it_made(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Ctrl-C, or SIGTERM (a service manager, ``kill``): before, SIGTERM left the folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    directory, errors = await _interrupted(tmp, stop=stop)
    assert Path(directory).parent == tmp
    assert errors.strip() == (
        f"Demo interrupted: removed its data directory {directory}, key file included."
    )
    assert list(tmp.iterdir()) == []  # the watch's own folder went too


async def test_an_interrupted_demo_keeps_the_data_dir_it_was_given(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    data = tmp_path / "agent"
    directory, errors = await _interrupted(tmp, "--data-dir", str(data))
    assert directory == str(data)
    assert errors.strip() == f"Demo interrupted: what it stored so far is in {data}."
    assert (data / "phoneagent.db").exists() and (data / "demo.key").exists()
    assert list(tmp.iterdir()) == []
