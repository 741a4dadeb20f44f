"""What every subcommand shares: global options, opening the store and the radio, exit codes.

Exit codes (documented in README.md and ``phoneagent --help``) come from the failures
themselves: every ``phoneagent.errors.AgentError`` carries its own (``phoneagent/errors.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from phoneagent.config import AgentConfig, load_config
from phoneagent.control import AgentNotRunningError, ControlError, request
from phoneagent.errors import EXIT_ERROR, EXIT_UNREACHABLE, AgentError
from phoneagent.instance import holding
from phoneagent.logs import AgentLogging
from phoneagent.paths import data_dir
from phoneagent.store import AsyncStore, ResolvedKey, Store, resolve_key, store_exists
from phoneagent.sync import StoreBonds
from phoneagent.transport import (
    PairingAgent,
    RefusingAgent,
    Transport,
    open_transport,
    parse_transport,
    start_loading,
)
from phoneagent.transport.errors import radio_errors
from protocol.address import Address


class CliError(click.ClickException):
    """A user-facing failure: a message on stderr and a documented exit code, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        # click reads ``exit_code``; it is a class attribute there, per instance here.
        self.exit_code = exit_code  # type: ignore[misc]


def as_cli_error(error: BaseException) -> CliError | None:
    """The message and exit code of a failure a person can act on; None for a bug (which
    keeps its traceback). Only the agent's own errors and the file system's qualify:
    other libraries' errors are wrapped into ``AgentError`` where they enter."""
    if isinstance(error, AgentError):
        return CliError(str(error), error.exit_code)
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return CliError(f"{where}{error.strerror}", EXIT_ERROR)
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

    def command(self, *words: str) -> str:
        """A ``phoneagent`` command line with this invocation's global options, for a
        message that tells the person what to run next."""
        options: list[str] = []
        for option, value in (
            ("--data-dir", self.data_dir_option),
            ("--key-file", self.key_file),
            ("--transport", self.transport_option),
        ):
            if value is not None:
                options += [option, str(value)]
        return shlex.join(["phoneagent", *options, *words])

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

    def open_store(self, resolved: ResolvedKey | None = None) -> Store:
        """``resolved``: the key when already asked for (``run`` retries on a full disk)."""
        directory = self.data_dir
        resolved = resolved or self.resolved_key()
        store = Store.open(directory, resolved.key, key_source=resolved.source)
        AgentLogging.start(directory)  # beside the store it describes, once it opened
        return store

    @asynccontextmanager
    async def session(
        self,
        *command: str,
        agent: PairingAgent | None = None,
        paired: Address | None = None,
        opened: Store | None = None,
    ) -> AsyncIterator[tuple[AsyncStore, Transport, AgentConfig]]:
        """The store (bonds inside it) and the configured radio, closed in the right order,
        with the data dir held by this process (``command``'s words name it to another:
        ``phoneagent.instance``; ``HeldError`` at once when another holds it).

        ``paired``: the watch the command needs, refused before any radio opens if unknown.
        ``opened``: the store a command opened itself while it held the data dir (``run``,
        which waits for room on a full disk: ``holding``); closed here all the same.
        """
        with contextlib.ExitStack() as held:
            if opened is None:
                held.enter_context(self.holding(*command))
            config = self.config()
            if opened is None:
                start_loading(self.transport_option or config.transport)
            store = AsyncStore(opened or self.open_store())
            try:
                if paired is not None and await store.get_device(paired) is None:
                    raise CliError(
                        f"{paired} is not paired: run {self.command('pair', paired)}",
                        EXIT_UNREACHABLE,
                    )
                with radio_errors():
                    transport = await self.radio_opener(store, config, agent)()
                    try:
                        yield store, transport, config
                    finally:
                        await transport.close()
            finally:
                await store.aclose()

    def holding(self, *command: str) -> contextlib.AbstractContextManager[None]:
        """The data dir held by this process (``command``'s words name it to another:
        ``phoneagent.instance``; ``HeldError`` at once when another holds it)."""
        return holding(self.data_dir, self.command(*command))

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


pass_agent = click.make_pass_decorator(AgentContext)


def sentence(clause: str) -> str:
    """A clause such as ``tell_running_agent``'s answer, printed on its own."""
    return clause[:1].upper() + clause[1:] + "."


def tell_running_agent(
    agent: AgentContext,
    *,
    done: str = "in effect now on connected watches",
    not_running: str = "the agent is not running; it applies this when it starts",
) -> str:
    """Ask a running ``phoneagent run`` to re-read the ledger and its paired watches.

    Returns how the change took effect (``done``, ``not_running`` or why it is unknown),
    for the sentence the command prints.
    """
    try:
        asyncio.run(request(agent.data_dir, {"op": "reload"}))
    except AgentNotRunningError:
        return not_running
    except ControlError as error:
        return f"the running agent did not confirm ({error}); restart it to be sure"
    return done
