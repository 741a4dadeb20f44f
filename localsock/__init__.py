"""A JSON-lines Unix socket next to a running process's state: how a command in another
shell (``watchsim ctl``, ``phoneagent inject``) reaches the watch or agent it names.

One JSON object per line each way; an answer is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``, with ``"usage": true`` when the request itself was
wrong (``UsageError``: a client exits with its usage status then). The socket is
owner-only from the moment it exists. Both ends use this one implementation: the
request shapes are theirs.
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

# sockaddr_un holds 108 bytes including the terminating NUL; keep a margin.
_MAX_SOCKET_PATH: Final = 100
LINE_LIMIT: Final = 1 << 20


class RequestError(Exception):
    """A request that failed; the message is for the person who sent it."""


class NotRunningError(RequestError):
    """Nothing listens on the socket: the process it belongs to is not running."""


class UsageError(RequestError):
    """A request whose words the server does not take (unknown command, wrong arguments)."""


class MalformedRequestError(UsageError):
    """A request line the server cannot take; the message says what it expected."""


def socket_path(directory: Path, name: str, prefix: str) -> Path:
    """``directory/name``, or a hashed name in the runtime dir when that path is too long
    for a socket address; the server and its clients compute the same path."""
    directory = directory.resolve()
    path = directory / name
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.fsencode(directory)).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / f"{prefix}-{digest}.sock"


class JsonLineServer:
    """Answers each request line with ``answer(request)``.

    ``answer`` raises ``RequestError`` (or one of ``errors``) to send an error answer;
    ``MalformedRequestError`` for a request of the wrong shape.
    """

    def __init__(
        self,
        path: Path,
        answer: Callable[[Any], Awaitable[Any]],
        *,
        errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self.path = path
        self._answer_with = answer
        self._errors: tuple[type[Exception], ...] = (RequestError, *errors)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen; ``RequestError`` if a live process already serves this path."""
        if self.path.exists():
            try:
                _reader, writer = await asyncio.open_unix_connection(self.path)
            except OSError:
                self.path.unlink()  # left behind by a process that did not shut down
            else:
                writer.close()
                raise RequestError(f"another process already serves {self.path}")
        old = os.umask(0o077)  # owner-only: no window in which others could connect
        try:
            self._server = await asyncio.start_unix_server(
                self._client, self.path, limit=LINE_LIMIT
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
            pass  # the client went away or sent an over-long line: nothing to answer
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "a request is one JSON object per line"}
        try:
            return {"ok": True, "result": await self._answer_with(request)}
        except self._errors as error:
            answer: dict[str, Any] = {"ok": False, "error": str(error)}
            if isinstance(error, UsageError):
                answer["usage"] = True
            return answer


async def request(path: Path, payload: Any, *, timeout_s: float | None, peer: str) -> Any:
    """Send one request to the process serving ``path``; its result, or ``RequestError``.

    ``peer`` names that process in messages ("the agent", "the watch"). ``timeout_s`` None:
    the server bounds its own work (a process that dies still closes the connection).
    """
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
    except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError):
        raise NotRunningError(f"{peer} is not running (nothing listens on {path})") from None
    except OSError as error:  # a socket we may not use: say which
        raise RequestError(f"cannot reach {peer} at {path}: {error.strerror}") from None
    try:
        writer.write(json.dumps(payload).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout_s)
    except TimeoutError:
        raise RequestError(f"{peer} did not answer within {timeout_s:g} s") from None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    if not line:
        raise RequestError(f"{peer} closed the connection without answering")
    answer = json.loads(line)
    if not answer.get("ok"):
        kind = UsageError if answer.get("usage") else RequestError
        raise kind(str(answer.get("error", "request failed")))
    return answer.get("result")
