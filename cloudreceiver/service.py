"""The receiver as ``phoneagent cloud-receiver`` runs it: open the store, receive until
stopped, close the store. Kept apart so the command line only parses and prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cloudreceiver.receiver import serve_forever
from cloudreceiver.store import open_store
from phoneagent.upload.endpoints import Endpoint


async def run_receiver(
    endpoint: Endpoint,
    database: str | Path,
    *,
    group: str | None,
    identifier: str,
    say: Callable[[str], None],
) -> None:
    """Raises ``ReceiverError`` at once for a database that is away, wrong or too new."""
    store = await open_store(database, say=say)
    try:
        await serve_forever(endpoint, store, group=group, identifier=identifier, say=say)
    finally:
        await store.close()
