"""The JSON-lines socket both ends serve their control channel on."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest

import localsock


async def test_answers_errors_and_refuses_a_second_server(tmp_path: Path) -> None:
    async def answer(request: Any) -> Any:
        if request == "boom":
            raise localsock.RequestError("it went boom")
        return {"echo": request}

    path = tmp_path / "x.sock"
    server = localsock.JsonLineServer(path, answer)
    await server.start()
    try:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # owner-only
        assert await localsock.request(path, [1, 2], timeout_s=5, peer="it") == {"echo": [1, 2]}
        with pytest.raises(localsock.RequestError, match="it went boom"):
            await localsock.request(path, "boom", timeout_s=5, peer="it")
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"not json\n")
        assert json.loads(await reader.readline())["ok"] is False
        writer.close()
        with pytest.raises(localsock.RequestError, match="already serves"):
            await localsock.JsonLineServer(path, answer).start()
    finally:
        await server.close()
    with pytest.raises(localsock.NotRunningError, match="it is not running"):
        await localsock.request(path, 1, timeout_s=5, peer="it")


async def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    first = localsock.JsonLineServer(path, lambda r: asyncio.sleep(0, r))
    await first.start()
    first._server.close()  # type: ignore[union-attr]  # dies without removing its file
    await first._server.wait_closed()  # type: ignore[union-attr]
    assert path.exists()
    second = localsock.JsonLineServer(path, lambda r: asyncio.sleep(0, r))
    await second.start()
    try:
        assert await localsock.request(path, "hi", timeout_s=5, peer="it") == "hi"
    finally:
        await second.close()


def test_a_long_directory_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    path = localsock.socket_path(deep, "control.sock", "watchsim")
    assert path.name.startswith("watchsim-") and len(str(path)) <= 100
    assert path == localsock.socket_path(deep, "control.sock", "watchsim")  # both sides agree
    assert localsock.socket_path(tmp_path, "c.sock", "w") == tmp_path.resolve() / "c.sock"
