"""Upload as docs/upload.md says, through the real CLIs and real brokers (issue 23):
``phoneagent sync`` uploads what it stored, and a new home region takes effect in a
running ``phoneagent run``."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneagent.errors import EXIT_UNREACHABLE, EXIT_USAGE
from phoneagent.upload import Endpoint
from tests.fleetrun import cloud_toml
from tests.mosquitto import Broker
from tests.processes import AGENT_CLI, ENV, Phone, Watch, kill, line
from tests.system.test_two_processes import PROFILE, on_air
from tests.system.test_upload import receiving, wait_for_samples

pytestmark = pytest.mark.system


@pytest.fixture
def us_broker(tmp_path: Path) -> Iterator[Broker]:
    """A second broker: the us region's, beside ``broker`` (eu's)."""
    running = Broker(tmp_path / "us-broker")
    running.start()
    yield running
    running.stop()


def local(region: str, b: Broker) -> Endpoint:
    return Endpoint(region=region, host="127.0.0.1", port=b.port, tls=False)


async def failing(phone: Phone, *args: str) -> tuple[int, str]:
    """A command expected to fail: its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        AGENT_CLI,
        *("--data-dir", str(phone.data_dir), "--transport", phone.transport, *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), phone.wait)
    finally:
        await kill(process)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def cloud_disclosed(phone: Phone, region: str) -> int:
    """Samples the disclosure ledger records as uploaded to ``region``'s cloud."""
    tables = json.loads(await phone("export"))["tables"]
    return sum(
        row["record_count"]
        for row in tables["disclosure_ledger"]
        if row["recipient"] == f"cloud:{region}"
    )


def uploaded(out: str) -> int:
    match = re.search(r"Uploaded (\d+) sample\(s\) to the eu cloud", out)
    assert match, out
    return int(match[1])


def stored(out: str) -> int:
    match = re.search(r"Stored (\d+) new sample\(s\)", out)
    assert match, out
    return int(match[1])


async def test_sync_uploads_what_it_stored_and_refuses_what_run_refuses__PR_CLOUD__PR_TLS(
    air: str, broker: Broker, tmp_path: Path
) -> None:
    phone, air_address = on_air(air, tmp_path)
    process, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=process)
        await phone("account", "create", *PROFILE)
        await phone("cloud", "enable")
        cloud_toml(phone.data_dir / "cloud.toml", broker.port)
        async with receiving(local("eu", broker), tmp_path / "cloud.db") as cloud:
            first = await phone("sync", address)
            held = (await phone.status(address))["samples"]
            assert stored(first) == held > 7000
            assert uploaded(first) == held  # everything it stored, nothing else
            await wait_for_samples(cloud, lambda rows: len(rows) == held, "the sync's upload")
            # The same upload position: a second sync sends only what it stored since.
            second = await phone("sync", address)
            assert uploaded(second) == stored(second)
        # The same ledger record as run's: each uploaded sample disclosed to cloud:eu.
        assert await cloud_disclosed(phone, "eu") == held + stored(second)

        broker.stop()  # a broker out of reach: stored all the same, and said so
        code, err = await failing(phone, "sync", address)
        assert code == EXIT_UNREACHABLE and "stay queued" in err, err
        assert "Traceback" not in err

        # Plaintext to a remote host: refused before anything is sent, by sync as by run.
        (phone.data_dir / "cloud.toml").write_text(
            '[regions.eu]\nhost = "mqtt.example"\ntls = false\n'
        )
        sync_code, sync_err = await failing(phone, "sync", address)
        run_code, run_err = await failing(phone, "run", "--no-dbus")
        assert sync_code == run_code == EXIT_USAGE, (sync_err, run_err)
        assert "plaintext" in sync_err and "Traceback" not in sync_err, sync_err
        assert sync_err.splitlines()[-1] == run_err.splitlines()[-1]
    finally:
        await kill(process)


async def test_a_new_home_region_takes_effect_in_the_running_agent__PR_REGION__PR_RETAIN(
    air: str, broker: Broker, us_broker: Broker, tmp_path: Path
) -> None:
    """``account update --region us`` while ``run`` runs: the backfill goes to us's broker
    too, and eu's bookkeeping stays, so ``cloud clear`` still erases both clouds."""
    phone, air_address = on_air(air, tmp_path)
    process, address = await Watch(tmp_path / "watch", ("--air", air_address)).start()
    try:
        await phone("pair", address, passkey_from=process)
        await phone("account", "create", *PROFILE)  # home region eu
        await phone("cloud", "enable")
        (phone.data_dir / "cloud.toml").write_text(
            f'[regions.eu]\nhost = "127.0.0.1"\nport = {broker.port}\ntls = false\n'
            f'[regions.us]\nhost = "127.0.0.1"\nport = {us_broker.port}\ntls = false\n'
        )
        async with (
            receiving(local("eu", broker), tmp_path / "eu.db") as eu,
            receiving(local("us", us_broker), tmp_path / "us.db") as us,
        ):
            async with phone.daemon(address) as agent:
                await wait_for_samples(eu, lambda rows: len(rows) > 7000, "the backfill in eu")
                moved = await phone("account", "update", "--region", "us")
                assert "in effect now" in moved, moved
                await line(agent, "cloud upload goes to us", wait=phone.daemon_wait, stderr=True)
                await wait_for_samples(us, lambda rows: len(rows) > 7000, "the backfill in us")
            # Both endpoints hold data and are erased; eu's upload positions bound its request.
            cleared = await phone("cloud", "clear", "--wait", "10")
            assert "0 erase request(s) pending confirmation" in cleared, cleared
            assert await eu.samples() == []  # us may hold a batch in flight when run stopped
        assert await cloud_disclosed(phone, "eu") > 7000
        assert await cloud_disclosed(phone, "us") > 7000
    finally:
        await kill(process)
