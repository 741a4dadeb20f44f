"""Rendering for listings (rich table or JSON) and sync progress, shared by the commands."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from phoneagent.sync import Committed, SyncObserver, SyncState

ADDRESS_COLUMNS = frozenset({"address", "device"})
PIPED_WIDTH = 1000

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


class _Console(Console):
    """Leaves a reader that closed stdout (``| head -1``) to the command group, which ends
    the command with exit 0; rich's own answer is a silent exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console() -> Console:
    return _Console()


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(list(rows), indent=2))
        return
    table = Table(title=title)
    for column in columns:
        # An address cut or folded is no address: it stays whole on any terminal.
        whole = column in ADDRESS_COLUMNS
        table.add_column(column.replace("_", " "), no_wrap=whole, min_width=17 if whole else None)
    for row in rows:
        # Values as Text: printed as they are. As strings rich would read them as markup
        # and emoji codes (":CD:" in an address became a disc; "[/]" in a name, an error).
        table.add_row(*(Text("" if row[c] is None else str(row[c])) for c in columns))
    # Piped, no terminal width applies: rich's default of 80 columns would cut values.
    out = console() if sys.stdout.isatty() else _Console(width=PIPED_WIDTH)
    out.print(table)


class ProgressObserver(SyncObserver):
    """A progress bar over seqs: from the sync position at the start to the watch's newest seq."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task: TaskID = progress.add_task(label, total=None)
        self._start: int | None = None
        self.stored = 0
        self.states: list[SyncState] = []

    def state_changed(self, device: str, state: SyncState, detail: str) -> None:
        self.states.append(state)
        finished = state is SyncState.STOPPED and SyncState.BACKFILL in self.states
        shown = "synced" if finished else state.value
        self._progress.update(self._task, description=f"{device}: {shown}")

    async def committed(self, commit: Committed) -> None:
        self.stored += commit.result.new
        position = commit.result.next_seq
        if self._start is None:
            self._start = position - commit.result.new - commit.result.duplicates
        total = max(commit.newest_seq + 1 - self._start, 1)
        self._progress.update(self._task, total=total, completed=min(position - self._start, total))


def progress_bar(target: Console | None = None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=target or console(),
        transient=False,
    )
