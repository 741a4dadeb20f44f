"""``scan``, ``pair``, ``unpair``, ``devices`` and ``status``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import click

from phoneagent import control
from phoneagent.cli.context import (
    AgentContext,
    CliError,
    pass_agent,
    sentence,
    tell_running_agent,
)
from phoneagent.cli.output import emit, json_option
from phoneagent.cli.params import ADDRESS
from phoneagent.instance import HeldError
from phoneagent.services.pairing import Paired, pair_through_running_agent, unpair
from phoneagent.store import StoreFullError
from phoneagent.sync.discovery import pair_and_check_bond, scan
from protocol.address import Address


async def _ask_line(question: str) -> str:
    """A non-empty line typed after ``question`` on the terminal (or a pipe), read by the
    event loop: a thread blocked reading stdin kept Ctrl-C from ending ``pair`` until Enter
    was pressed (``asyncio.to_thread``'s worker is joined at exit, and a daemon thread
    holding stdin's lock aborts the interpreter). End of input is ``click.Abort``."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    try:
        fd = sys.stdin.fileno()
        loop.add_reader(fd, readable.set)
    except (AttributeError, OSError, ValueError):  # CliRunner's stdin, or a regular file:
        # a read that returns at once, so a thread is not waiting on anyone.
        text: str = await asyncio.to_thread(click.prompt, question, type=str, err=True)
        return text.strip()
    try:
        line = b""
        while not line.strip():
            click.echo(f"{question}: ", nl=False, err=True)
            line = b""
            while not line.endswith(b"\n"):
                await readable.wait()
                readable.clear()
                # One byte at a time: what follows the line stays for the next question.
                if not (byte := os.read(fd, 1)):
                    raise click.Abort()
                line += byte
    finally:
        loop.remove_reader(fd)
    return line.decode(errors="replace").strip()


def _passkey(text: str) -> bool:
    """Up to 6 ASCII digits ("²" is a digit to ``str.isdigit`` but not to ``int``)."""
    return text.isascii() and text.isdigit() and len(text) <= 6


class PromptingAgent:
    """Pairing questions asked on the terminal (stdin), without blocking the event loop."""

    async def enter_passkey(self, peer: str) -> int | None:
        # A typo is asked again: sent, it fails the pairing, and the watch may then refuse
        # another attempt for a while (SMP "repeated attempts").
        while not _passkey(text := await _ask_line(f"Passkey shown on {peer}")):
            click.echo("The passkey is the 6 digits the watch shows.", err=True)
        return int(text)

    async def confirm_number(self, peer: str, number: int) -> bool:
        answer = await _ask_line(f"Does {peer} show {number:06d}? [y/n]")
        return answer.lower() in ("y", "yes")


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@click.command("scan")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="How long to listen for advertisements.",
)
@click.option("--all", "show_all", is_flag=True, help="Also list devices that are not watches.")
@json_option
@pass_agent
def scan_command(agent: AgentContext, seconds: float, show_all: bool, as_json: bool) -> None:
    """List advertising watches (no database key needed: `devices` lists the paired ones)."""

    async def work() -> list[dict[str, object]]:
        async with agent.anonymous_radio() as transport:
            found = await scan(transport, seconds)
        return [
            {"address": s.address, "name": s.name, "rssi": s.rssi}
            for s in found
            if s.watch or show_all
        ]

    title = scan_title(show_all)
    emit(asyncio.run(work()), ("address", "name", "rssi"), title, as_json)


def scan_title(show_all: bool) -> str:
    return "Advertising devices" if show_all else "Watches"


@click.command("pair")
@click.argument("address", type=ADDRESS)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the watch to advertise, and then to connect to it.",
)
@click.option(
    "--bond",
    is_flag=True,
    help="Bond (passkey) even with a watch that does not ask for it (InfiniTime), so that "
    "its link is encrypted; our watch always bonds.",
)
@pass_agent
def pair_command(agent: AgentContext, address: Address, timeout: float, bond: bool) -> None:
    """Pair with a watch (enter its passkey or confirm its number) and remember it."""

    async def work() -> Paired:
        async with agent.session("pair", address, agent=PromptingAgent()) as (store, transport, _):
            paired = await pair_and_check_bond(
                transport, store.store, address, scan_timeout=timeout, bond=bond
            )
        return Paired.of(*paired)

    try:
        paired = asyncio.run(work())
    except HeldError as busy:  # a running ``phoneagent run`` pairs it instead, if it can
        there = pair_through_running_agent(
            busy, address, scan_timeout=timeout, bond=bond, asker=PromptingAgent()
        )
        paired = asyncio.run(there)
        click.echo(_paired_message(paired))
        click.echo("The running agent syncs it from now on.")
        return
    click.echo(_paired_message(paired))
    click.echo(
        f"To sync it run `{agent.command('sync', address)}` (once) or "
        f"`{agent.command('run')}` (keeps every paired watch synced)."
    )


def _paired_message(paired: Paired) -> str:
    named = f"{paired.address} ({paired.name or paired.model or 'watch'})"
    if paired.live_derived and not paired.bonded:
        return (
            f"Paired with {named}, unbonded: it keeps no history and needs no encryption,"
            " so only live values are stored (per minute, while connected) and they cross"
            " the air unencrypted; `pair --bond` encrypts the link (docs/infinitime.md)."
        )
    return f"Paired with {named}."


@click.command("unpair")
@click.argument("address", type=ADDRESS)
@click.option("--keep-data", is_flag=True, help="Forget the bond only; keep stored samples.")
@click.confirmation_option(prompt="Forget this watch (and its data unless --keep-data)?")
@pass_agent
def unpair_command(agent: AgentContext, address: Address, keep_data: bool) -> None:
    """Forget a watch: its bond, and (unless --keep-data) the device and all its samples."""
    with agent.open_store() as store:
        erasures = unpair(store, address, keep_data=keep_data)
    click.echo(f"Forgot {address}" + (" (data kept)." if keep_data else " and its data."))
    for request in erasures:
        click.echo(f"Cloud erasure requested from {request.endpoint}, due by the 90-day limit.")
    news = tell_running_agent(agent, done="the running agent stopped syncing it", not_running="")
    if news:  # nothing to say when no agent runs: nothing syncs it any more
        click.echo(sentence(news))


@click.command("devices")
@json_option
@pass_agent
def devices_command(agent: AgentContext, as_json: bool) -> None:
    """List the watches this agent knows."""
    with agent.open_store() as store:
        bonded = set(store.list_bonds())
        rows = [
            {
                "address": d.address,
                "name": d.name,
                "model": d.model,
                "serial": d.serial,
                "firmware": d.firmware,
                "personality": d.personality,
                "added": _when(d.added_at),
                "bonded": d.address in bonded,
            }
            for d in store.list_devices()
        ]
    columns = ("address", "name", "model", "firmware", "personality", "added", "bonded")
    emit(rows, columns, "Devices", as_json)


def _running_agent(agent: AgentContext) -> dict[str, Any]:
    """What a running ``phoneagent run`` says of itself ({} when none runs): what the store
    cannot tell, such as a disk too full to store anything more."""
    try:
        answer = asyncio.run(control.request(agent.data_dir, {"op": "status"}))
    except control.ControlError:  # not running, or it did not answer: the store's view only
        return {}
    return answer if isinstance(answer, dict) else {}


@click.command("status")
@json_option
@pass_agent
def status_command(agent: AgentContext, as_json: bool) -> None:
    """Per watch: stored samples, the sync position, recorded gaps and, while ``phoneagent
    run`` runs, what it is doing (a full disk, for one, shows there)."""
    answer = _running_agent(agent)
    watches = answer.get("watches")
    running: dict[str, dict[str, str]] = watches if isinstance(watches, dict) else {}
    try:
        opened = agent.open_store()
    except StoreFullError as error:
        if not (waiting := answer.get("not_storing")):
            raise
        # ``run`` started on this full disk and waits for room: say so, not only "full".
        raise CliError(
            f"phoneagent run is waiting, not storing: {waiting}", error.exit_code
        ) from error
    with opened as store:
        counts = store.counts()
        bonded = set(store.list_bonds())
        rows = []
        for device in store.list_devices():
            gaps = store.gaps(device.address)
            problem = store.sync_problem(device.address)
            rows.append(
                {
                    "address": device.address,
                    "name": device.name,
                    "bonded": device.address in bonded,
                    # "live per minute": the watch keeps no history (docs/infinitime.md).
                    "records": device.source,
                    "samples": sum(counts.get(device.address, {}).values()),
                    "next_seq": store.next_seq(device.address),
                    "gaps": len(gaps),
                    "gap_seqs": sum(g.last_seq - g.first_seq + 1 for g in gaps),
                    # Why the last sync session failed, until one succeeds.
                    "problem": "" if problem is None else f"{_when(problem[0])} {problem[1]}",
                    "agent": _agent_state(running.get(device.address)),
                }
            )
        database = str(store.path)
    if as_json:
        click.echo(json.dumps({"database": database, "devices": rows}, indent=2))
        return
    click.echo(f"Encrypted store: {database}")
    columns = (
        "address",
        "name",
        "bonded",
        "records",
        "samples",
        "next_seq",
        "gaps",
        "gap_seqs",
        "problem",
        "agent",
    )
    emit(rows, columns, "Sync status", False)


def _agent_state(watch: dict[str, str] | None) -> str:
    """ "live", "backing off (the disk holding ... is full ...)"; "" when no agent runs."""
    if watch is None:
        return ""
    if paused := watch.get("not_storing"):
        return f"not storing: {paused}"
    state, detail = watch.get("state", ""), watch.get("detail", "")
    return f"{state} ({detail})" if detail else state


COMMANDS = (scan_command, pair_command, unpair_command, devices_command, status_command)
