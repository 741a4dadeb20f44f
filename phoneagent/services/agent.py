"""The running agent, assembled in one place for ``phoneagent run``, the demo and the agent
fleet: sync engines on a radio (``Daemon``), the home region's uploader, and for ``run`` the
relays with the agent's socket, over which a command asks it to reload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from phoneagent.backoff import Backoff
from phoneagent.config import SyncConfig
from phoneagent.control import ControlError, ControlServer
from phoneagent.daemon import Daemon, Uploads
from phoneagent.errors import AgentError
from phoneagent.instance import SYNC_OP, sync_handler
from phoneagent.privacy import sync_preferences
from phoneagent.relays.service import RelayService
from phoneagent.services.pairing import PairingRelay
from phoneagent.services.upload import HomeUploader
from phoneagent.store import AsyncStore, Store, StoreFullError
from phoneagent.sync import PreferencesSource, Relays, SyncObserver
from phoneagent.transport import Transport

log = logging.getLogger(__name__)


class AlreadyServedError(AgentError):
    """Another agent answers on this data dir's socket."""


async def open_when_room(
    open_store: Callable[[], Store],
    data_dir: Path,
    config: SyncConfig,
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> Store | None:
    """The store, once its disk has room to open it; None if ``stop`` is set first.

    ``run`` started on a full disk waits as its engines do when the disk fills under them:
    with their back-off, saying "not storing" through ``say`` and to ``phoneagent status``
    (over the agent's socket, the store being unreadable), "storing again" once it opened.
    """
    waiting = ""  # why, while it waits

    async def status(_request: dict[str, Any]) -> dict[str, Any]:
        return {"watches": {}, "not_storing": waiting}

    server = ControlServer(data_dir, {"status": status})

    async def not_storing(error: BaseException, delay: float) -> None:
        nonlocal waiting
        if not waiting:
            await server.start()
        waiting = str(error)
        say(f"not storing: {error}; retrying in {delay:.1f}s")

    backoff = Backoff(config.backoff_initial, config.backoff_max)
    full = backoff.retrying(lambda error: isinstance(error, StoreFullError), not_storing, stop)
    try:
        async for attempt in full:
            with attempt:
                if stop.is_set():
                    return None
                store = await asyncio.to_thread(open_store)
    finally:
        await server.close()
    if waiting:
        say("storing again: the disk has space")
        log.warning("storing again: the disk has space (waited since the start)")
    return store


def preferences_of(store: Store) -> PreferencesSource:
    """The account and consent ledger, read at the start of every sync session."""
    return lambda: sync_preferences(store)


def agent_daemon(
    store: AsyncStore,
    transport: Transport,
    *,
    config: SyncConfig | None = None,
    observer: SyncObserver | None = None,
    uploads: Uploads | None = None,
    relays: Relays | None = None,
    reopen: Callable[[], Awaitable[Transport]] | None = None,
    seed: int | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Daemon:
    """The sync engines of every paired watch on ``transport``, under the store's ledger."""
    return Daemon(
        transport,
        store,
        preferences_of(store.store),
        config=config,
        observer=observer,
        seed=seed,
        uploader=uploads,
        relays=relays,
        clock=clock,
        reopen=reopen,
    )


@dataclass(frozen=True)
class RunningAgent:
    """``phoneagent run``'s parts; ``await daemon.run(stop)`` runs them."""

    daemon: Daemon
    relays: RelayService
    uploads: HomeUploader

    async def reload(self) -> None:
        """A command changed the ledger, the account or the pairings while the agent runs:
        engines, consent and profile (``Daemon.reload``), then the uploader (a new home
        region, or cloud upload possible since the start)."""
        await self.daemon.reload()
        await self.uploads.reload()


@asynccontextmanager
async def running_agent(
    data_dir: Path,
    store: AsyncStore,
    transport: Transport,
    *,
    config: SyncConfig,
    observer: SyncObserver,
    reopen: Callable[[], Awaitable[Transport]],
    dbus: bool,
    say: Callable[[str], None],
    pairing: PairingRelay | None = None,
) -> AsyncIterator[RunningAgent]:
    """The agent on an open store and radio: relays and their socket (``reload`` and
    ``status`` answered there), the home region's uploader (``EndpointError`` when its
    endpoint is refused) and the daemon. ``say``: notices for the person running it.
    ``pairing``: the radio's pairing agent, for ``pair`` while this runs."""
    relays = RelayService(store.store, data_dir, dbus=dbus)
    try:
        await relays.start()
    except ControlError as error:
        raise AlreadyServedError(str(error)) from error
    try:
        uploads = HomeUploader(data_dir, store.store, say=say)
        uploads.choose()
        daemon = agent_daemon(
            store,
            transport,
            config=config,
            observer=observer,
            uploads=uploads,
            relays=relays.hub,
            reopen=reopen,
        )
        agent = RunningAgent(daemon, relays, uploads)
        relays.reload_listeners.append(agent.reload)
        relays.status_parts["watches"] = daemon.report
        relays.control.serve(SYNC_OP, sync_handler(daemon))  # ``sync`` while this runs
        if pairing is not None:  # ``pair`` while this runs
            for op, handler in pairing.handlers(daemon).items():
                relays.control.serve(op, handler)
        yield agent
    finally:
        await relays.aclose()
