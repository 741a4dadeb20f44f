"""The receiver as ``phoneagent cloud-receiver`` runs it: open the store, receive until
stopped, close the store. Kept apart so the command line only parses and prints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from cloudreceiver.jetstream import serve_stream
from cloudreceiver.receiver import serve, serve_forever
from cloudreceiver.store import open_store
from phoneagent.upload.endpoints import Endpoint


async def run_receiver(
    endpoint: Endpoint,
    database: str | Path,
    *,
    group: str | None,
    identifier: str,
    say: Callable[[str], None],
    jetstream: Sequence[str] = (),
) -> None:
    """Raises ``ReceiverError`` at once for a database that is away, wrong or too new.

    ``jetstream``: the NATS servers of a JetStream cluster; the group is then a durable
    consumer of the stream its MQTT listener writes, not an MQTT shared subscription.
    """
    store = await open_store(database, say=say)

    def session(ready: asyncio.Event) -> Awaitable[None]:
        if jetstream:
            assert group is not None, "a JetStream receiver is always in a group"
            return serve_stream(
                jetstream, endpoint, store, group=group, identifier=identifier, ready=ready
            )
        return serve(endpoint, store, group=group, identifier=identifier, ready=ready)

    try:
        await serve_forever(session, identifier=identifier, say=say)
    finally:
        await store.close()
