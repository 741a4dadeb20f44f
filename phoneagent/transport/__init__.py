"""The agent's BLE transport: bleak everywhere, a Bumble-backed bleak backend for loopback.

The Bumble-backed names load Bumble on first use only: on BlueZ, and for commands that
never touch a radio, the CLI starts without it (seconds on a slow CPU).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from phoneagent.transport.advertising import appearance
from phoneagent.transport.bonds import BondStore, JsonFileBondStore, MemoryBondStore
from phoneagent.transport.errors import (
    ConnectTimeoutError,
    PairingFailedError,
    PairingLostError,
    RadioLostError,
    TransportConfigError,
    radio_lost,
)
from phoneagent.transport.factory import (
    Transport,
    TransportConfig,
    open_transport,
    parse_transport,
    radio_transport,
    start_loading,
)
from phoneagent.transport.pairing import PairingAgent, RefusingAgent

if TYPE_CHECKING:
    from phoneagent.transport.backend import BumbleClient, BumbleScanner
    from phoneagent.transport.radio import BumbleRadio

_ON_BUMBLE = {
    "BumbleClient": "phoneagent.transport.backend",
    "BumbleScanner": "phoneagent.transport.backend",
    "BumbleRadio": "phoneagent.transport.radio",
}


def __getattr__(name: str) -> Any:
    if name in _ON_BUMBLE:
        return getattr(importlib.import_module(_ON_BUMBLE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BondStore",
    "BumbleClient",
    "BumbleRadio",
    "BumbleScanner",
    "ConnectTimeoutError",
    "JsonFileBondStore",
    "MemoryBondStore",
    "PairingAgent",
    "PairingFailedError",
    "PairingLostError",
    "RadioLostError",
    "RefusingAgent",
    "Transport",
    "TransportConfig",
    "TransportConfigError",
    "appearance",
    "open_transport",
    "parse_transport",
    "radio_lost",
    "radio_transport",
    "start_loading",
]
