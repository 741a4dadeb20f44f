"""``phoneagent scan`` only lists what advertises: it needs no database key and writes no
store (issue 16 item 10), and its radio shows no identity (issue 15 finding 2)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.processes import AGENT_CLI, WAIT, Watch, kill

pytestmark = pytest.mark.system


async def test_scan_needs_no_key(air: str, tmp_path: Path) -> None:
    where = air.removeprefix("tcp-client:")
    process, address = await Watch(tmp_path / "watch", ("--air", where)).start()
    env = {k: v for k, v in os.environ.items() if k != "PHONEAGENT_DB_KEY"}
    data = tmp_path / "agent"
    try:
        scan = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            AGENT_CLI,
            "--data-dir",
            str(data),
            "--transport",
            f"loopback:{where}",
            "scan",
            "--seconds",
            "1",
            "--json",
            stdin=asyncio.subprocess.DEVNULL,  # no terminal: a key prompt would fail
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        out, err = await asyncio.wait_for(scan.communicate(), WAIT)
    finally:
        await kill(process)
    assert scan.returncode == 0, err.decode()
    assert address in {row["address"] for row in json.loads(out)}
    assert not (data / "phoneagent.db").exists()
