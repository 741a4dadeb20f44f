"""The real CLIs as separate processes, driven as a person would: read what they print, type
into their prompts. Shared by the loopback system tests and the BlueZ VM tests, which differ
only in the watch's radio options, the agent's ``--transport`` and how long a step may take
(an emulated CPU is slow). Every wait is on a line a process prints, never a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from watchsim.testing import TEST_START

WATCH_CLI = "import sys; from watchsim.cli import main; sys.exit(main())"
AGENT_CLI = "from phoneagent.cli import main; main()"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PHONEAGENT_DB_KEY": "two-processes-test-key"}
WAIT = 10.0
LINES_SHOWN = 40  # of a process that did not print what a test waited for
# Where every watch's clock starts, so that a backfill's content does not depend on the
# hour a test runs at (the default day charges the watch at 19:30, for one).
START = TEST_START.strftime("%Y-%m-%dT%H:%M")
ADDRESS = r"([0-9A-F:]{17})"


async def line(
    process: asyncio.subprocess.Process,
    pattern: str,
    *,
    wait: float = WAIT,
    stderr: bool = False,
) -> re.Match[str]:
    """The next line of stdout (or stderr) matching ``pattern``; fails if none within ``wait``
    (in all: a process that keeps printing other lines does not extend it), naming the
    last lines it printed instead."""
    stream = process.stderr if stderr else process.stdout
    assert stream is not None
    seen: deque[str] = deque(maxlen=LINES_SHOWN)
    try:
        async with asyncio.timeout(wait):
            while raw := await stream.readline():
                seen.append(text := raw.decode(errors="replace"))
                if match := re.search(pattern, text):
                    return match
    except TimeoutError:
        raise AssertionError(
            f"no line matching {pattern!r} within {wait:g} s; the last lines:\n{''.join(seen)}"
        ) from None
    raise AssertionError(f"process exited before printing {pattern!r}:\n{''.join(seen)}")


async def prompt(process: asyncio.subprocess.Process, pattern: str, wait: float) -> re.Match[str]:
    """A prompt on stderr (no newline after it: it ends with ``: ``)."""
    assert process.stderr is not None
    seen = b""
    async with asyncio.timeout(wait):
        while not (match := re.search(pattern, seen.decode(errors="replace"))):
            chunk = await process.stderr.read(256)
            if not chunk:
                raise AssertionError(f"process exited before asking {pattern!r}: {seen!r}")
            seen += chunk
    return match


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def start_air(port: int = 0) -> tuple[asyncio.subprocess.Process, str]:
    """``watchsim air`` and the HOST:PORT it listens on (``port`` 0: a free one)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WATCH_CLI, "air", "--port", str(port), stdout=asyncio.subprocess.PIPE
    )
    try:
        match = await line(process, r"listening on ([\d.]+:\d+)")
    except BaseException:
        await kill(process)
        raise
    return process, match[1]


async def air_back(
    port: int,
    watch: asyncio.subprocess.Process,
    agent: asyncio.subprocess.Process,
    address: str,
    wait: float,
) -> asyncio.subprocess.Process:
    """After the air died: the watch noticed, a new air runs on ``port``, the watch joined
    it and the agent (``phoneagent run``) has ``address`` live again. The new air."""
    await line(watch, "radio lost")
    air, _ = await start_air(port)
    await line(watch, "radio back")
    await line(agent, rf"{address}: live", wait=wait, stderr=True)
    return air


async def stop_air(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, as a user stops it: it must close cleanly."""
    process.send_signal(signal.SIGTERM)
    await line(process, "air closed")
    assert await asyncio.wait_for(process.wait(), WAIT) == 0


@dataclass(frozen=True)
class Watch:
    """``watchsim run`` with one state dir; ``options`` pick the radio (the air or an
    adapter) and anything else, such as ``--pairing``."""

    state_dir: Path
    options: Sequence[str]  # ("--air", "HOST:PORT") or ("--transport", "bluez", ...)
    wait: float = WAIT
    backfill: str = "2h"

    async def start(self) -> tuple[asyncio.subprocess.Process, str]:
        """The running process and the address it says it advertises on."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WATCH_CLI,
            "run",
            *self.options,
            "--state-dir",
            str(self.state_dir),
            "--backfill",
            self.backfill,
            "--start",
            START,  # a restart starts there again: its clock is set from the phone's anyway
            stdout=asyncio.subprocess.PIPE,
            env=ENV,
        )
        try:
            ready = await line(process, rf"ready: address {ADDRESS}", wait=self.wait)
        except BaseException:
            await kill(process)
            raise
        return process, ready[1]

    async def newest_seq(self) -> int:
        """The newest seq the watch gave out, also once it freed every record (acknowledged)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WATCH_CLI,
            "ctl",
            "--state-dir",
            str(self.state_dir),
            "status",
            stdout=asyncio.subprocess.PIPE,
            env=ENV,
        )
        out, _ = await asyncio.wait_for(process.communicate(), self.wait)
        return int(json.loads(out)["history"]["next_seq"]) - 1


@dataclass(frozen=True)
class Phone:
    """``phoneagent`` commands on one data dir and one ``--transport``."""

    data_dir: Path
    transport: str  # "loopback:HOST:PORT", "bluez:hci1", ...
    wait: float = WAIT
    # The daemon may be silent while another watch backfills: a hang bound, not a timing.
    daemon_wait: float = 60.0

    async def _spawn(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            AGENT_CLI,
            "--data-dir",
            str(self.data_dir),
            "--transport",
            self.transport,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
        )

    async def __call__(
        self,
        *args: str,
        passkey_from: asyncio.subprocess.Process | None = None,
        number_from: asyncio.subprocess.Process | None = None,
    ) -> str:
        """Run one command; returns stdout, fails the test on a non-zero exit.

        With ``passkey_from``, types the passkey that watch process shows into the prompt;
        with ``number_from``, answers yes once the number asked about is the one that watch
        shows (numeric comparison).
        """
        process = await self._spawn(*args)
        try:
            typed = b""
            if passkey_from is not None:
                shown = await line(passkey_from, r"PASSKEY (\d{6})", wait=self.wait)
                typed = shown[1].encode() + b"\n"
            if number_from is not None:
                shown = await line(number_from, r"PASSKEY (\d{6})", wait=self.wait)
                asked = await prompt(process, r"show (\d{6})\?", self.wait)
                assert asked[1] == shown[1], "the phone and the watch show different numbers"
                typed = b"y\n"
            out, err = await asyncio.wait_for(process.communicate(typed), self.wait)
        finally:
            await kill(process)
        assert process.returncode == 0, err.decode()
        assert b"Traceback" not in err
        return out.decode()

    async def status(self, address: str) -> dict[str, int]:
        status = json.loads(await self("status", "--json"))
        (device,) = [d for d in status["devices"] if d["address"] == address]
        return {key: int(device[key]) for key in ("samples", "next_seq", "gaps", "gap_seqs")}

    @asynccontextmanager
    async def daemon(self, *addresses: str) -> AsyncIterator[asyncio.subprocess.Process]:
        """``phoneagent run --no-dbus`` until every watch is live; stopped with SIGTERM."""
        process = await self._spawn("run", "--no-dbus")
        try:
            wait = max(self.wait, self.daemon_wait)
            await line(process, "relays: phoneagent inject only", wait=wait, stderr=True)
            waiting = set(addresses)
            while waiting:
                live = await line(process, rf"{ADDRESS}: live", wait=wait, stderr=True)
                waiting.discard(live[1])
            yield process
            process.send_signal(signal.SIGTERM)
            await line(process, "phoneagent stopped", wait=self.wait, stderr=True)
            assert await asyncio.wait_for(process.wait(), self.wait) == 0
        finally:
            await kill(process)


def assert_exactly_once(status: dict[str, int]) -> None:
    """Every seq below the sync position, from the watch's first (1), is a stored sample: no gap."""
    assert (status["gaps"], status["gap_seqs"]) == (0, 0)
    assert status["samples"] == status["next_seq"] - 1


async def pair_and_sync(
    phone: Phone, watch: asyncio.subprocess.Process, address: str, *, numeric: bool = False
) -> None:
    """Pair (typing the passkey, or confirming the number the watch shows), then backfill."""
    shown = {"number_from": watch} if numeric else {"passkey_from": watch}
    paired = await phone("pair", address, **shown)
    # What to run next, not "the agent is not running" (issue 16, item 8).
    assert f"sync {address}" in paired and "not running" not in paired, paired
    await phone("sync", address)


def assert_backfilled(status: dict[str, int]) -> None:
    assert status["samples"] > 7000  # two hours of 1 Hz heart rate and the rest
    assert_exactly_once(status)


async def pair_sync_kill_restart_resync(watch: Watch, phone: Phone) -> str:
    """Pair, sync, keep it synced with ``run`` until live, kill the watch with SIGKILL,
    restart it from its state dir and sync again from the bond without a passkey: the store
    ends with every record the watch holds, once, and no unexplained gap. Returns the
    watch's address.
    """
    process, address = await watch.start()
    try:
        await pair_and_sync(phone, process, address)
        async with phone.daemon(address):
            pass  # live: the backfill and the records since are stored
        first = await phone.status(address)
        assert_backfilled(first)
        await kill(process)

        process, restarted = await watch.start()
        assert restarted == address  # identity and bond come back
        newest = await watch.newest_seq()
        # No passkey this time: the bond re-encrypts the link (stdin stays empty).
        await phone("sync", address)
        second = await phone.status(address)
    finally:
        await kill(process)

    assert second["next_seq"] > newest
    assert_exactly_once(second)
    assert second["samples"] > first["samples"]
    # PR-LOGS: the commands logged each sync session, with the watch's address redacted.
    log = (phone.data_dir / "logs" / "phoneagent.log").read_text()
    assert "backfilling (from seq" in log
    assert address not in log and "<mac>: stopped" in log
    return address


async def watch_status(watch: Watch) -> dict[str, object]:
    """``watchsim ctl status`` of a running watch process."""
    ctl = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WATCH_CLI, "ctl", "--state-dir", str(watch.state_dir), "status",
        stdout=asyncio.subprocess.PIPE, env=ENV,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(ctl.communicate(), watch.wait)
    status: dict[str, object] = json.loads(output)
    return status


async def infinitime_pair_sync_relay(watch: Watch, phone: Phone, scan_s: float) -> str:
    """An InfiniTime watch process (``--personality infinitime``) found by its name in a
    scan of ``scan_s`` seconds, paired without a passkey (the watch never asks), a one-shot
    sync that says there is no history, ``run`` live with a notification relayed (shown on
    the watch's ``ctl status``), and ``status`` marking its records live-derived. Returns
    the watch's address."""
    process, address = await watch.start()
    try:
        found = json.loads(await phone("scan", "--seconds", f"{scan_s:g}", "--json"))
        assert {"address": address, "name": "InfiniTime"}.items() <= found[0].items()
        paired = await phone("pair", address)  # no passkey typed: none is asked
        assert "unbonded" in paired, paired
        synced = await phone("sync", address)
        assert "keeps no history" in synced, synced
        await phone("permissions", "grant", "notifications")
        async with phone.daemon(address):
            sent = await phone("inject", "notification", "--app", "chat", "--title", "Ann")
            assert "delivered" in sent, sent
            assert (await watch_status(watch))["notifications"] == ["Ann"]
        status = json.loads(await phone("status", "--json"))
        (device,) = status["devices"]
        assert (device["records"], device["bonded"]) == ("live per minute", False)
    finally:
        await kill(process)
    return address
