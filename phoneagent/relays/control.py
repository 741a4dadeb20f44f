"""The running agent's relay socket: how ``phoneagent inject`` and ``permissions`` reach it.

The daemon is another process, so the CLI talks to it over a Unix socket next to the
store (``<data dir>/relays.sock``, owner-only; a short path in the runtime dir when
that one is too long for a socket address). One JSON object per line each way:
``{"op": "notify", ...}`` -> ``{"ok": true, "result": {...}}`` or ``{"ok": false,
"error": "..."}``. Content crosses the socket in memory only: the server never writes
a request to disk or to a log, and the answers carry ids and verdicts, not content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

SOCKET_NAME: Final = "relays.sock"
_MAX_SOCKET_PATH: Final = 100  # sockaddr_un holds 108 bytes with the NUL
_LINE_LIMIT: Final = 1 << 16
REQUEST_TIMEOUT_S: Final = 10.0

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlError(Exception):
    """A request that failed; the message is for the person who sent it."""


class AgentNotRunningError(ControlError):
    """Nothing listens on the relay socket: the agent (``phoneagent run``) is not running."""


def socket_path(data_dir: Path) -> Path:
    data_dir = data_dir.resolve()
    path = data_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / f"phoneagent-{digest}.sock"


class ControlServer:
    """Serves ``handlers`` by op name; a handler's ``ControlError`` becomes the answer."""

    def __init__(self, data_dir: Path, handlers: dict[str, Handler]) -> None:
        self.path = socket_path(data_dir)
        self._handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path.exists():
            try:
                _reader, writer = await asyncio.open_unix_connection(self.path)
            except OSError:
                self.path.unlink()  # left behind by an agent that did not shut down
            else:
                writer.close()
                raise ControlError(f"another agent already serves {self.path}")
        # Owner-only from the first moment: no window in which others could connect.
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, self.path, limit=_LINE_LIMIT
            )
        finally:
            os.umask(old)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self.path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await self._answer(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError):
            pass  # the client went away or sent an over-long line
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            handler = self._handlers[request["op"]]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": f"expected {{'op': one of {sorted(self._handlers)}}}"}
        try:
            return {"ok": True, "result": await handler(request)}
        except ControlError as error:
            return {"ok": False, "error": str(error)}


async def request(
    data_dir: Path, payload: dict[str, Any], timeout_s: float = REQUEST_TIMEOUT_S
) -> Any:
    """Send one request to the agent running on ``data_dir``; its result, or ControlError."""
    path = socket_path(data_dir)
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=_LINE_LIMIT)
    except (FileNotFoundError, ConnectionRefusedError):
        raise AgentNotRunningError(
            f"the agent is not running on {data_dir} (start it with: phoneagent run)"
        ) from None
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout_s)
    except TimeoutError:
        raise ControlError(f"the agent did not answer within {timeout_s:g} s") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not line:
        raise ControlError("the agent closed the connection without answering")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise ControlError(str(answer.get("error", "request failed")))
    return answer.get("result")
