"""The running agent's only control socket: how ``phoneagent inject``, ``status``,
``permissions`` and the other commands that change what the agent does (the ``reload``
signal) reach ``phoneagent run``. It belongs to the agent as a whole: the relays' ops
(``notify``, ``call``, ...) sit beside the agent's own (``status``, ``reload``).

A ``localsock`` JSON-lines socket next to the store (``<data dir>/relays.sock``,
owner-only): ``{"op": "notify", ...}`` -> ``{"ok": true, "result": {...}}``. Content
crosses the socket in memory only: the server never writes a request to disk or to a
log, and the answers carry ids and verdicts, not content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import localsock

SOCKET_NAME: Final = "relays.sock"
REQUEST_TIMEOUT_S: Final = 10.0

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
ControlError = localsock.RequestError  # a handler raises it to answer with an error
ControlUsageError = localsock.UsageError  # a request whose values are wrong: exit 2 in the CLI
AgentNotRunningError = localsock.NotRunningError


def socket_path(data_dir: Path) -> Path:
    return localsock.socket_path(data_dir, SOCKET_NAME, "phoneagent")


class ControlServer(localsock.JsonLineServer):
    """Serves ``handlers`` by op name."""

    def __init__(self, data_dir: Path, handlers: dict[str, Handler]) -> None:
        super().__init__(socket_path(data_dir), self._dispatch)
        self._handlers = handlers

    async def _dispatch(self, request: Any) -> Any:
        try:
            handler = self._handlers[request["op"]]
        except (KeyError, TypeError):
            raise localsock.MalformedRequestError(
                f"expected {{'op': one of {sorted(self._handlers)}}}"
            ) from None
        return await handler(request)


async def request(
    data_dir: Path, payload: dict[str, Any], timeout_s: float = REQUEST_TIMEOUT_S
) -> Any:
    """Send one request to the agent running on ``data_dir``; its result, or ControlError."""
    try:
        return await localsock.request(
            socket_path(data_dir), payload, timeout_s=timeout_s, peer="the agent"
        )
    except AgentNotRunningError:
        raise AgentNotRunningError(
            f"the agent is not running on {data_dir} (start it with: phoneagent run)"
        ) from None
