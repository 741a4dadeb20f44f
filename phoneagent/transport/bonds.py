"""Where bond keys live: a tiny interface the encrypted store can implement as one table.

Keys are kept as opaque text (Bumble's key dictionary as JSON), indexed by the peer's
identity address, so a store needs no knowledge of SMP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol

from bumble.keys import KeyStore, PairingKeys


class BondStore(Protocol):
    """Bond keys by peer identity address (``AA:BB:CC:DD:EE:FF``)."""

    def get(self, peer: str) -> str | None: ...

    def put(self, peer: str, keys: str) -> None: ...

    def delete(self, peer: str) -> None: ...

    def peers(self) -> list[str]: ...


class MemoryBondStore:
    """Bonds for the life of the process (tests, throwaway sessions)."""

    def __init__(self) -> None:
        self._bonds: dict[str, str] = {}

    def get(self, peer: str) -> str | None:
        return self._bonds.get(peer)

    def put(self, peer: str, keys: str) -> None:
        self._bonds[peer] = keys

    def delete(self, peer: str) -> None:
        self._bonds.pop(peer, None)

    def peers(self) -> list[str]:
        return sorted(self._bonds)


class JsonFileBondStore:
    """Bonds in one JSON file, rewritten atomically; a stopgap until the SQLCipher store."""

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
        return sorted(self._load())


def _encode(keys: PairingKeys) -> str:
    return json.dumps(keys.to_dict(), sort_keys=True)


def _decode(text: str) -> PairingKeys:
    data: dict[str, Any] = json.loads(text)
    return PairingKeys.from_dict(data)


class BondKeyStore(KeyStore):
    """Bumble's key store interface over a ``BondStore``, so Bumble reads and writes our bonds."""

    def __init__(self, bonds: BondStore) -> None:
        self._bonds = bonds

    async def delete(self, name: str) -> None:
        self._bonds.delete(name)

    async def update(self, name: str, keys: PairingKeys) -> None:
        self._bonds.put(name, _encode(keys))

    async def get(self, name: str) -> PairingKeys | None:
        text = self._bonds.get(name)
        return None if text is None else _decode(text)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        found = ((peer, self._bonds.get(peer)) for peer in self._bonds.peers())
        return [(peer, _decode(text)) for peer, text in found if text is not None]
