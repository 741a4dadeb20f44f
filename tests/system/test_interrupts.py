"""Ctrl-C (SIGINT) at a prompt of a real ``phoneagent`` process: it ends at once, with
click's "Aborted!" and exit 1, never a traceback and never a wait for Enter."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.processes import WAIT, Watch, kill, prompt
from tests.system.test_two_processes import on_air


async def test_ctrl_c_at_the_passkey_prompt_ends_pair(air: str, tmp_path: Path) -> None:
    """The prompt was read in ``asyncio.to_thread``, whose worker the interpreter joins
    at exit: ``pair`` hung after Ctrl-C until a line was typed."""
    phone, air_address = on_air(air, tmp_path)
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    pair = await phone._spawn("pair", address)
    try:
        await prompt(pair, r"Passkey shown on", WAIT)
        pair.send_signal(signal.SIGINT)  # stdin stays open, as a terminal's does
        assert await asyncio.wait_for(pair.wait(), WAIT) == 1
        assert pair.stderr is not None
        err = (await pair.stderr.read()).decode()
        assert "Aborted!" in err and "Traceback" not in err, err
    finally:
        await kill(pair)
        await kill(watch)
