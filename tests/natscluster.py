"""A real 3-node NATS JetStream cluster with its MQTT listener, for tests and benchmarks.

Every node has its own ports on 127.0.0.1 (client, cluster route, MQTT, monitoring) and
its own JetStream directory under the test's tmp_path; the MQTT streams are replicated
to all three (``stream_replicas: 3``), so a QoS 1 PUBACK means two nodes hold the message.
Readiness is every node's ``/healthz`` answering ok (JetStream current), then the MQTT
streams made once through node 0 and reported with their replicas, polled with a deadline,
never a fixed sleep. Made once on purpose: MQTT clients arriving on several nodes of a new
cluster at once make nats-server 2.9.10 create the streams concurrently, and it ended up
with "replicas mismatch: current is 4" and a stream that stopped taking writes when one
node died (seen in the fault test). CI needs the Debian package ``nats-server``
(scripts/ci-setup.sh). The system's own NATS on 4222 is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mosquitto import free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
READY_TIMEOUT = 30.0
REPLICAS = 3
PUBLISH_ONE = ("mosquitto_pub", "-V", "mqttv311", "-q", "1", "-t", "cluster/ready", "-m", "1")
MQTT_STREAMS = ("$MQTT_msgs", "$MQTT_rmsgs", "$MQTT_sess")


@dataclass(frozen=True)
class NodePorts:
    client: int
    route: int
    mqtt: int
    monitor: int


class NatsCluster:
    """Three nats-server processes; ``kill`` and ``start`` one keep its ports and data."""

    def __init__(self, directory: Path, size: int = REPLICAS, settings: str = "") -> None:
        """``size`` 1 is a lone server; ``settings``: more lines for every node's file
        (``authorization { ... }`` for a test of permissions)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ports = [
            NodePorts(free_port(), free_port(), free_port(), free_port()) for _ in range(size)
        ]
        routes = ", ".join(f"nats-route://127.0.0.1:{p.route}" for p in self.ports)
        cluster = "cluster {{ name: watchsync, listen: 127.0.0.1:{}, routes: [{}] }}\n"
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * size
        for i, p in enumerate(self.ports):
            (directory / f"n{i}.conf").write_text(
                f"server_name: n{i}\n"
                f"listen: 127.0.0.1:{p.client}\n"
                f"http: 127.0.0.1:{p.monitor}\n"
                f"jetstream {{ store_dir: {json.dumps(str(directory / f'js{i}'))} }}\n"
                + (cluster.format(p.route, routes) if size > 1 else "")
                + f"mqtt {{ listen: 127.0.0.1:{p.mqtt}, stream_replicas: {size} }}\n"
                + settings
            )

    @property
    def mqtt_ports(self) -> list[int]:
        return [p.mqtt for p in self.ports]

    @property
    def servers(self) -> list[str]:
        """NATS URLs of every node (a receiver's JetStream connection)."""
        return [f"nats://127.0.0.1:{p.client}" for p in self.ports]

    def log(self, node: int) -> Path:
        return self.directory / f"n{node}.log"

    def start(self) -> None:
        for node in range(len(self.ports)):
            self.start_node(node, wait=False)
        self.wait_healthy()
        subprocess.run(
            [*PUBLISH_ONE, "-p", str(self.ports[0].mqtt)],
            check=True,
            timeout=READY_TIMEOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while self._mqtt_streams() != dict.fromkeys(MQTT_STREAMS, len(self.ports)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"MQTT streams not replicated: {self._mqtt_streams()}")
            time.sleep(0.1)

    def _mqtt_streams(self) -> dict[str, int]:
        """Each MQTT stream that has a leader, with its peers (leader and replicas)."""
        url = f"http://127.0.0.1:{self.ports[0].monitor}/jsz?accounts=true&streams=true"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                report = json.load(answer)
        except (OSError, ValueError):
            return {}
        return {
            stream["name"]: 1 + len(stream["cluster"].get("replicas", []))
            for account in report.get("account_details", [])
            for stream in account.get("stream_detail", [])
            if stream["name"] in MQTT_STREAMS and stream.get("cluster", {}).get("leader")
        }

    def start_node(self, node: int, *, wait: bool = True) -> None:
        assert self._processes[node] is None, f"node {node} already running"
        with self.log(node).open("ab") as log:
            self._processes[node] = subprocess.Popen(
                [NATS_SERVER, "-c", str(self.directory / f"n{node}.conf")], stdout=log, stderr=log
            )
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> None:
        """Every running node reports JetStream current (meta leader known, caught up)."""
        deadline = time.monotonic() + timeout
        for node, process in enumerate(self._processes):
            if process is None:
                continue
            url = f"http://127.0.0.1:{self.ports[node].monitor}/healthz"
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log(node).read_text()[-2000:]
                    raise TimeoutError(f"nats node {node} not healthy in {timeout}s; log: {tail}")
                time.sleep(0.1)

    def running(self, node: int) -> bool:
        return self._processes[node] is not None

    def pid(self, node: int) -> int:
        process = self._processes[node]
        assert process is not None, f"node {node} not running"
        return process.pid

    def kill(self, node: int) -> None:
        """SIGKILL one node: a crash, nothing flushed."""
        process = self._processes[node]
        assert process is not None, f"node {node} not running"
        process.kill()
        process.wait(timeout=10)
        self._processes[node] = None

    def stop(self) -> None:
        stop_nodes(self._processes, within=10)


def stop_nodes(processes: list[subprocess.Popen[bytes] | None], within: float) -> None:
    """Each running node asked to stop, killed if it has not within ``within`` s."""
    for node, process in enumerate(processes):
        if process is None:
            continue
        process.terminate()
        try:
            process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        processes[node] = None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(json.load(answer).get("status") == "ok")
    except (OSError, urllib.error.URLError, ValueError):
        return False


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    running = NatsCluster(tmp_path / "nats")
    running.start()
    yield running
    running.stop()
