"""One data dir, one agent (issue 17, finding 4), with the real CLIs as processes on a
``watchsim air``: a second ``run``, ``sync`` or ``pair`` on a data dir another holds is
told at once who holds it (exit 7); ``sync`` while ``run`` is live gets its data through
the running agent; a holder killed with SIGKILL leaves no lock behind; the read-only
commands keep working beside ``run``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from phoneagent.errors import EXIT_BUSY, EXIT_UNREACHABLE, EXIT_USAGE
from phoneagent.instance import LOCK_NAME
from tests.processes import WAIT, Watch, assert_exactly_once, kill, line
from tests.system.test_two_processes import on_air

pytestmark = pytest.mark.system


async def outcome(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """The exit status and stderr of a command that ends by itself."""
    _out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    assert b"Traceback" not in err
    return process.returncode, err.decode()


def names_holder(message: str, holder: asyncio.subprocess.Process, command: str) -> bool:
    return bool(re.search(rf"in use by pid {holder.pid} \(`phoneagent .*{command}`", message))


async def test_sync_while_run_is_live_syncs_through_the_running_agent(
    air: str, tmp_path: Path
) -> None:
    phone, air_address = on_air(air, tmp_path)
    watch = Watch(tmp_path / "watch", ("--air", air_address))
    process, address = await watch.start()
    try:
        await phone("pair", address, passkey_from=process)
        async with phone.daemon(address) as agent:
            newest = await watch.newest_seq()
            sync = await phone._spawn("sync", address)
            out, err = await asyncio.wait_for(sync.communicate(), phone.daemon_wait)
            assert sync.returncode == 0, err.decode()
            assert f"Synced by the running agent: pid {agent.pid} (`phoneagent" in err.decode()
            stored = re.search(rf"from {address}; synced up to seq (\d+)\.", out.decode())
            assert stored is not None, out.decode()
            # Everything the watch held when asked is stored, not just what was live then.
            assert int(stored[1]) >= newest
            # The read-only commands beside the running agent (SQLite's WAL readers).
            status = await phone.status(address)
            assert status["next_seq"] > newest and status["samples"] > 7000
            rows = json.loads(await phone("data", "--device", address, "--format", "json"))
            assert len(rows) >= status["samples"]  # read after it: only more
            # A watch the running agent does not sync: its clear refusal.
            other = "F0:5A:6E:00:00:99"
            code, message = await outcome(await phone._spawn("sync", other))
            assert code == EXIT_UNREACHABLE, message
            assert f"could not sync {other}: it is not paired" in message
    finally:
        await kill(process)


async def test_two_syncs_at_once(air: str, tmp_path: Path) -> None:
    """The second is told at once which process holds the data dir; the first goes on (it
    waits for a watch that no longer advertises: it holds the data dir for that long)."""
    phone, air_address = on_air(air, tmp_path)
    process, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=process)
    finally:
        await kill(process)
    (phone.data_dir / "config.toml").write_text("[sync]\nscan_timeout = 120.0\n")  # a hang bound
    syncs = [await phone._spawn("sync", address) for _ in range(2)]
    try:
        waits = {asyncio.ensure_future(s.wait()): s for s in syncs}
        done, _running = await asyncio.wait(
            waits, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        (refused,) = [waits[task] for task in done]
        (holder,) = [s for s in syncs if s is not refused]
        code, message = await outcome(refused)
        assert code == EXIT_BUSY, message
        assert names_holder(message, holder, f"sync {address}"), message
        assert holder.returncode is None  # still waiting for the watch, holding the dir
    finally:
        for sync in syncs:
            await kill(sync)


async def test_run_while_run_is_live(air: str, tmp_path: Path) -> None:
    phone, _air_address = on_air(air, tmp_path)
    async with phone.daemon() as agent:
        code, message = await outcome(await phone._spawn("run", "--no-dbus"))
        assert code == EXIT_BUSY, message
        assert names_holder(message, agent, "run"), message
        assert "stop it first" in message


async def test_pair_while_run_is_live_pairs_through_the_running_agent(
    air: str, tmp_path: Path
) -> None:
    """The watch's passkey question comes back over the agent's socket to the terminal
    that asked; the running agent then syncs the new watch. A watch it syncs already, and
    one that never advertises, are refused with their reasons."""
    phone, air_address = on_air(air, tmp_path)
    first, first_address = await Watch(tmp_path / "first", ("--air", air_address)).start()
    second, second_address = await Watch(tmp_path / "second", ("--air", air_address)).start()
    try:
        await phone("pair", first_address, passkey_from=first)
        async with phone.daemon(first_address) as agent:
            paired = await phone("pair", second_address, passkey_from=second)
            assert f"Paired with {second_address}" in paired, paired
            assert "The running agent syncs it from now on." in paired, paired
            await line(agent, rf"{second_address}: live", wait=phone.daemon_wait, stderr=True)
            code, message = await outcome(await phone._spawn("pair", first_address))
            assert code == EXIT_USAGE and "is paired and synced already" in message, message
            nobody = "F0:5A:6E:00:00:02"
            code, message = await outcome(await phone._spawn("pair", nobody, "--timeout", "1"))
            assert code == EXIT_UNREACHABLE, message
            assert f"could not pair {nobody}: " in message, message
        assert_exactly_once(await phone.status(second_address))
    finally:
        await kill(first)
        await kill(second)


async def test_a_holder_killed_with_sigkill_leaves_no_lock(air: str, tmp_path: Path) -> None:
    """The kernel drops the lock with the process: the next ``run`` starts, and it is the
    one named to others, not the dead one whose words are still in the file."""
    phone, _air_address = on_air(air, tmp_path)
    first = await phone._spawn("run", "--no-dbus")
    try:
        await line(first, "phoneagent running on", wait=phone.daemon_wait, stderr=True)
    finally:
        await kill(first)
    assert f'"pid": {first.pid}' in (phone.data_dir / LOCK_NAME).read_text()
    async with phone.daemon() as second:
        code, message = await outcome(await phone._spawn("run", "--no-dbus"))
        assert code == EXIT_BUSY and names_holder(message, second, "run"), message
