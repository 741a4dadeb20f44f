"""Sync engine: one state machine per paired watch, storing history exactly once."""

from __future__ import annotations

from phoneagent.sync.bonds import StoreBonds
from phoneagent.sync.engine import (
    Committed,
    DeviceSync,
    LinkLostError,
    Relays,
    SyncObserver,
    SyncState,
)
from phoneagent.sync.preferences import PreferencesSource, SyncPreferences, fixed_preferences
from phoneagent.sync.watch_client import DeviceInfo, WatchClient, WatchProtocolError

__all__ = [
    "Committed",
    "DeviceInfo",
    "DeviceSync",
    "LinkLostError",
    "PreferencesSource",
    "Relays",
    "StoreBonds",
    "SyncObserver",
    "SyncPreferences",
    "SyncState",
    "WatchClient",
    "WatchProtocolError",
    "fixed_preferences",
]
