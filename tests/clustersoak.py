"""The soak run (tests/soak.py) on a 3-node NATS JetStream cluster with a receiver group.

Processes: the cluster (tests/natscluster.py), ``RECEIVERS`` ``phoneagent cloud-receiver
--jetstream`` processes sharing one durable consumer and one PostgreSQL database (a server
of the test's own, tests/postgres.py, so that it can really be restarted), ``watchsim
fleet --audit`` and ``phoneagent fleet`` (agents on MQTT 3.1.1). Faults on a schedule
(pacing, never synchronisation): the node leading the messages' stream is killed with
SIGKILL, ``cloud clear`` runs for ``erasing`` agents while it is down, PostgreSQL is
restarted (every receiver loses its connection mid-upload), one receiver is killed with
SIGKILL (for good: the others take over what it held unacknowledged), then the node is
started again. The verdict is the soak's account per watch, read from PostgreSQL, where a
watch whose user asked for an erasure is held to the erasure's bound (the receiver's
tombstone): nothing at or below it is kept, everything above it is, once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, LiteralString

import nats
import nats.errors
import nats.js.errors
import psycopg

from cloudreceiver.jetstream import STREAM
from phoneagent.upload.payload import EraseMessage
from protocol.metrics import Sample
from tests.fleetrun import AGENT_CLI, Proc, cloud_toml, spawn, start_watches
from tests.natscluster import NatsCluster
from tests.postgres import PrivateServer
from tests.soak import (
    HELD_QUERY,
    STARTUP_S,
    STOP_S,
    Report,
    Soak,
    SoakConfig,
    WatchReport,
    held_through,
)

RECEIVERS = 3
GROUP = "receivers"
CLEAR_WAIT_S = 30.0


@dataclass
class ClusterReport:
    soak: Report
    erased_kept: int  # receiver rows at or below an erasure's bound
    erasures_confirmed: int

    @property
    def ok(self) -> bool:
        return self.soak.ok and self.erased_kept == 0


class ClusterSoak(Soak):
    def __init__(self, config: SoakConfig, postgres: PrivateServer, erasing: int = 2) -> None:
        super().__init__(config)
        self.postgres = postgres
        self.database = postgres.url
        self.cluster = NatsCluster(config.directory / "nats")
        self.erasing = erasing
        self.receivers: list[Proc] = []
        self.clears: list[Proc] = []
        self.killed_node: int | None = None
        self._bounds: dict[str, int | None] = {}
        self._erased_kept = 0
        self.faults = {}

    async def run_cluster(self) -> ClusterReport:
        began = time.monotonic()
        config = self.config
        self.cluster.start()
        cloud_toml(self.cloud, self.cluster.mqtt_ports[0], mqtt="3.1.1")
        try:
            for n in range(RECEIVERS):
                self.receivers.append(await self._spawn_receiver(n))
            await self._consumer_exists()
            self.watches = await start_watches(
                self.fleet_dir,
                config.watches,
                "--audit",
                "--seed",
                str(config.seed),
                within=STARTUP_S,
            )
            await self._start_agents()
            self.say(f"cluster soak: {config.watches} watches and agents running")
            await self._cluster_faults(time.monotonic())
            await self._settle()
            confirmed = await self._await_clears()
            report = await self._redelivered(began, confirmed)
        finally:
            await self._stop()
        return report

    async def _redelivered(self, began: float, confirmed: int) -> ClusterReport:
        """The account once it holds, or at the settle deadline: what a killed receiver had
        fetched comes back only when its acknowledgement is overdue, after later records
        other receivers committed, so holding every watch's newest seq is not the end."""
        deadline = time.monotonic() + self.config.settle_s
        while True:
            report = await self._cluster_report(time.monotonic() - began, confirmed)
            if report.ok or time.monotonic() > deadline:
                return report
            await asyncio.sleep(1.0)  # polling with a deadline

    async def _spawn_receiver(self, n: int) -> Proc:
        args = [
            "cloud-receiver",
            "--broker",
            "127.0.0.1",
            "--port",
            str(self.cluster.mqtt_ports[n % len(self.cluster.mqtt_ports)]),
            "--mqtt",
            "3.1.1",
            "--group",
            GROUP,
            "--id",
            f"receiver-{n}",
            "--db",
            self.postgres.url,
        ]
        for server in self.cluster.servers:
            args += ["--jetstream", server]
        stderr = self.config.directory / f"receiver-{n}.stderr"
        return await spawn(f"cloud-receiver {n}", AGENT_CLI, args, stderr)

    async def _consumer_exists(self) -> None:
        """The stream keeps a message only for a consumer that exists (interest retention):
        the agents start once the group's durable consumer does."""
        connection = await nats.connect(self.cluster.servers)
        try:
            stream = connection.jetstream()
            async with asyncio.timeout(STARTUP_S):
                while True:
                    try:
                        await stream.consumer_info(STREAM, GROUP)
                        return
                    except nats.js.errors.NotFoundError:
                        await asyncio.sleep(0.1)  # polling with a deadline
        finally:
            await connection.close()

    async def _stream_leader(self) -> int:
        """The node leading ``$MQTT_msgs``, unless that is the agents' node (then another:
        the agents' own outage is the Mosquitto soak's fault)."""
        connection = await nats.connect(self.cluster.servers)
        try:
            info = await connection.jetstream().stream_info(STREAM)
        finally:
            await connection.close()
        leader = info.cluster.leader if info.cluster is not None else None
        node = int(leader.removeprefix("n")) if leader else 1
        return node if node != 0 else 1

    async def _cluster_faults(self, began: float) -> None:
        duration = self.config.duration_s
        schedule = [
            (0.2, self._kill_node),
            (0.3, self._clear),
            (0.4, self._restart_database),
            (0.5, self._kill_receiver),
            (0.7, self._restart_node),
        ]
        for at, fault in schedule:
            # Pacing, not synchronisation: the verdict does not depend on these times.
            await asyncio.sleep(max(0.0, began + duration * at - time.monotonic()))
            await fault()
        await asyncio.sleep(max(0.0, began + duration - time.monotonic()))

    async def _kill_node(self) -> None:
        self.killed_node = await self._stream_leader()
        self.say(f"cluster soak: kill -9 node {self.killed_node}")
        self.cluster.kill(self.killed_node)
        self.faults["node-kill"] = 1

    async def _restart_node(self) -> None:
        assert self.killed_node is not None
        self.say(f"cluster soak: node {self.killed_node} started again")
        self.cluster.start_node(self.killed_node, wait=False)

    async def _restart_database(self) -> None:
        self.say("cluster soak: PostgreSQL restarted")
        await asyncio.to_thread(self.postgres.restart)
        self.faults["database-restart"] = 1

    async def _kill_receiver(self) -> None:
        self.say("cluster soak: kill -9 receiver 0")
        await self.receivers[0].kill()
        self.faults["receiver-kill"] = 1

    async def _clear(self) -> None:
        for identity in self._identities()[: self.erasing]:
            self.clears.append(await self._spawn_clear(identity))
        self.faults["erasure"] = len(self.clears)

    async def _spawn_clear(self, identity: dict[str, Any]) -> Proc:
        args = ["--data-dir", identity["data_dir"], "--key-file", identity["key_file"]]
        args += ["cloud", "clear", "--wait", str(CLEAR_WAIT_S)]
        stderr = self.config.directory / f"clear-{identity['watch']}.stderr"
        return await spawn(f"cloud clear {identity['watch']}", AGENT_CLI, args, stderr)

    async def _await_clears(self) -> int:
        """How many users' erasures were confirmed. A ``cloud clear`` that saw no
        confirmation (its subscription may fall in the cluster's leader election, when NATS
        answers a SUBACK with a failure code) is run again once, as its message tells a
        user to: it listens again, and the retained confirmation is there."""
        confirmed = 0
        for n, identity in enumerate(self._identities()[: len(self.clears)]):
            if not await _confirmed(self.clears[n]):
                self.say(f"cluster soak: cloud clear again for {identity['watch']}")
                self.clears[n] = await self._spawn_clear(identity)
                self.faults["erasure-retried"] = self.faults.get("erasure-retried", 0) + 1
                if not await _confirmed(self.clears[n]):
                    continue
            confirmed += 1
        return confirmed

    async def _stop(self) -> None:
        for proc in (self.agents, *self.receivers, self.watches, *self.clears):
            if proc is not None:
                try:
                    await proc.stop(within=STOP_S)
                except TimeoutError:
                    self.say(f"cluster soak: {proc.name} did not stop within {STOP_S:g} s; killed")
                    await proc.kill()
        self.cluster.stop()

    def _query(self, query: LiteralString) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.postgres.url) as conn:
            return conn.execute(query).fetchall()

    def _receiver_held_through(self) -> dict[str, int]:
        return held_through(self._query(HELD_QUERY))

    async def _cluster_report(self, wall_s: float, confirmed: int) -> ClusterReport:
        self._bounds, self._erased_kept = {}, 0  # each account from the start
        # A second ``cloud clear`` is a second request, reaching further.
        for (body,) in self._query("SELECT body FROM tombstones"):
            for device, bound in EraseMessage.decode(str(body).encode()).bounds.items():
                known = self._bounds.get(device, -1)
                if bound is None or known is None:
                    self._bounds[device] = None  # the device was gone: every seq
                else:
                    self._bounds[device] = max(bound, known)
        return ClusterReport(await self._report(wall_s), self._erased_kept, confirmed)

    def _account(
        self,
        identity: dict[str, Any],
        audit: list[Sample],
        stored: dict[int, tuple[int, int, int]],
        gaps: list[tuple[int, int]],
        received: dict[int, tuple[int, int, int]],
    ) -> WatchReport:
        """A watch whose data was erased: nothing at or below the bound may be kept, and
        above it everything, once, as for any watch."""
        device = identity["device_pseudonym"]
        if device not in self._bounds:
            return super()._account(identity, audit, stored, gaps, received)
        bound = self._bounds[device]
        if bound is None:  # the device was gone: every seq
            bound = max([*stored, *received, -1])
        self._erased_kept += sum(1 for seq in received if seq <= bound)
        return super()._account(
            identity,
            [s for s in audit if s.seq > bound],
            {seq: c for seq, c in stored.items() if seq > bound},
            gaps,
            {seq: c for seq, c in received.items() if seq > bound},
        )


async def _confirmed(clear: Proc) -> bool:
    async with asyncio.timeout(CLEAR_WAIT_S + STOP_S):
        out, _ = await clear.process.communicate()
    return "0 erase request(s) pending" in out.decode()
