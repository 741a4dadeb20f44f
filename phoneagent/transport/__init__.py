"""The agent's BLE transport: bleak everywhere, a Bumble-backed bleak backend for loopback."""

from __future__ import annotations

from phoneagent.transport.advertising import appearance
from phoneagent.transport.backend import BumbleClient, BumbleScanner
from phoneagent.transport.bonds import BondStore, JsonFileBondStore, MemoryBondStore
from phoneagent.transport.errors import (
    ConnectTimeoutError,
    PairingFailedError,
    PairingLostError,
    TransportConfigError,
)
from phoneagent.transport.factory import (
    Transport,
    TransportConfig,
    open_transport,
    parse_transport,
    radio_transport,
)
from phoneagent.transport.pairing import PairingAgent, RefusingAgent
from phoneagent.transport.radio import BumbleRadio

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
    "RefusingAgent",
    "Transport",
    "TransportConfig",
    "TransportConfigError",
    "appearance",
    "open_transport",
    "parse_transport",
    "radio_transport",
]
