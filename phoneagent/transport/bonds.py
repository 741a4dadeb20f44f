"""Where bond keys live: a tiny interface the encrypted store can implement as one table.

Keys are kept as opaque text (Bumble's key dictionary as JSON), indexed by the peer's
identity address, so a store needs no knowledge of SMP (``radio.BondKeyStore`` is the
Bumble side). The agent's own identity (``identity.AgentIdentity``, also opaque text
here) lives with them: bonds are only valid for the identity they were made with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol


class BondStore(Protocol):
    """Bond keys by peer identity address (``AA:BB:CC:DD:EE:FF``)."""

    def get(self, peer: str) -> str | None: ...

    def put(self, peer: str, keys: str) -> None: ...

    def delete(self, peer: str) -> None: ...

    def peers(self) -> list[str]: ...

    def identity(self) -> str | None: ...

    def set_identity(self, identity: str) -> None: ...


class MemoryBondStore:
    """Bonds for the life of the process (tests, throwaway sessions)."""

    def __init__(self) -> None:
        self._bonds: dict[str, str] = {}
        self._identity: str | None = None

    def get(self, peer: str) -> str | None:
        return self._bonds.get(peer)

    def put(self, peer: str, keys: str) -> None:
        self._bonds[peer] = keys

    def delete(self, peer: str) -> None:
        self._bonds.pop(peer, None)

    def peers(self) -> list[str]:
        return sorted(self._bonds)

    def identity(self) -> str | None:
        return self._identity

    def set_identity(self, identity: str) -> None:
        self._identity = identity


# The file's entry for the agent's identity: a key no peer address can take.
_IDENTITY = "identity"


class JsonFileBondStore:
    """Bonds in one JSON file, rewritten atomically (tests; the agent uses the store)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{self._path}: not a bond file")
        return data

    def _save(self, bonds: dict[str, str]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staging = self._path.with_suffix(self._path.suffix + ".new")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(bonds, out, sort_keys=True)
        os.replace(staging, self._path)

    def get(self, peer: str) -> str | None:
        return self._load().get(peer)

    def put(self, peer: str, keys: str) -> None:
        bonds = self._load()
        bonds[peer] = keys
        self._save(bonds)

    def delete(self, peer: str) -> None:
        bonds = self._load()
        if bonds.pop(peer, None) is not None:
            self._save(bonds)

    def peers(self) -> list[str]:
        return sorted(peer for peer in self._load() if peer != _IDENTITY)

    def identity(self) -> str | None:
        return self.get(_IDENTITY)

    def set_identity(self, identity: str) -> None:
        self.put(_IDENTITY, identity)
