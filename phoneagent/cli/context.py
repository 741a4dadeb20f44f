"""What every subcommand shares: global options, opening the store and the radio, exit codes.

Exit codes (documented in README.md and ``phoneagent --help``):
  0 ok, 1 other error, 2 usage or configuration error, 3 missing or wrong database key,
  4 device not found or unreachable, 5 pairing lost (run ``phoneagent pair`` again),
  6 the database is damaged (run ``phoneagent store rescue``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import click
from bleak.exc import BleakError

from phoneagent.config import AgentConfig, ConfigError, load_config
from phoneagent.logs import AgentLogging
from phoneagent.paths import data_dir
from phoneagent.privacy import sync_preferences
from phoneagent.privacy.errors import PrivacyError
from phoneagent.relays.control import AgentNotRunningError, ControlError, request
from phoneagent.store import (
    AsyncStore,
    DamagedStoreError,
    NoKeyError,
    ResolvedKey,
    Store,
    StoreError,
    UnknownDeviceError,
    WrongKeyError,
    resolve_key,
    store_exists,
)
from phoneagent.sync import PreferencesSource, StoreBonds
from phoneagent.transport import (
    ConnectTimeoutError,
    PairingAgent,
    PairingLostError,
    RefusingAgent,
    Transport,
    TransportConfigError,
    open_transport,
    parse_transport,
)
from phoneagent.upload.client import PublishRefusedError
from phoneagent.upload.endpoints import EndpointError
from protocol.errors import ProtocolError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_KEY = 3
EXIT_UNREACHABLE = 4
EXIT_PAIRING_LOST = 5
EXIT_DAMAGED = DamagedStoreError.exit_code


class CliError(click.ClickException):
    """A user-facing failure: a message on stderr and a documented exit code, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        # click reads ``exit_code``; it is a class attribute there, per instance here.
        self.exit_code = exit_code  # type: ignore[misc]


def as_cli_error(error: BaseException) -> CliError | None:
    """The exit code a known failure maps to; None for a bug (which keeps its traceback)."""
    codes: tuple[tuple[type[BaseException], int], ...] = (
        (PublishRefusedError, EXIT_ERROR),
        (aiomqtt.MqttError, EXIT_UNREACHABLE),
        (EndpointError, EXIT_USAGE),
        (PrivacyError, EXIT_ERROR),
        (WrongKeyError, EXIT_KEY),
        (NoKeyError, EXIT_KEY),
        (UnknownDeviceError, EXIT_UNREACHABLE),
        (PairingLostError, EXIT_PAIRING_LOST),
        (ConnectTimeoutError, EXIT_UNREACHABLE),
        (ConfigError, EXIT_USAGE),
        (TransportConfigError, EXIT_USAGE),
        (DamagedStoreError, EXIT_DAMAGED),
        (StoreError, EXIT_ERROR),
        (BleakError, EXIT_UNREACHABLE),
        (ProtocolError, EXIT_UNREACHABLE),
        (TimeoutError, EXIT_UNREACHABLE),
    )
    for kind, code in codes:
        if isinstance(error, kind):
            message = str(error) or kind.__name__
            if isinstance(error, PublishRefusedError):
                message = (
                    f"MQTT broker: {message}. Nothing it refused counts as uploaded; check"
                    " the broker's access rules for this account (cloud.toml's username)."
                )
            elif isinstance(error, aiomqtt.MqttError):
                message = f"MQTT broker: {message} (is it running and reachable?)"
            return CliError(message, code)
    return None


def _prompt(message: str, confirm: bool) -> str:
    answer: str = click.prompt(message, hide_input=True, confirmation_prompt=confirm, err=True)
    return answer


@dataclass
class AgentContext:
    """Global options; the store and transport are opened per command, only when needed."""

    data_dir_option: Path | None
    key_file: Path | None
    transport_option: str | None

    @property
    def data_dir(self) -> Path:
        return data_dir(self.data_dir_option)

    def config(self) -> AgentConfig:
        return load_config(self.data_dir)

    def resolved_key(self) -> ResolvedKey:
        """The database key from --key-file, the environment, the keyring or a prompt."""
        directory = self.data_dir
        interactive = sys.stdin.isatty()
        return resolve_key(
            directory,
            key_file=self.key_file,
            prompt=_prompt if interactive else None,
            new_database=not store_exists(directory),
        )

    def open_store(self) -> Store:
        directory = self.data_dir
        resolved = self.resolved_key()
        store = Store.open(directory, resolved.key, key_source=resolved.source)
        AgentLogging.start(directory)  # beside the store it describes, once it opened
        return store

    @asynccontextmanager
    async def session(
        self, *, agent: PairingAgent | None = None
    ) -> AsyncIterator[tuple[AsyncStore, Transport, AgentConfig]]:
        """The store (bonds inside it) and the configured radio, closed in the right order."""
        config = self.config()
        store = AsyncStore(self.open_store())
        try:
            transport = await self.radio_opener(store, config, agent)()
            try:
                yield store, transport, config
            finally:
                await transport.close()
        finally:
            await store.aclose()

    @asynccontextmanager
    async def anonymous_radio(self) -> AsyncIterator[Transport]:
        """The configured radio without the store: no key asked, no identity shown (a
        Bumble radio scans from a non-resolvable private address; ``scan``)."""
        config = self.config()
        text = self.transport_option or config.transport
        transport = await open_transport(parse_transport(text))
        try:
            yield transport
        finally:
            await transport.close()

    def radio_opener(
        self, store: AsyncStore, config: AgentConfig, agent: PairingAgent | None = None
    ) -> Callable[[], Awaitable[Transport]]:
        """Opens the configured radio, bonds in ``store``: at start, and again after the
        radio's transport went away (``run``)."""
        text = self.transport_option or config.transport
        transport_config = parse_transport(text, legacy_address=config.agent_address)
        return functools.partial(
            open_transport,
            transport_config,
            bonds=StoreBonds(store.store),
            agent=agent or RefusingAgent(),
        )


def preferences_of(store: Store) -> PreferencesSource:
    """The account and consent ledger, read at the start of every sync session."""
    return lambda: sync_preferences(store)


pass_agent = click.make_pass_decorator(AgentContext)


def tell_running_agent(agent: AgentContext) -> str:
    """Ask a running ``phoneagent run`` to re-read the ledger and its paired watches.

    Returns how the change took effect, for the sentence the command prints.
    """
    try:
        asyncio.run(request(agent.data_dir, {"op": "reload"}))
    except AgentNotRunningError:
        return "the agent is not running; it applies this when it starts"
    except ControlError as error:
        return f"the running agent did not confirm ({error}); restart it to be sure"
    return "in effect now on connected watches"
