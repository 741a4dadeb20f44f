"""A real Mosquitto broker for tests: config in tmp_path, a free port, stop and restart.

Readiness is "the port accepts a TCP connection", polled with a deadline, never a
fixed sleep. CI needs the Debian packages ``mosquitto`` and ``mosquitto-clients``
(scripts/ci-setup.sh).
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# The durability lines every Mosquitto configuration of the project carries (docs/upload.md).
DURABLE = (
    "persistence true",
    "autosave_on_changes true",
    "autosave_interval 1",
    "max_queued_messages 1000000",
)
READY_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"mosquitto did not accept on port {port} in {timeout}s"
                ) from None
            time.sleep(0.02)


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path
    password_file: Path  # mosquitto_passwd format
    username: str
    password: str


class Broker:
    """One mosquitto process; ``stop`` and ``start`` again keep the port (outage tests)."""

    def __init__(
        self,
        directory: Path,
        tls: Tls | None = None,
        acl: Sequence[str] | None = None,
        port: int | None = None,
    ) -> None:
        """``acl``: lines of a Mosquitto ACL file for every client (e.g. ``topic read x/#``);
        ``port``: a given one (clients configured for it earlier), else a free one."""
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port() if port is None else port
        self.tls = tls
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        # Persistent like a real broker, so sessions survive the outage tests' restart; as
        # root, mosquitto would switch to user "mosquitto" and fail to save in tmp_path.
        # Saved after every change, not every 30 min (Mosquitto's default): what it
        # acknowledged then survives a kill -9 (docs/upload.md, "Broker durability").
        lines = [
            f"listener {self.port} 127.0.0.1",
            *DURABLE,
            f"persistence_location {directory}/",
            f"user {getpass.getuser()}",
            "set_tcp_nodelay true",
            "log_dest stderr",
        ]
        if tls is None:
            lines.append("allow_anonymous true")
        else:
            lines += [
                f"cafile {tls.ca_file}",
                f"certfile {tls.cert_file}",
                f"keyfile {tls.key_file}",
                "allow_anonymous false",
                f"password_file {tls.password_file}",
            ]
        if acl is not None:
            acl_file = directory / "mosquitto.acl"
            acl_file.write_text("\n".join(acl) + "\n")
            lines.append(f"acl_file {acl_file}")
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._process is None, "broker already running"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=log
            )
        try:
            wait_for_port(self.port)
        except TimeoutError as error:
            self.stop()
            raise TimeoutError(f"{error}; log: {self.log.read_text()[-2000:]}") from None

    def one_more_pass(self) -> None:
        """One QoS 1 publish answered: the broker's event loop has gone round once more
        since every PUBACK sent before, and so has saved what they acknowledged."""
        subprocess.run(
            ["mosquitto_pub", "-p", str(self.port), "-q", "1", "-t", "test/pass", "-m", "1"],
            check=True,
            timeout=10,
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None, "broker not running"
        return self._process.pid

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open and nothing is answered."""
        assert self._process is not None, "broker not running"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None, "broker not running"
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to save on the way out."""
        assert self._process is not None, "broker not running"
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


def make_tls(directory: Path, username: str = "agent", password: str = "s3cret-pw") -> Tls:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost, plus a password file."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "watchsync test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        password_file=directory / "passwd",
        username=username,
        password=password,
    )
    tls.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.password_file.touch(mode=0o600)
    subprocess.run(
        ["mosquitto_passwd", "-b", str(tls.password_file), username, password],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return tls


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path, make_tls(tmp_path / "pki"))
    running.start()
    yield running
    running.stop()


class Capture:
    """An independent ``mosquitto_sub -v -t '#'`` recording every message on the broker."""

    def __init__(self, broker: Broker, directory: Path) -> None:
        self.path = directory / "capture.txt"
        self._broker = broker
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.path.open("wb") as out:
            self._process = subprocess.Popen(
                [
                    "mosquitto_sub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self._broker.port),
                    "-V",
                    "mqttv311",
                    "-v",
                    "-t",
                    "#",
                    "-i",
                    "capture",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_subscribed()

    def _wait_subscribed(self) -> None:
        """Publish a marker until the capture shows it: from then on it sees everything."""
        self._mark(b"capture/ready")

    def _mark(self, topic: bytes) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while topic not in self.path.read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"mosquitto_sub never showed {topic.decode()}")
            subprocess.run(
                [
                    "mosquitto_pub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self._broker.port),
                    "-t",
                    topic.decode(),
                    "-m",
                    "1",
                ],
                check=True,
                timeout=10,
            )
            time.sleep(0.05)

    def stop(self) -> bytes:
        """Everything captured, up to an end marker: what was published before is in it."""
        assert self._process is not None
        self._mark(b"capture/end")
        self._process.terminate()
        self._process.wait(timeout=10)
        return self.path.read_bytes()
