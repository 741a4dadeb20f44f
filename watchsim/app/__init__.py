"""The watch application: model + history + peripheral, and what drives them."""

from __future__ import annotations

from watchsim.app.radios import BlueZRadio, LinkRadio, Radio, TransportRadio
from watchsim.app.relays import RelayError
from watchsim.app.watch import WatchApp, WatchConfig, WatchError

__all__ = [
    "BlueZRadio",
    "LinkRadio",
    "Radio",
    "RelayError",
    "TransportRadio",
    "WatchApp",
    "WatchConfig",
    "WatchError",
]
