"""What a client may ask of a running watch or fleet over its control socket: typed
operations, one struct each, so the server dispatches on types and checks values against
this one schema instead of parsing words.

On the wire an operation is a JSON object tagged by ``op`` (``{"op": "press", "button":
"accept"}``); ``watchsim ctl`` turns its command-line words into these.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from protocol.music import MAX_VOLUME
from watchsim.schema import fault

# How long ``passkey`` waits for one without WAIT_S: about as long as a person takes to
# start pairing on the phone after starting the watch.
PASSKEY_WAIT_S: Final = 10
_YEAR_MIN: Final = 525_600

CallButton = Literal["accept", "reject", "mute"]
MusicButton = Literal["play", "pause", "next", "previous", "volume-up", "volume-down"]
Minutes = Annotated[int, msgspec.Meta(ge=1, le=_YEAR_MIN)]


class Op(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="op"):
    """An operation; its tag is the ``watchsim ctl`` word that asks for it."""

    @property
    def word(self) -> str:
        return str(self.__struct_config__.tag)


class Status(Op, frozen=True, tag="status"):
    """Everything the watch shows; of a fleet, every watch's radio state."""


class Passkey(Op, frozen=True, tag="passkey"):
    wait_s: Annotated[int, msgspec.Meta(ge=0, le=600)] = PASSKEY_WAIT_S


class Press(Op, frozen=True, tag="press"):
    button: CallButton


class Music(Op, frozen=True, tag="music"):
    button: MusicButton


class Volume(Op, frozen=True, tag="volume"):
    level: Annotated[int, msgspec.Meta(ge=0, le=MAX_VOLUME)]


class Event(Op, frozen=True):
    """Something that happens to the watch; answered with ``{"event": name}``."""


class OffWrist(Event, frozen=True, tag="off-wrist"):
    minutes: Minutes | None = None  # None: until on-wrist


class OnWrist(Event, frozen=True, tag="on-wrist"):
    pass


class BatteryLow(Event, frozen=True, tag="battery-low"):
    percent: Annotated[int, msgspec.Meta(ge=0, le=100)] = 10


class OutOfRange(Event, frozen=True, tag="out-of-range"):
    minutes: Minutes


class Reboot(Event, frozen=True, tag="reboot"):
    pass


class FactoryReset(Event, frozen=True, tag="factory-reset"):
    pass


WatchOp = (
    Status
    | Passkey
    | Press
    | Music
    | Volume
    | OffWrist
    | OnWrist
    | BatteryLow
    | OutOfRange
    | Reboot
    | FactoryReset
)


class FleetUsage(Op, frozen=True, tag="usage"):
    """Peak RSS and CPU seconds of the fleet process."""


class Freeze(Op, frozen=True, tag="freeze"):
    """Stop measuring on every watch of the fleet (radios stay up)."""


class AirRestart(Op, frozen=True, tag="air-restart"):
    """Drop every agent's air connection for ``down_s`` seconds."""

    down_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 1.0


class ToWatch(Op, frozen=True, tag="watch"):
    """``command`` for the fleet's watch called ``name``."""

    name: str
    command: WatchOp


FleetOp = FleetUsage | Freeze | AirRestart | ToWatch
AnyOp = WatchOp | FleetOp


class OpError(ValueError):
    """A request that is not an operation of this schema; the message says which key."""


def encode(op: Op) -> Any:
    """``op`` as the JSON-able object the socket carries."""
    return msgspec.to_builtins(op)


def decode(request: Any) -> AnyOp:
    """The operation ``request`` asks for; ``OpError`` naming the key and what it takes."""
    try:
        op: AnyOp = msgspec.convert(request, AnyOp)
    except msgspec.ValidationError as error:
        key, message = fault(error)
        raise OpError(f"{key}: {message}" if key else message) from None
    return op
