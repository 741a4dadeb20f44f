"""``phoneagent status | head -1``: a listing whose reader leaves early ends as ``git log |
head -1`` does, with exit 0 and nothing on stderr (it used to exit 1, silently, or with
"Error: Broken pipe" for JSON); so does ``watchsim ctl status``. Output into a full device
is one line naming standard output, exit 1 (``--help > /dev/full`` was a traceback).

The CLIs run as real processes writing into a real pipe whose reader closes it, or /dev/full.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoneagent.store import Store, create_key_file
from tests.processes import AGENT_CLI, WATCH_CLI, Watch, kill
from tests.system.test_two_processes import on_air

pytestmark = pytest.mark.system

WAIT = 30.0
LISTINGS = [("status",), ("status", "--json"), ("devices",), ("devices", "--json")]


@pytest.fixture(scope="module")
def watches(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The global options of a data dir that knows a few watches."""
    root = tmp_path_factory.mktemp("pipes")
    data = root / "agent"
    data.mkdir(mode=0o700)
    key_file = root / "key"
    with Store.open(data, create_key_file(key_file)) as store:
        for n in range(20):
            store.add_device(f"F0:5A:6E:00:00:{n:02X}", name=f"Watch {n:02d}")
    return ["--data-dir", str(data), "--key-file", str(key_file)]


def _piped(
    options: list[str], command: tuple[str, ...], lines: int, cli: str = AGENT_CLI
) -> tuple[int, str]:
    """Run ``phoneagent OPTIONS COMMAND | head -LINES``: its exit code and stderr."""
    read, write = os.pipe()
    with subprocess.Popen(
        [sys.executable, "-c", cli, *options, *command], stdout=write, stderr=subprocess.PIPE
    ) as process:
        os.close(write)
        with os.fdopen(read, "rb") as reader:
            for _ in range(lines):
                assert reader.readline().endswith(b"\n"), "the command printed fewer lines"
        # The reader is gone; the command has its listing still to write.
        assert process.stderr is not None
        errors = process.stderr.read().decode()
        return process.wait(WAIT), errors


def test_status_piped_into_head_1_exits_0_quietly(watches: list[str]) -> None:
    """The store's path is the first line; the table comes after the reader left."""
    assert _piped(watches, ("status",), lines=1) == (0, "")


@pytest.mark.parametrize("command", LISTINGS, ids=" ".join)
def test_a_listing_whose_reader_left_exits_0_quietly(
    watches: list[str], command: tuple[str, ...]
) -> None:
    """``phoneagent devices | true``: the reader left before the first line."""
    assert _piped(watches, command, lines=0) == (0, "")


async def test_watch_status_whose_reader_left_exits_0_quietly(air: str, tmp_path: Path) -> None:
    """``watchsim ctl status | true`` exited 1, silently."""
    _, air_address = on_air(air, tmp_path)
    watch = Watch(tmp_path / "watch", ("--air", air_address))
    process, _ = await watch.start()
    try:
        options = ["ctl", "--state-dir", str(watch.state_dir)]
        assert _piped(options, ("status",), lines=0, cli=WATCH_CLI) == (0, "")
    finally:
        await kill(process)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "command",
    [(AGENT_CLI, "--help"), (AGENT_CLI, "account", "--help"), (WATCH_CLI, "--help")],
    ids=["phoneagent --help", "phoneagent account --help", "watchsim --help"],
)
def test_output_into_a_full_device_is_one_line(command: tuple[str, ...]) -> None:
    with Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            [sys.executable, "-c", *command], stdout=full, stderr=subprocess.PIPE, check=False
        )
    assert (done.returncode, done.stderr.decode()) == (
        1,
        "Error: standard output: No space left on device\n",
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_listing_into_a_full_device_names_standard_output(watches: list[str]) -> None:
    """It said "Error: No space left on device", naming nothing."""
    with Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            [sys.executable, "-c", AGENT_CLI, *watches, "status"],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert (done.returncode, done.stderr.decode()) == (
        1,
        "Error: standard output: No space left on device\n",
    )
