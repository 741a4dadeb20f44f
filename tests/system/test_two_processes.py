"""Watch and agent as separate processes on a ``watchsim air``, through their real CLIs.

The BlueZ VM runs the same scenarios on bless and bleak (``tests/bluez/test_cli_bluez.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneagent.upload import Endpoint
from tests.mosquitto import Broker, free_port
from tests.processes import (
    Phone,
    Watch,
    air_back,
    assert_backfilled,
    kill,
    pair_and_sync,
    pair_sync_kill_restart_resync,
    start_air,
    stop_air,
)
from tests.system.test_upload import receiving, wait_for_samples

PROFILE = (
    *("--region", "eu", "--birth-date", "1990-03-01", "--sex", "female"),
    *("--height", "168", "--weight", "61.2"),
)

pytestmark = pytest.mark.system


def on_air(air: str, tmp_path: Path) -> tuple[Phone, str]:
    """The agent on the air of the fixture, and the ``--air`` value for watches."""
    air_address = air.removeprefix("tcp-client:")
    return Phone(tmp_path / "agent", f"loopback:{air_address}"), air_address


async def test_pair_sync_run_kill_restart_resync(air: str, tmp_path: Path) -> None:
    phone, air_address = on_air(air, tmp_path)
    watch = Watch(tmp_path / "watch", ("--air", air_address))
    await pair_sync_kill_restart_resync(watch, phone)


async def test_numeric_comparison_pairing(air: str, tmp_path: Path) -> None:
    phone, air_address = on_air(air, tmp_path)
    watch = Watch(tmp_path / "watch", ("--air", air_address, "--pairing", "numeric"))
    process, address = await watch.start()
    try:
        await pair_and_sync(phone, process, address, numeric=True)
        assert_backfilled(await phone.status(address))
    finally:
        await kill(process)


async def test_one_agent_keeps_two_watch_processes_synced(air: str, tmp_path: Path) -> None:
    """Two watches, each its own process on the air, one ``phoneagent run`` for both."""
    phone, air_address = on_air(air, tmp_path)
    first, first_address = await Watch(tmp_path / "w1", ("--air", air_address)).start()
    second, second_address = await Watch(tmp_path / "w2", ("--air", air_address)).start()
    try:
        assert first_address != second_address
        for watch, address in ((first, first_address), (second, second_address)):
            await phone("pair", address, passkey_from=watch)
        async with phone.daemon(first_address, second_address):
            pass  # both reached live: their backfills are stored
        for address in (first_address, second_address):
            assert_backfilled(await phone.status(address))
    finally:
        await kill(first)
        await kill(second)


async def test_watch_and_agent_carry_on_after_the_air_restarts(tmp_path: Path) -> None:
    """The air process stops and starts again on its port: the watch rejoins it, the
    running agent opens a new radio and syncs on, and every seq is stored once."""
    port = free_port()
    air, air_address = await start_air(port)
    phone = Phone(tmp_path / "agent", f"loopback:{air_address}")
    watch, address = await Watch(tmp_path / "w1", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=watch)
        async with phone.daemon(address) as agent:
            await stop_air(air)
            air = await air_back(port, watch, agent, address, phone.daemon_wait)
        assert_backfilled(await phone.status(address))
    finally:
        await kill(watch)
        await kill(air)


async def test_cloud_sync_turned_on_while_the_agent_runs__PR_CLOUD(
    air: str, broker: Broker, tmp_path: Path
) -> None:
    """An account and cloud sync created while ``phoneagent run`` runs: it starts uploading."""
    phone, air_address = on_air(air, tmp_path)
    process, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=process)
        (phone.data_dir / "cloud.toml").write_text(
            f'[regions.eu]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = false\n'
        )
        endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
        async with (
            phone.daemon(address),
            receiving(endpoint, tmp_path / "cloud.db") as cloud,
        ):
            assert await cloud.samples() == []  # guest mode: nothing leaves the phone
            await phone("account", "create", *PROFILE)
            assert "in effect now" in await phone("cloud", "enable")
            await wait_for_samples(cloud, lambda rows: len(rows) > 7000, "the backfill uploaded")
    finally:
        await kill(process)
