"""The agent's relay side as one unit: hub, sources and the local socket.

``phoneagent.daemon.Daemon`` starts it next to the sync engines and hands ``hub`` to
every ``DeviceSync``, which attaches each watch as it connects. A source whose bus is
missing is reported and skipped: the rest keeps working (injection always does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from dbus_fast import DBusError

from phoneagent.control import ControlServer
from phoneagent.relays.hub import RelayHub
from phoneagent.relays.permissions import RelayPolicy, load_policy
from phoneagent.relays.sources.bus import BusUnavailableError
from phoneagent.relays.sources.inject import InjectSource
from phoneagent.relays.sources.modem import ModemSource
from phoneagent.relays.sources.mpris import MprisSource
from phoneagent.relays.sources.notifications import NotificationSource
from phoneagent.store import Store

log = logging.getLogger(__name__)


class _Source(Protocol):
    async def stop(self) -> None: ...


class _StartableSource(_Source, Protocol):
    async def start(self) -> str | bool | None: ...


class RelayService:
    """``session_bus`` / ``system_bus``: D-Bus addresses (None: this session's, the system's).

    ``dbus=False`` runs without any D-Bus source (injection only).
    """

    def __init__(
        self,
        store: Store,
        data_dir: Path,
        *,
        hub: RelayHub | None = None,
        session_bus: str | None = None,
        system_bus: str | None = None,
        dbus: bool = True,
    ) -> None:
        self._store = store
        self.hub = hub or RelayHub()
        self._session_bus = session_bus
        self._system_bus = system_bus
        self._dbus = dbus
        self.inject = InjectSource(self.hub)
        self.sources: dict[str, str] = {}
        # Features left to injection, and why (the bus refused, no ModemManager, --no-dbus).
        self.skipped: dict[str, str] = {}
        # Also told on "reload" (the ledger changed): the daemon re-applies consent and
        # picks up newly paired watches.
        self.reload_listeners: list[Callable[[], Awaitable[None]]] = []
        # More of the running agent's state for "status" (the daemon's watches), by key.
        self.status_parts: dict[str, Callable[[], object]] = {}
        self._running: list[_Source] = []
        self.control = ControlServer(
            data_dir,
            {
                "notify": self.inject.notify,
                "close": self.inject.close,
                "call": self.inject.call,
                "music": self.inject.music,
                "status": self._status,
                "reload": self._reload,
            },
        )

    async def start(self) -> None:
        await self.reload()
        await self.control.start()
        if self._dbus:
            await self._start_sources()
        else:
            self.skipped = dict.fromkeys(("notifications", "music", "calls"), "--no-dbus")

    async def _start_sources(self) -> None:
        """Each source on its own: one the bus refuses stays off, the others still run."""
        session, system = self._session_bus, self._system_bus
        candidates: list[tuple[str, _StartableSource, str | None]] = [
            ("notifications", NotificationSource(self.hub, session), None),  # server|monitor
            ("music", MprisSource(self.hub, session), "mpris"),
            ("calls", ModemSource(self.hub, system), "modemmanager"),
        ]
        for feature, source, label in candidates:
            try:
                started = await source.start()
            except (BusUnavailableError, DBusError) as error:
                await source.stop()
                log.info("%s from injection only: %s", feature, error)
                self.skipped[feature] = str(error)
                continue
            if started is False:
                self.skipped[feature] = "no ModemManager on the system bus"
                continue
            self._running.append(source)
            self.sources[feature] = label or str(started)

    async def reload(self) -> RelayPolicy:
        """Re-read the ledger (a permission changed): effective on the watches at once."""
        policy = await asyncio.to_thread(load_policy, self._store)
        await self.hub.set_policy(policy)
        return policy

    async def _reload(self, _request: dict[str, Any]) -> dict[str, Any]:
        policy = await self.reload()
        for listener in self.reload_listeners:
            await listener()
        return {"granted": sorted(policy.granted)}

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        parts = {key: part() for key, part in self.status_parts.items()}
        return {**await self.inject.status(request), "sources": self.sources, **parts}

    async def aclose(self) -> None:
        await self.control.close()
        for source in self._running:
            await source.stop()
        self._running.clear()
        await self.hub.aclose()
