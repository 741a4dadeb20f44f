"""The control channel: drive a running watch from another shell or a test.

A ``localsock`` JSON-lines socket next to the watch's state (``<state_dir>/control.sock``)
carrying the typed operations of ``watchsim.controlops``: ``{"op": "press", "button":
"accept"}`` -> ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
``watchsim ctl`` turns its words into those operations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import localsock
from protocol.alerts import CallActionKind
from protocol.music import MusicCommand
from watchsim.app import RelayError, WatchApp, WatchError
from watchsim.controlops import (
    AnyOp,
    BatteryLow,
    Event,
    FactoryReset,
    Music,
    OffWrist,
    OnWrist,
    Op,
    OpError,
    OutOfRange,
    Passkey,
    Press,
    Reboot,
    Status,
    Volume,
    decode,
    encode,
)

SOCKET_NAME: Final = "control.sock"
REQUEST_TIMEOUT_S: Final = 30.0

ControlError = localsock.RequestError  # a command that failed: the message says why
ControlUsageError = localsock.UsageError  # a command that is not one: exit 2 in ``ctl``


def socket_path(state_dir: Path) -> Path:
    """Where the watch with this state dir listens; both sides compute the same path."""
    return localsock.socket_path(state_dir, SOCKET_NAME, "watchsim")


class LineServer(localsock.JsonLineServer):
    """The socket side of the channel: each request decoded into an operation and
    answered by ``handle``.

    ``state_dir`` names the socket (``socket_path``); a fleet uses its own directory.
    """

    def __init__(self, state_dir: Path) -> None:
        super().__init__(socket_path(state_dir), self._decoded, errors=(RelayError, WatchError))

    async def handle(self, op: AnyOp) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        """Listen; WatchError if another watch already runs with this state dir."""
        try:
            await super().start()
        except ControlError:
            raise WatchError(f"another watch is already running with {self.path.parent}") from None

    async def _decoded(self, request: Any) -> Any:
        try:
            op = decode(request)
        except OpError as error:
            raise localsock.MalformedRequestError(str(error)) from None
        return await self.handle(op)


class ControlServer(LineServer):
    def __init__(self, app: WatchApp) -> None:
        super().__init__(app.config.state_dir)
        self.app = app

    async def handle(self, op: AnyOp) -> Any:
        app = self.app
        match op:
            case Status():
                return app.status()
            case Passkey(wait_s=wait_s):
                return {"passkey": f"{await app.wait_for_passkey(float(wait_s)):06d}"}
            case Press(button=button):
                return await app.relays.press(CallActionKind[button.upper()])
            case Music(button=button):
                command = MusicCommand[button.replace("-", "_").upper()]
                return {"sent_to": await app.relays.music_command(command)}
            case Volume(level=level):
                sent = await app.relays.music_command(MusicCommand.SET_VOLUME, level)
                return {"sent_to": sent}
            case Event():
                await self._event(op)
                return {"event": op.word}
        raise ControlUsageError(f"{op.word!r} is a fleet's command; this is a watch")

    async def _event(self, event: Event) -> None:
        app = self.app
        match event:
            case OffWrist(minutes=None):
                app.off_wrist()
            case OffWrist(minutes=int(minutes)):
                app.off_wrist(60 * minutes)
            case OnWrist():
                app.on_wrist()
            case BatteryLow(percent=percent):
                app.battery_low(percent)
            case OutOfRange(minutes=minutes):
                await app.out_of_range(60 * minutes)
            case Reboot():
                await app.reboot()
            case FactoryReset():
                await app.factory_reset()


async def start_controlled(app: WatchApp) -> ControlServer:
    """Start ``app`` behind its control socket; if the watch fails to start, neither runs."""
    control = ControlServer(app)
    await control.start()
    try:
        await app.start()
    except BaseException:
        await control.close()
        await app.stop()
        raise
    return control


async def request(state_dir: Path, op: Op, timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
    """Send ``op`` to the watch running with ``state_dir``; its result, or ControlError."""
    path = socket_path(state_dir)
    try:
        return await request_at(path, op, timeout_s)
    except localsock.NotRunningError:
        raise ControlError(
            f"no watch is running with state dir {state_dir} (nothing listens on {path})"
        ) from None


async def request_at(path: Path, op: Op, timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
    """``request`` to the control socket at ``path`` (a fleet manifest names each watch's)."""
    return await localsock.request(path, encode(op), timeout_s=timeout_s, peer="the watch")
