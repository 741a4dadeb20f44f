"""The whole product in one run: watch -> agent daemon (SQLCipher) -> Mosquitto -> receiver.

The daemon must upload what it syncs without being asked: every commit wakes the
uploader, and the receiver ends with exactly the watch's records, once each, under
pseudonyms only.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from bumble.link import LocalLink

from phoneagent.daemon import Daemon
from phoneagent.privacy import sync_preferences
from phoneagent.privacy.account import ProfileInput, create_account
from phoneagent.privacy.consent import set_consent
from phoneagent.upload import Endpoint, Uploader
from protocol.settings import Sex
from tests.integration.test_sync_engine import WAIT, Recorder, paired
from tests.mosquitto import Broker
from tests.system.test_upload import receiving, wait_for_samples

pytestmark = pytest.mark.system


async def test_daemon_uploads_what_it_syncs__PR_CLOUD(
    link: LocalLink, broker: Broker, tmp_path: Path
) -> None:
    watch, agent = await paired(link, tmp_path, hours=1)
    recorder = Recorder(watch)
    backfilled = max(recorder.samples)
    create_account(
        agent.store,
        ProfileInput("eu", date(1990, 5, 17), Sex.FEMALE, 168, 620),
        today=date(2026, 1, 1),
    )
    set_consent(agent.store, "cloud_sync", True)
    endpoint = Endpoint(region="eu", host="127.0.0.1", port=broker.port, tls=False)
    device = agent.store.get_device(watch.address)
    assert device is not None

    async with receiving(endpoint, tmp_path / "cloud.db") as cloud:
        stop = asyncio.Event()
        daemon = Daemon(
            agent.transport,
            agent.astore,
            lambda: sync_preferences(agent.store),
            uploader=Uploader(agent.store, endpoint),
            seed=1,
        )
        running = asyncio.create_task(daemon.run(stop))
        await wait_for_samples(
            cloud,
            lambda rows: sum(1 for row in rows if row[1] <= backfilled) == backfilled,
            f"the receiver holds seqs 1..{backfilled}",
        )
        stop.set()
        async with asyncio.timeout(WAIT):
            await running
        received = await cloud.samples()

    assert {row[0] for row in received} == {device.pseudonym}
    seqs = [row[1] for row in received]
    assert len(seqs) == len(set(seqs))
    for _, seq, metric, ts, raw in received:
        sample = recorder.samples[seq]
        assert (int(sample.metric), sample.timestamp, sample.raw) == (metric, ts, raw)
    await agent.stop()
    await watch.stop()
