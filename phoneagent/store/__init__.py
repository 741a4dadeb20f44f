"""Local encrypted storage (SQLCipher): the only place personal data is written to disk."""

from __future__ import annotations

from phoneagent.store.aio import AsyncStore, OnLoop, StorePool, StoreRunner
from phoneagent.store.db import (
    HISTORY,
    LIVE_PER_MINUTE,
    DeviceRecord,
    GapRecord,
    MissingSeqs,
    PackedSamples,
    Store,
    StoredSample,
    StoreResult,
    chunk_seqs,
    store_exists,
)
from phoneagent.store.errors import (
    DamagedStoreError,
    KeyFileError,
    NoKeyError,
    NotADatabaseError,
    SchemaTooNewError,
    StoreError,
    StoreFullError,
    UnknownDeviceError,
    UnsafeDirectoryError,
    WrongKeyError,
)
from phoneagent.store.keys import DbKey, ResolvedKey, create_key_file, read_key_file, resolve_key
from phoneagent.store.schema import LATEST_VERSION

__all__ = [
    "HISTORY",
    "LATEST_VERSION",
    "LIVE_PER_MINUTE",
    "AsyncStore",
    "DamagedStoreError",
    "DbKey",
    "DeviceRecord",
    "GapRecord",
    "KeyFileError",
    "MissingSeqs",
    "NoKeyError",
    "NotADatabaseError",
    "OnLoop",
    "PackedSamples",
    "ResolvedKey",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "StoreFullError",
    "StorePool",
    "StoreResult",
    "StoreRunner",
    "StoredSample",
    "UnknownDeviceError",
    "UnsafeDirectoryError",
    "WrongKeyError",
    "chunk_seqs",
    "create_key_file",
    "read_key_file",
    "resolve_key",
    "store_exists",
]
