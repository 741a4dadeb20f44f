"""A one-shot sync of one watch (``phoneagent sync``, the demo's backfill): backfill it, then
upload what was stored when cloud sync is on, as ``run`` would (docs/upload.md).

The upload goes through the same gate, upload position and ledger record as ``run``'s; its endpoint
is checked before the watch is asked for anything, so a refused one (PR-TLS) stops the
command before any work, as it stops ``run``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from phoneagent.bursts import collector_paused, quick_handoffs
from phoneagent.config import SyncConfig
from phoneagent.errors import AgentError
from phoneagent.services.agent import preferences_of
from phoneagent.services.upload import broker_errors, home_uploader
from phoneagent.store import AsyncStore
from phoneagent.sync import SyncObserver
from phoneagent.sync.engines import engine_for
from phoneagent.transport import Transport
from phoneagent.upload import UploadStats

_PENDING = "the samples stay queued for the next upload (phoneagent sync or run)"


@dataclass(frozen=True)
class SyncOutcome:
    """``position``: the sync position (the watch's next seq); ``uploaded``: None when
    nothing was to be uploaded (no cloud endpoint, or cloud sync off); ``upload_failure``:
    why the upload did not happen, for the caller to report after what was stored."""

    position: int
    region: str | None = None
    uploaded: UploadStats | None = None
    upload_failure: AgentError | None = None


async def sync_once(
    data_dir: Path,
    store: AsyncStore,
    transport: Transport,
    address: str,
    *,
    config: SyncConfig,
    observer: SyncObserver,
) -> SyncOutcome:
    """Backfill ``address`` once, then upload (``EndpointError`` before any of it)."""
    uploader = await asyncio.to_thread(home_uploader, data_dir, store.store)
    engine = engine_for(await store.get_device(address))
    sync = engine(
        address,
        transport,
        store,
        preferences_of(store.store),
        observer=observer,
        connect_timeout=config.connect_timeout,
    )
    # A backfill allocates about a million objects (Samples, which the collector never
    # untracks, each held until its group commits) and almost no cyclic garbage (965
    # objects in the whole of a 7-day sync): the collections they set off cost 0.17-0.25 s
    # of it (gc.callbacks) for nothing. Collections resume after, and take what is left.
    # The event loop decodes a group while the store thread commits the one before.
    with collector_paused(), quick_handoffs():
        position = await sync.sync_once(scan_timeout=config.scan_timeout)
    if uploader is None:
        return SyncOutcome(position)
    if await asyncio.to_thread(uploader.refusal) is not None:
        return SyncOutcome(position)  # cloud sync off, guest, ...: nothing leaves the phone
    region = uploader.endpoint.region
    try:
        with broker_errors(_PENDING):
            return SyncOutcome(position, region, await uploader.drain())
    except AgentError as failure:
        return SyncOutcome(position, region, upload_failure=failure)
