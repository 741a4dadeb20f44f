"""A one-shot sync of one watch (``phoneagent sync``, the demo's backfill)."""

from __future__ import annotations

from phoneagent.config import SyncConfig
from phoneagent.services.agent import preferences_of
from phoneagent.store import AsyncStore
from phoneagent.sync import DeviceSync, SyncObserver
from phoneagent.transport import Transport


async def sync_once(
    store: AsyncStore,
    transport: Transport,
    address: str,
    *,
    config: SyncConfig,
    observer: SyncObserver,
) -> int:
    """Backfill ``address`` once; returns the watch's next seq (the sync cursor)."""
    sync = DeviceSync(
        address,
        transport,
        store,
        preferences_of(store.store),
        observer=observer,
        connect_timeout=config.connect_timeout,
    )
    return await sync.sync_once(scan_timeout=config.scan_timeout)
