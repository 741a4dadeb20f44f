"""Watch and agent as separate processes on a ``watchsim air``, through their real CLIs.

Pairs with a passkey typed from the watch's screen, syncs, kills the watch with SIGKILL,
restarts it from its state dir, and syncs again from the bond without a passkey: the
store ends with every record the watch holds, once, and no unexplained gap.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from phoneagent.upload import Endpoint
from tests.mosquitto import Broker, broker
from tests.system import test_air
from tests.system.test_air import CLI, WAIT, _line
from tests.system.test_upload import receiving, wait_until

air = test_air.air  # the fixture
__all__ = ["broker"]
PROFILE = ("--region", "eu", "--birth-date", "1990-03-01", "--sex", "female")
PROFILE += ("--height", "168", "--weight", "61.2")

pytestmark = pytest.mark.system

AGENT_CLI = "from phoneagent.cli import main; main()"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PHONEAGENT_DB_KEY": "two-processes-test-key"}


async def start_watch(air_address: str, state_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI,
        "run",
        "--air",
        air_address,
        "--state-dir",
        str(state_dir),
        "--backfill",
        "2h",
        "--scenario",
        "workout",  # worn throughout: the default day charges off the wrist at 19:30
        stdout=asyncio.subprocess.PIPE,
        env=ENV,
    )
    ready = await _line(process, r"ready: address ([0-9A-F:]{17})")
    return process, ready[1]


async def agent(
    data_dir: Path,
    air_address: str,
    *args: str,
    passkey_from: asyncio.subprocess.Process | None = None,
) -> str:
    """Run one ``phoneagent`` command; returns stdout, fails the test on a non-zero exit.

    With ``passkey_from``, types the passkey that watch process shows into the prompt,
    as a person would.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT_CLI,
        "--data-dir",
        str(data_dir),
        "--transport",
        f"loopback:{air_address}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    typed = b""
    if passkey_from is not None:
        typed = (await _line(passkey_from, r"PASSKEY (\d{6})"))[1].encode() + b"\n"
    out, err = await asyncio.wait_for(process.communicate(typed), WAIT)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    return out.decode()


async def watch_newest_seq(state_dir: Path) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI,
        "ctl",
        "--state-dir",
        str(state_dir),
        "status",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), WAIT)
    return int(json.loads(out)["history"]["newest_seq"])


async def agent_status(data_dir: Path, air_address: str, address: str) -> dict[str, int]:
    status = json.loads(await agent(data_dir, air_address, "status", "--json"))
    (device,) = [d for d in status["devices"] if d["address"] == address]
    return {key: int(device[key]) for key in ("samples", "next_seq", "gaps", "gap_seqs")}


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def test_pair_sync_kill_restart_resync(air: str, tmp_path: Path) -> None:
    air_address = air.removeprefix("tcp-client:")
    state_dir, data_dir = tmp_path / "watch", tmp_path / "agent"
    watch, address = await start_watch(air_address, state_dir)
    try:
        await agent(data_dir, air_address, "pair", address, passkey_from=watch)
        await agent(data_dir, air_address, "sync", address)
        first = await agent_status(data_dir, air_address, address)
        assert first["samples"] > 7000  # two hours of 1 Hz heart rate and the rest
        await kill(watch)

        watch, restarted = await start_watch(air_address, state_dir)
        assert restarted == address  # identity and bond come back from the state dir
        newest = await watch_newest_seq(state_dir)
        # No passkey this time: the bond re-encrypts the link (stdin stays empty).
        await agent(data_dir, air_address, "sync", address)
        second = await agent_status(data_dir, air_address, address)
    finally:
        await kill(watch)

    assert second["next_seq"] > newest
    # seq 0 is never assigned; every other seq below the cursor is a stored sample.
    assert (second["gaps"], second["gap_seqs"]) == (1, 1)
    assert second["samples"] == second["next_seq"] - 1
    assert second["samples"] > first["samples"]
    # PR-LOGS: the commands logged each sync session, with the watch's address redacted.
    log = (data_dir / "logs" / "phoneagent.log").read_text()
    assert "backfilling (from seq" in log
    assert address not in log and "<mac>: stopped" in log


# The daemon may be silent while another watch backfills: a hang bound, not a timing.
DAEMON_WAIT = 60.0


async def _stderr_line(process: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert process.stderr is not None
    while True:
        raw = await asyncio.wait_for(process.stderr.readline(), DAEMON_WAIT)
        if not raw:
            raise AssertionError(f"the agent exited before printing {pattern!r}")
        if match := re.search(pattern, raw.decode()):
            return match


@asynccontextmanager
async def daemon(data_dir: Path, air_address: str, *addresses: str) -> AsyncIterator[None]:
    """``phoneagent run --no-dbus`` until every watch is live; stopped with SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT_CLI,
        "--data-dir",
        str(data_dir),
        "--transport",
        f"loopback:{air_address}",
        "run",
        "--no-dbus",
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    try:
        await _stderr_line(process, "relays: phoneagent inject only")
        waiting = set(addresses)
        while waiting:
            waiting.discard((await _stderr_line(process, r"([0-9A-F:]{17}): live"))[1])
        yield
        process.send_signal(signal.SIGTERM)
        await _stderr_line(process, "phoneagent stopped")
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
    finally:
        await kill(process)


async def test_one_agent_keeps_two_watch_processes_synced(air: str, tmp_path: Path) -> None:
    """Two watches, each its own process on the air, one ``phoneagent run`` for both."""
    air_address = air.removeprefix("tcp-client:")
    data_dir = tmp_path / "agent"
    first, first_address = await start_watch(air_address, tmp_path / "w1")
    second, second_address = await start_watch(air_address, tmp_path / "w2")
    try:
        assert first_address != second_address
        for watch, address in ((first, first_address), (second, second_address)):
            await agent(data_dir, air_address, "pair", address, passkey_from=watch)
        async with daemon(data_dir, air_address, first_address, second_address):
            pass  # both reached live: their backfills are stored
        for address in (first_address, second_address):
            status = await agent_status(data_dir, air_address, address)
            assert status["samples"] > 7000  # the two hours of backfill, then live records
            # Every seq below the cursor is a stored sample, but seq 0 (never assigned).
            assert (status["gaps"], status["gap_seqs"]) == (1, 1)
            assert status["samples"] == status["next_seq"] - 1
    finally:
        await kill(first)
        await kill(second)


async def test_cloud_sync_turned_on_while_the_agent_runs__PR_CLOUD(
    air: str, broker: Broker, tmp_path: Path
) -> None:
    """An account and cloud sync created while ``phoneagent run`` runs: it starts uploading."""
    air_address = air.removeprefix("tcp-client:")
    data_dir = tmp_path / "agent"
    watch, address = await start_watch(air_address, tmp_path / "watch")
    try:
        await agent(data_dir, air_address, "pair", address, passkey_from=watch)
        (data_dir / "cloud.toml").write_text(
            f'[regions.eu]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = false\n'
        )
        endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
        async with (
            daemon(data_dir, air_address, address),
            receiving(endpoint, tmp_path / "cloud.db") as cloud,
        ):
            assert cloud.samples() == []  # guest mode: nothing leaves the phone
            await agent(data_dir, air_address, "account", "create", *PROFILE)
            out = await agent(data_dir, air_address, "cloud", "enable")
            assert "in effect now" in out
            await wait_until(lambda: len(cloud.samples()) > 7000, "the backfill uploaded")
    finally:
        await kill(watch)
