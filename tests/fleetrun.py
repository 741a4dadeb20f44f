"""``watchsim fleet`` and ``phoneagent fleet`` as separate processes, through their CLIs.

Shared by the fleet system tests, the soak run (``scripts/soak``) and the fleet
benchmark. Readiness is a line the command prints, read with a deadline; stderr goes to
a file next to the fleet's state so that a failure can be read afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

WATCH_CLI = "import sys; from watchsim.cli import main; sys.exit(main())"
AGENT_CLI = "import sys; from phoneagent.cli import main; sys.exit(main())"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@dataclass
class Proc:
    name: str
    process: asyncio.subprocess.Process
    stderr: Path
    lines: list[str] = field(default_factory=list)

    async def line(self, pattern: str, within: float) -> re.Match[str]:
        """The first stdout line (from now on) matching ``pattern``."""
        assert self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    tail = self.stderr.read_text()[-3000:]
                    raise RuntimeError(f"{self.name} exited before {pattern!r}:\n{tail}")
                text = raw.decode()
                self.lines.append(text)
                if match := re.search(pattern, text):
                    return match

    async def stop(self, within: float) -> str:
        """SIGTERM, wait for the exit; returns the rest of stdout."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within):
            out, _ = await self.process.communicate()
        text = out.decode()
        self.lines.extend(text.splitlines(keepends=True))
        return text

    async def kill(self) -> None:
        """SIGKILL: nothing is flushed or closed, as in a crash."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


async def spawn(name: str, code: str, args: list[str], stderr: Path) -> Proc:
    stderr.parent.mkdir(parents=True, exist_ok=True)
    with stderr.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=ENV,
        )
    return Proc(name, process, stderr)


async def start_watches(directory: Path, count: int, *options: str, within: float) -> Proc:
    """``watchsim fleet`` with its state in ``directory``, once it printed its ready line."""
    args = ["fleet", "--count", str(count), "--dir", str(directory), *options]
    proc = await spawn("watchsim fleet", WATCH_CLI, args, directory.with_suffix(".stderr"))
    await proc.line(r"fleet ready: ", within)
    return proc


async def start_agents(directory: Path, manifest: Path, *options: str, within: float) -> Proc:
    """``phoneagent fleet`` for the watches of ``manifest``, once every agent is paired."""
    args = ["fleet", "--watches", str(manifest), "--dir", str(directory), *options]
    proc = await spawn("phoneagent fleet", AGENT_CLI, args, directory.with_suffix(".stderr"))
    await proc.line(r"agent fleet ready: ", within)
    return proc


def cloud_toml(path: Path, port: int, region: str = "eu", mqtt: str = "5") -> Path:
    """An endpoint file for a local plaintext broker (allowed for loopback only)."""
    endpoint = {"host": "127.0.0.1", "port": port, "tls": False, "mqtt": mqtt}
    path.write_text(tomli_w.dumps({"regions": {region: endpoint}}))
    return path
