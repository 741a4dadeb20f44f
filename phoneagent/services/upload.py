"""Which uploader an agent runs, and a broker's failures as the agent's errors.

The account's home region chooses the endpoint in ``cloud.toml``; a guest, or no
``cloud.toml``, means no uploader. Whether it may publish is still the privacy gate's
answer before every batch (PR-CLOUD, PR-GUEST, PR-REGION), on the consent state read
with the batch's chunk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiomqtt

from phoneagent.errors import AgentError, UnreachableError
from phoneagent.store import Store
from phoneagent.upload import (
    Endpoint,
    EndpointError,
    MqttRefusedError,
    Uploader,
    endpoints_path,
    load_endpoints,
)
from phoneagent.waiting import first_of

log = logging.getLogger(__name__)

MakeUploader = Callable[[Store, Endpoint], Uploader]


class BrokerUnreachableError(UnreachableError):
    """The broker could not be reached or stopped answering; what was not sent stays queued."""


class BrokerRefusedError(AgentError):
    """The broker refused a publish (an ACL, a quota): its operator has to act."""


@contextmanager
def broker_errors(pending: str) -> Iterator[None]:
    """aiomqtt's failures (and a broker that stopped answering) as the agent's errors, each
    message ending with ``pending``: what stays to be sent, and what sends it."""
    try:
        yield
    except TimeoutError:
        raise BrokerUnreachableError(f"the broker stopped answering; {pending}") from None
    except aiomqtt.MqttError as error:
        refused = isinstance(error, MqttRefusedError)
        kind = BrokerRefusedError if refused else BrokerUnreachableError
        raise kind(f"MQTT broker: {error}; {pending}") from error


def home_region(store: Store) -> str | None:
    """The account's home region; None for a guest or no account."""
    account = store.ledger.get_account()
    if account is None or account.guest:
        return None
    return account.region


def home_endpoint(data_dir: Path, store: Store) -> Endpoint | None:
    """The home region's endpoint in ``cloud.toml``; None without an account or the file.

    Raises ``EndpointError`` for a region missing from the file or a refused transport
    (PR-TLS: refused now, not when the first batch is due).
    """
    path = endpoints_path(data_dir)
    region = home_region(store)
    if region is None or not path.exists():
        return None
    endpoint = load_endpoints(path).for_region(region)
    endpoint.check_transport()
    return endpoint


def home_uploader(data_dir: Path, store: Store, make: MakeUploader = Uploader) -> Uploader | None:
    """An uploader for the home region's endpoint (``home_endpoint``), if there is one."""
    endpoint = home_endpoint(data_dir, store)
    return None if endpoint is None else make(store, endpoint)


class HomeUploader:
    """The uploader of a running agent, chosen again on every reload.

    It starts once an account and ``cloud.toml`` make it possible, and when the home region
    moves the new region's uploader replaces the old one (which records what it sent and
    stops). The old region's upload positions and erase requests stay in the ledger as they
    are: ``cloud clear`` still sends its erase requests there. ``Daemon`` runs and wakes it
    as it would one ``Uploader``.
    """

    def __init__(
        self,
        data_dir: Path,
        store: Store,
        *,
        make: MakeUploader = Uploader,
        say: Callable[[str], None] = log.warning,
    ) -> None:
        self._data_dir = data_dir
        self._store = store
        self._make = make
        self._say = say
        self.current: Uploader | None = None
        self._chosen = asyncio.Event()  # a new ``current``: the running one gives way

    def choose(self) -> None:
        """At the start: the home region's uploader, if any (``EndpointError`` if refused)."""
        self._use(home_uploader(self._data_dir, self._store, self._make))

    async def reload(self) -> None:
        """An account, cloud sync or ``cloud.toml`` new since the start, or a new home
        region, takes effect now; an endpoint that cannot be used is said, not raised."""
        try:
            uploader = await asyncio.to_thread(self._rechosen)
        except EndpointError as error:
            self._say(f"Cloud upload not started: {error}")
            return
        self._use(uploader)
        self.wake()  # consent or erase requests changed: the uploader looks again now

    def _rechosen(self) -> Uploader | None:
        """A new uploader when there is none yet or the home region moved; else None."""
        current = self.current
        if current is not None and home_region(self._store) in (None, current.endpoint.region):
            return None
        return home_uploader(self._data_dir, self._store, self._make)

    def _use(self, uploader: Uploader | None) -> None:
        if uploader is None:
            return
        if self.current is not None:
            region = uploader.endpoint.region
            self._say(f"The home region is now {region}: cloud upload goes to {region}.")
        self.current = uploader
        self._chosen.set()

    def wake(self) -> None:
        if self.current is not None:
            self.current.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Run the current uploader until ``stop``, the next one as soon as it is chosen."""
        while not stop.is_set():
            self._chosen.clear()
            uploader = self.current
            if uploader is None:
                await first_of(stop.wait(), self._chosen.wait())
                continue
            await self._run_until_replaced(uploader, stop)

    async def _run_until_replaced(self, uploader: Uploader, stop: asyncio.Event) -> None:
        ends = asyncio.Event()  # ``stop``, or another uploader chosen
        ending = asyncio.ensure_future(first_of(stop.wait(), self._chosen.wait()))
        ending.add_done_callback(lambda _: ends.set())
        try:
            await uploader.run(ends)
        finally:
            ending.cancel()
