"""The encrypted store as the transport's ``BondStore``: bond keys and the agent's identity
never touch a plain file."""

from __future__ import annotations

from phoneagent.store import Store

# The settings row holding the agent's identity (``transport.identity``).
IDENTITY_SETTING = "agent_identity"


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

    def identity(self) -> str | None:
        return self._store.get_setting(IDENTITY_SETTING)

    def set_identity(self, identity: str) -> None:
        self._store.set_setting(IDENTITY_SETTING, identity)
