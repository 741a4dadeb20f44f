"""``store check`` and ``store rescue``: a damaged database found, and what can be saved."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent
from phoneagent.control import AgentNotRunningError, ControlError, request
from phoneagent.errors import EXIT_ERROR, EXIT_USAGE
from phoneagent.store import DamagedStoreError, Store, store_exists
from phoneagent.store.rescue import LOST, rescue


@click.group("store")
def store_group() -> None:
    """The encrypted database itself: check it, rescue a damaged one."""


@store_group.command("check")
@pass_agent
def check_command(agent: AgentContext) -> None:
    """Check every page (HMAC, as on every open) and every b-tree; exit 6 when damaged."""
    with agent.open_store() as store:
        problems = store.integrity_problems()
        if problems:
            raise DamagedStoreError(store.path, f"{len(problems)} problem(s): {problems[0]}")
        click.echo(f"{store.path}: every page and every b-tree checked, no damage found.")


@store_group.command("rescue")
@click.confirmation_option(
    prompt="Copy the damaged store aside and replace it with what is still readable?"
)
@pass_agent
def rescue_command(agent: AgentContext) -> None:
    """Keep a copy of a damaged store, then save what is readable into a new one."""
    directory = agent.data_dir
    if not store_exists(directory):
        raise CliError(f"There is no store in {directory} to rescue.", EXIT_USAGE)
    if _agent_running(directory):
        raise CliError(
            "phoneagent run has this store open and would go on writing to the damaged "
            "file; stop it first, then rescue.",
            EXIT_ERROR,
        )
    resolved = agent.resolved_key()
    try:
        with Store.open(directory, resolved.key, key_source=resolved.source) as store:
            healthy = not store.integrity_problems()
    except DamagedStoreError:
        healthy = False
    if healthy:
        click.echo("The store is not damaged; nothing to rescue.")
        return
    report = rescue(directory, resolved.key, key_source=resolved.source)
    click.echo(f"The damaged file is kept as {report.backup} (0600, encrypted as before).")
    saved = ", ".join(f"{t.table} {t.saved:,}" for t in report.tables if t.saved)
    click.echo(f"Saved into a new encrypted store: {saved or 'nothing'}.")
    lost = [
        f"{t.table} {'an unknown number (unreadable count)' if t.lost is None else f'{t.lost:,}'}"
        for t in report.tables
        if t.lost != 0
    ]
    click.echo(f"Lost: {', '.join(lost)}." if lost else "Lost: nothing.")
    for address, ranges in report.lost_ranges.items():
        seqs = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges)
        click.echo(f"{address}: seqs {seqs} are now gaps ({LOST!r}); status counts them.")


def _agent_running(directory: Path) -> bool:
    try:
        asyncio.run(request(directory, {"op": "status"}))
    except AgentNotRunningError:
        return False
    except ControlError:
        pass  # it answered, if not with a status
    return True


COMMANDS = (store_group,)
