"""``phoneagent demo``'s work: a loopback watch and the agent in one process, no hardware.

The watch (``watchsim``) runs on an in-process air of the kind ``watchsim air`` runs
(``new_link``); the agent talks to it through exactly the code paths it uses on a real
radio: pairing, the encrypted store, the sync engine. It needs both sides, hence a
harness; the command line (``phoneagent.cli.demo``) parses the options and imports this
when the demo runs.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import click

from phoneagent.cli.context import AgentContext
from phoneagent.cli.output import ProgressObserver, console, progress_bar
from phoneagent.config import SyncConfig
from phoneagent.logs import AgentLogging
from phoneagent.paths import database_path
from phoneagent.services.agent import agent_daemon
from phoneagent.services.sync import sync_once
from phoneagent.store import AsyncStore, DbKey, Store, create_key_file, read_key_file
from phoneagent.sync import Committed, StoreBonds, SyncObserver
from phoneagent.sync.discovery import pair_device
from phoneagent.transport import radio_transport
from phoneagent.transport.radio import BumbleRadio
from protocol.metrics import Metric
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import LoopbackWatch, start_loopback_watch

PAIRING_TIMEOUT = 30.0


class WatchDisplayAgent:
    """Reads the passkey off the simulated watch's display, as a user would, and says so."""

    def __init__(self, watch: LoopbackWatch) -> None:
        self._watch = watch

    async def _shown(self) -> int:
        async with asyncio.timeout(PAIRING_TIMEOUT):
            return await self._watch.passkeys.get()

    async def enter_passkey(self, peer: str) -> int | None:
        passkey = await self._shown()
        click.echo(f"The watch shows passkey {passkey:06d}; entering it.")
        return passkey

    async def confirm_number(self, peer: str, number: int) -> bool:
        shown = await self._shown()
        click.echo(f"The watch shows {shown:06d}, the phone {number:06d}.")
        return shown == number


class LivePrinter(SyncObserver):
    """One line per live commit with the newest value of each metric."""

    def __init__(self) -> None:
        self.latest: dict[Metric, float] = {}

    async def committed(self, commit: Committed) -> None:
        for sample in commit.samples:
            self.latest[sample.metric] = sample.value
        if commit.samples:
            shown = ", ".join(
                f"{m.key.replace('_', ' ')} {v:g}" + ("" if m.unit == m.key else f" {m.unit}")
                for m, v in sorted(self.latest.items())
            )
            click.echo(f"  live seq {commit.samples[-1].seq}: {shown}")


def _key(agent: AgentContext, directory: Path) -> DbKey:
    if agent.key_file is not None:
        return read_key_file(agent.key_file)
    path = directory / "demo.key"
    if path.exists():
        click.echo(f"Using the demo key file {path}.")
        return read_key_file(path)
    key = create_key_file(path)
    click.echo(
        f"Wrote the database key to {path} (demo only: a real agent keeps it in the "
        "keyring, an environment variable or a key file you choose)."
    )
    return key


async def run_demo(
    agent: AgentContext,
    directory: Path,
    hours: float,
    seconds: float,
    speed: float,
    start: datetime | None,
) -> None:
    out = console()
    store = Store.open(directory, _key(agent, directory))
    AgentLogging.start(directory)  # warnings go to the data dir's logs, as a real agent's
    astore = AsyncStore(store)
    watch_dir = Path(tempfile.mkdtemp(prefix="watchsim-demo-"))
    link = new_link()
    try:
        click.echo(f"Starting a loopback watch with {hours:g} h of history ...")
        watch = await start_loopback_watch(
            link,
            watch_dir,
            name="Demo Watch",
            backfill=timedelta(hours=hours),
            speed=speed,
            start_time=start,  # None: the watch's day is today's, up to now
        )
        try:
            radio = await BumbleRadio.on_link(
                link, bonds=StoreBonds(store), agent=WatchDisplayAgent(watch)
            )
            async with radio:
                transport = radio_transport(radio)
                click.echo(f"Pairing with {watch.address} ...")
                record = await pair_device(
                    transport, store, watch.address, scan_timeout=PAIRING_TIMEOUT
                )
                click.echo(
                    f"Paired with {record.name} ({record.model}, firmware {record.firmware})."
                )
                with progress_bar(out) as progress:
                    observer = ProgressObserver(progress, "backfill")
                    outcome = await sync_once(
                        directory,
                        astore,
                        transport,
                        watch.address,
                        config=SyncConfig(scan_timeout=PAIRING_TIMEOUT),
                        observer=observer,
                    )
                click.echo(f"Backfilled {observer.stored} samples.")
                if outcome.upload_failure is not None:  # a demo in an agent's data dir
                    click.echo(f"Cloud upload failed: {outcome.upload_failure}", err=True)
                if seconds > 0:
                    click.echo(f"Live values for {seconds:g} s (watch clock at {speed:g}x):")
                    live = agent_daemon(astore, transport, observer=LivePrinter())
                    stop = asyncio.Event()
                    asyncio.get_running_loop().call_later(seconds, stop.set)
                    await live.run(stop)
        finally:
            await watch.stop()
    finally:
        await astore.aclose()
        shutil.rmtree(watch_dir, ignore_errors=True)
    key_file = agent.key_file or directory / "demo.key"
    with Store.open(directory, read_key_file(key_file)) as reopened:
        total = sum(sum(c.values()) for c in reopened.counts().values())
    click.echo(f"Encrypted database: {database_path(directory)}")
    click.echo(f"It holds {total} samples. To look at them:")
    for words in (["status"], ["data", "--limit", "20"], ["devices"]):
        # The same data dir and key file; no radio is needed for these.
        command = shlex.join(
            ["phoneagent", "--data-dir", str(directory), "--key-file", str(key_file), *words]
        )
        click.echo(f"  {command}")
