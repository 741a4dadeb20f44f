"""The encrypted store as the transport's ``BondStore``: bond keys never touch a plain file."""

from __future__ import annotations

from phoneagent.store import Store


class StoreBonds:
    """Adapts ``Store``'s byte blobs to the transport's text bonds (UTF-8 JSON)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, peer: str) -> str | None:
        blob = self._store.get_bond(peer)
        return None if blob is None else blob.decode("utf-8")

    def put(self, peer: str, keys: str) -> None:
        self._store.put_bond(peer, keys.encode("utf-8"))

    def delete(self, peer: str) -> None:
        self._store.delete_bond(peer)

    def peers(self) -> list[str]:
        return self._store.list_bonds()
