"""The watch application: model + history + peripheral, and what drives them."""

from __future__ import annotations

from typing import Final

from watchsim.app.infinitime import InfiniTimeApp
from watchsim.app.radios import BlueZRadio, LinkRadio, Radio, TransportRadio
from watchsim.app.relays import RelayError
from watchsim.app.watch import WatchApp, WatchConfig, WatchError

# ``watchsim run --personality``: which firmware the watch presents (ours by default).
PERSONALITIES: Final[dict[str, type[WatchApp]]] = {
    "watchsim": WatchApp,
    "infinitime": InfiniTimeApp,
}

__all__ = [
    "PERSONALITIES",
    "BlueZRadio",
    "InfiniTimeApp",
    "LinkRadio",
    "Radio",
    "RelayError",
    "TransportRadio",
    "WatchApp",
    "WatchConfig",
    "WatchError",
]
