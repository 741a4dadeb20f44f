"""A full disk under the agent's data dir (issue 17, finding 3): a real 3 MB tmpfs, filled
with a file and freed again.

``sync`` says the disk is full and exits; ``run`` stops storing and acknowledging, says so
in ``status``, backs off and carries on by itself once space returns, also when it was
started on the full disk. Nothing unstored is
acknowledged: the store ends with every seq exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from pathlib import Path

import pytest

from phoneagent.backoff import Backoff
from phoneagent.errors import EXIT_ERROR
from phoneagent.store.db import connect
from phoneagent.upload.uploader import Uploader
from tests.disk import fill
from tests.mosquitto import Broker
from tests.processes import WAIT, Phone, Watch, assert_backfilled, kill, line, start_air
from tests.system.test_upload import (
    KEY,
    TIMEOUT,
    WATCH,
    endpoint_for,
    make_account,
    open_store,
    receiving,
    wait_for_samples,
    wait_until,
)
from tests.system.test_upload import fill as put_samples

pytestmark = pytest.mark.system

FULL = r"the disk holding .* is full"


async def test_sync_and_run_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    air, air_address = await start_air()
    phone = Phone(small_disk / "agent", f"loopback:{air_address}")
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    agent: asyncio.subprocess.Process | None = None
    try:
        await phone("pair", address, passkey_from=watch)
        # Retries a person would not wait for; the back-off itself is the engine's.
        (phone.data_dir / "config.toml").write_text(
            "[sync]\nbackoff_initial = 0.2\nbackoff_max = 1.0\n"
        )
        filler = fill(small_disk)

        sync = await phone._spawn("sync", address)
        _out, err = await asyncio.wait_for(sync.communicate(), phone.daemon_wait)
        message = err.decode()
        assert sync.returncode == EXIT_ERROR, message
        assert re.search(FULL, message) and "free some space" in message
        assert "Traceback" not in message

        filler.unlink()
        agent = await phone._spawn("run", "--no-dbus")
        await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        filler = fill(small_disk)  # live records keep coming: the next commits find no room
        await line(agent, rf"{address}: backing off \({FULL}", wait=phone.daemon_wait, stderr=True)
        status = json.loads(await phone("status", "--json"))
        (device,) = status["devices"]
        assert re.match(rf"not storing: {FULL}", device["agent"])

        filler.unlink()
        await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        agent.send_signal(signal.SIGTERM)
        await line(agent, "phoneagent stopped", wait=WAIT, stderr=True)
        assert await asyncio.wait_for(agent.wait(), WAIT) == 0
        assert_backfilled(await phone.status(address))  # each seq once: no ack unstored
        log = (phone.data_dir / "logs" / "phoneagent.log").read_text()
        assert "storing again: the disk has space" in log
    finally:
        if agent is not None:
            await kill(agent)
        await kill(watch)
        await kill(air)


async def test_run_started_on_a_full_disk_waits_for_room(small_disk: Path, tmp_path: Path) -> None:
    """Not an exit: ``run`` backs off until the store opens, says so on stderr and in
    ``status``, then syncs as usual."""
    air, air_address = await start_air()
    phone = Phone(small_disk / "agent", f"loopback:{air_address}")
    watch, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    agent: asyncio.subprocess.Process | None = None
    try:
        await phone("pair", address, passkey_from=watch)
        (phone.data_dir / "config.toml").write_text(
            "[sync]\nbackoff_initial = 0.2\nbackoff_max = 1.0\n"
        )
        filler = fill(small_disk)
        agent = await phone._spawn("run", "--no-dbus")
        await line(agent, rf"^not storing: {FULL}", wait=phone.daemon_wait, stderr=True)
        status = await phone._spawn("status")
        _out, err = await asyncio.wait_for(status.communicate(), phone.daemon_wait)
        assert status.returncode == EXIT_ERROR
        assert re.search(rf"phoneagent run is waiting, not storing: {FULL}", err.decode())

        filler.unlink()
        await line(agent, "^storing again: the disk has space", wait=phone.daemon_wait, stderr=True)
        await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        agent.send_signal(signal.SIGTERM)
        await line(agent, "phoneagent stopped", wait=WAIT, stderr=True)
        assert await asyncio.wait_for(agent.wait(), WAIT) == 0
        assert_backfilled(await phone.status(address))
    finally:
        if agent is not None:
            await kill(agent)
        await kill(watch)
        await kill(air)


class Heard(logging.Handler):
    """Sets ``event`` when a record matching ``pattern`` is logged (from the loop's thread)."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if re.search(self.pattern, record.getMessage()):
            self.event.set()


async def test_the_uploader_waits_out_a_full_disk(
    broker: Broker, small_disk: Path, tmp_path: Path
) -> None:
    """Its upload position cannot be committed: it retries with back-off, and carries on after."""
    store = open_store(small_disk / "agent")
    make_account(store)
    put_samples(store, 3000)
    checkpoint = connect(store.path, KEY)  # the store itself has no back door for it
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the next write must grow the file
    checkpoint.close()
    endpoint = endpoint_for(broker)
    heard = Heard(rf"upload lost \({FULL}")
    logger = logging.getLogger("phoneagent.upload.uploader")
    logger.addHandler(heard)
    stop = asyncio.Event()
    try:
        async with receiving(endpoint, tmp_path / "cloud.db") as cloud:
            filler = fill(small_disk)
            uploader = Uploader(store, endpoint, backoff=Backoff(0.05, 0.2))
            running = asyncio.create_task(uploader.run(stop))
            await asyncio.wait_for(heard.event.wait(), TIMEOUT)
            assert not running.done()
            filler.unlink()
            await wait_until(
                lambda: store.ledger.get_upload_position(WATCH, endpoint.region) == 2999,
                "the upload position committed once there is room",
            )
            await wait_for_samples(cloud, lambda rows: len(rows) == 3000, "every sample received")
            stop.set()
            await asyncio.wait_for(running, TIMEOUT)
    finally:
        stop.set()
        logger.removeHandler(heard)
        store.close()
