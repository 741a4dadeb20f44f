"""A real 3-node RabbitMQ cluster with its MQTT plugin, for the cluster benchmark.

The engine measured beside NATS (docs/scaling.md): three nodes on one host with their own
node names (``wsN@localhost``), ports, data and log dirs and one shared Erlang cookie (a
HOME of their own), formed from a classic peer list; the system's RabbitMQ (5672) is never
touched. MQTT publishes land in ``amq.topic``; ``quorum_queue`` declares a quorum queue
(replicated to the three nodes) bound to a topic pattern through the management API, so a
QoS 1 PUBACK means a majority holds the message. Readiness is every node's management API
listing three running nodes and an MQTT publish to it acknowledged, polled with a
deadline. Needs the Debian package ``rabbitmq-server``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.mosquitto import free_port, wait_for_port
from tests.natscluster import PUBLISH_ONE, stop_nodes

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
LIST_QUEUES = ("list_queues", "-q", "--no-table-headers", "name", "messages")
READY_TIMEOUT = 180.0
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


class RabbitCluster:
    """Three rabbitmq-server processes; ``kill`` and ``start_node`` one keep its state."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.names = [f"ws{i}-{os.getpid()}@localhost" for i in range(size)]
        self.mqtt_ports = [free_port() for _ in range(size)]
        self.http_ports = [free_port() for _ in range(size)]
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * size
        home = directory / "home"
        home.mkdir(exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (directory / "env.conf").write_text("")  # not the system's /etc/rabbitmq one
        (directory / "enabled_plugins").write_text("[rabbitmq_mqtt,rabbitmq_management].\n")
        peers = "".join(
            f"cluster_formation.classic_config.nodes.{i + 1} = {name}\n"
            for i, name in enumerate(self.names)
        )
        self._env: list[dict[str, str]] = []
        for i, name in enumerate(self.names):
            node = directory / f"n{i}"
            node.mkdir(exist_ok=True)
            (node / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = 127.0.0.1:{free_port()}\n"
                f"mqtt.listeners.tcp.default = 127.0.0.1:{self.mqtt_ports[i]}\n"
                "mqtt.allow_anonymous = true\n"
                f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.http_ports[i]}\n"
                "loopback_users = none\n"
                "cluster_formation.peer_discovery_backend = classic_config\n" + peers
            )
            self._env.append(
                {
                    **os.environ,
                    "HOME": str(home),
                    "RABBITMQ_NODENAME": name,
                    "RABBITMQ_DIST_PORT": str(free_port()),
                    "RABBITMQ_CONF_ENV_FILE": str(directory / "env.conf"),
                    "RABBITMQ_CONFIG_FILE": str(node / "rabbitmq.conf"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
                    "RABBITMQ_MNESIA_BASE": str(node / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(node / "log"),
                    "RABBITMQ_PID_FILE": str(node / "pid"),
                }
            )

    def start(self) -> None:
        for node in range(len(self.names)):
            self.start_node(node)
        self.wait_clustered()

    def start_node(self, node: int) -> None:
        assert self._processes[node] is None, f"node {node} already running"
        with (self.directory / f"n{node}.out").open("ab") as log:
            self._processes[node] = subprocess.Popen(
                [RABBITMQ_SERVER], stdout=log, stderr=log, env=self._env[node]
            )

    def wait_clustered(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for node, process in enumerate(self._processes):
            if process is None:
                continue
            while True:
                try:
                    running = [n for n in self.api(node, "GET", "nodes") if n.get("running")]
                    if len(running) == sum(p is not None for p in self._processes):
                        break
                except (OSError, ValueError):
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (self.directory / f"n{node}.out").read_text()[-2000:]
                    raise TimeoutError(f"rabbitmq node {node} not clustered; output: {tail}")
                time.sleep(0.5)
            wait_for_port(self.mqtt_ports[node], max(1.0, deadline - time.monotonic()))
            # The port accepts before the plugin's client id tracker has its quorum, and
            # CONNECT is answered "server unavailable" until then.
            while subprocess.run(
                [*PUBLISH_ONE, "-p", str(self.mqtt_ports[node])], capture_output=True, timeout=30
            ).returncode:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"rabbitmq node {node} refuses MQTT connections")
                time.sleep(0.5)

    def api(self, node: int, method: str, path: str, body: object = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_ports[node]}/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": _AUTH, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def quorum_queue(self, name: str, pattern: str) -> None:
        """A quorum queue on every node, bound to ``amq.topic`` with ``pattern``."""
        self.api(
            0,
            "PUT",
            f"queues/%2F/{name}",
            {"durable": True, "arguments": {"x-queue-type": "quorum"}},
        )
        self.api(0, "POST", f"bindings/%2F/e/amq.topic/q/{name}", {"routing_key": pattern})

    def leader(self, queue: str) -> int:
        """The node leading ``queue`` (management API)."""
        answer = self.api(self.running_node(), "GET", f"queues/%2F/{urllib.parse.quote(queue)}")
        return self.names.index(answer["leader"])

    def messages(self, queue: str) -> int:
        """Messages in ``queue`` now (rabbitmqctl; the management API's figures lag)."""
        node = self.running_node()
        listed = subprocess.run(
            [RABBITMQCTL, "-n", self.names[node], *LIST_QUEUES],
            env=self._env[node],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return sum(
            int(line.split()[1]) for line in listed.splitlines() if line.split()[:1] == [queue]
        )

    def pids(self) -> list[int]:
        """The Erlang VMs of the running nodes."""
        return [self._vm(n) for n, p in enumerate(self._processes) if p is not None]

    def running_node(self) -> int:
        return next(n for n, p in enumerate(self._processes) if p is not None)

    def _vm(self, node: int) -> int:
        return int((self.directory / f"n{node}" / "pid").read_text())

    def kill(self, node: int) -> None:
        """SIGKILL one node's Erlang VM: a crash, nothing flushed."""
        process = self._processes[node]
        assert process is not None, f"node {node} not running"
        os.kill(self._vm(node), 9)
        process.wait(timeout=30)
        self._processes[node] = None

    def stop(self) -> None:
        stop_nodes(self._processes, within=60)
