"""The control channel: drive a running watch from another shell or a test.

A ``localsock`` JSON-lines socket next to the watch's state (``<state_dir>/control.sock``):
``{"command": ["press", "accept"]}`` -> ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. Words rather than a schema, so that
``watchsim ctl press accept`` maps one to one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import localsock
from protocol.alerts import CallActionKind
from protocol.music import MAX_VOLUME, MusicCommand
from watchsim.app import RelayError, WatchApp, WatchError

SOCKET_NAME: Final = "control.sock"
REQUEST_TIMEOUT_S: Final = 30.0
# How long ``passkey`` waits for one without WAIT_S: about as long as a person takes to
# start pairing on the phone after starting the watch.
PASSKEY_WAIT_S: Final = 10

USAGE: Final = """commands:
  status                          everything the watch shows, as JSON
  passkey [WAIT_S]                the passkey on screen (waits up to WAIT_S, default 10)
  press accept|reject|mute        a call button: acts on the current call by its id
  music play|pause|next|previous|volume-up|volume-down|volume N
  event off-wrist [MINUTES] | on-wrist | battery-low [PERCENT]
        out-of-range MINUTES | reboot | factory-reset"""

_MUSIC: Final = {
    "play": MusicCommand.PLAY,
    "pause": MusicCommand.PAUSE,
    "next": MusicCommand.NEXT,
    "previous": MusicCommand.PREVIOUS,
    "volume-up": MusicCommand.VOLUME_UP,
    "volume-down": MusicCommand.VOLUME_DOWN,
}
_PRESS: Final = {kind.name.lower(): kind for kind in CallActionKind}


ControlError = localsock.RequestError  # a command that failed: the message says why
ControlUsageError = localsock.UsageError  # a command that is not one: exit 2 in ``ctl``


def socket_path(state_dir: Path) -> Path:
    """Where the watch with this state dir listens; both sides compute the same path."""
    return localsock.socket_path(state_dir, SOCKET_NAME, "watchsim")


def _number(word: str, what: str, low: int, high: int) -> int:
    try:
        value = int(word)
    except ValueError:
        raise ControlUsageError(f"{what} must be a whole number, got {word!r}") from None
    if not low <= value <= high:
        raise ControlUsageError(f"{what} must be {low}..{high}, got {value}")
    return value


class LineServer(localsock.JsonLineServer):
    """The socket side of the channel: ``{"command": [words]}`` answered by ``handle``.

    ``state_dir`` names the socket (``socket_path``); a fleet uses its own directory.
    """

    def __init__(self, state_dir: Path) -> None:
        super().__init__(socket_path(state_dir), self._words, errors=(RelayError, WatchError))

    async def handle(self, words: list[str]) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        """Listen; WatchError if another watch already runs with this state dir."""
        try:
            await super().start()
        except ControlError:
            raise WatchError(f"another watch is already running with {self.path.parent}") from None

    async def _words(self, request: Any) -> Any:
        words = request.get("command") if isinstance(request, dict) else None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise localsock.MalformedRequestError('expected {"command": ["word", ...]}')
        return await self.handle(words)


class ControlServer(LineServer):
    def __init__(self, app: WatchApp) -> None:
        super().__init__(app.config.state_dir)
        self.app = app
        self._commands: dict[str, Callable[[list[str]], Awaitable[Any]]] = {
            "status": self._status,
            "passkey": self._passkey,
            "press": self._press,
            "music": self._music,
            "event": self._event,
        }

    async def handle(self, words: list[str]) -> Any:
        if not words or words[0] not in self._commands:
            raise ControlUsageError(f"unknown command {' '.join(words)!r}\n{USAGE}")
        return await self._commands[words[0]](words[1:])

    async def _status(self, args: list[str]) -> Any:
        arity(args, 0, 0, "status")
        return self.app.status()

    async def _passkey(self, args: list[str]) -> Any:
        arity(args, 0, 1, "passkey [WAIT_S]")
        wait = _number(args[0], "WAIT_S", 0, 600) if args else PASSKEY_WAIT_S
        return {"passkey": f"{await self.app.wait_for_passkey(float(wait)):06d}"}

    async def _press(self, args: list[str]) -> Any:
        arity(args, 1, 1, "press accept|reject|mute")
        if args[0] not in _PRESS:
            raise ControlUsageError(f"press what? {args[0]!r} is not one of {sorted(_PRESS)}")
        return await self.app.relays.press(_PRESS[args[0]])

    async def _music(self, args: list[str]) -> Any:
        if args[:1] == ["volume"]:
            arity(args, 2, 2, "music volume N")
            volume = _number(args[1], "volume", 0, MAX_VOLUME)
            sent = await self.app.relays.music_command(MusicCommand.SET_VOLUME, volume)
        else:
            arity(args, 1, 1, "music COMMAND")
            if args[0] not in _MUSIC:
                raise ControlUsageError(f"{args[0]!r} is not one of {[*_MUSIC, 'volume N']}")
            sent = await self.app.relays.music_command(_MUSIC[args[0]])
        return {"sent_to": sent}

    async def _event(self, args: list[str]) -> Any:
        kind = args[0] if args else ""
        app = self.app
        if kind == "off-wrist":
            arity(args, 1, 2, "event off-wrist [MINUTES]")
            if len(args) == 2:
                app.off_wrist(60 * _number(args[1], "MINUTES", 1, 525_600))
            else:
                app.off_wrist()
        elif kind == "on-wrist":
            arity(args, 1, 1, "event on-wrist")
            app.on_wrist()
        elif kind == "battery-low":
            arity(args, 1, 2, "event battery-low [PERCENT]")
            app.battery_low(_number(args[1], "PERCENT", 0, 100) if len(args) == 2 else 10)
        elif kind == "out-of-range":
            arity(args, 2, 2, "event out-of-range MINUTES")
            await app.out_of_range(60 * _number(args[1], "MINUTES", 1, 525_600))
        elif kind == "reboot":
            arity(args, 1, 1, "event reboot")
            await app.reboot()
        elif kind == "factory-reset":
            arity(args, 1, 1, "event factory-reset")
            await app.factory_reset()
        else:
            raise ControlUsageError(f"unknown event {kind!r}\n{USAGE}")
        return {"event": kind}


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


def arity(args: list[str], low: int, high: int, usage: str) -> None:
    """ControlError with the usage unless ``low <= len(args) <= high``."""
    if not low <= len(args) <= high:
        raise ControlUsageError(f"usage: {usage}")


async def request(state_dir: Path, words: list[str], timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
    """Send one command to the watch running with ``state_dir``; its result, or ControlError."""
    path = socket_path(state_dir)
    try:
        return await request_at(path, words, timeout_s)
    except localsock.NotRunningError:
        raise ControlError(
            f"no watch is running with state dir {state_dir} (nothing listens on {path})"
        ) from None


async def request_at(path: Path, words: list[str], timeout_s: float = REQUEST_TIMEOUT_S) -> Any:
    """``request`` to the control socket at ``path`` (a fleet manifest names each watch's)."""
    return await localsock.request(path, {"command": words}, timeout_s=timeout_s, peer="the watch")
