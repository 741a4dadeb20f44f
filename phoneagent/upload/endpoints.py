"""Per-region MQTT broker endpoints, from ``cloud.toml`` in the data directory.

    prefix = "watchsync"          # first topic level (optional)

    [regions.eu]
    host = "mqtt.eu.example.com"
    port = 8883                   # default 8883 with TLS, 1883 without
    tls = true                    # default true; server certificate and host name verified
    ca_file = "/etc/watchsync/eu-ca.pem"   # default: the system trust store
    username = "agent-3f9c"
    password_file = "/etc/watchsync/eu.pass"
    allow_plaintext = false       # tls = false to a non-loopback host needs this (PR-TLS)
    mqtt = "5"                    # or "3.1.1" for a broker that speaks only that (a NATS
                                  # or RabbitMQ cluster); it cannot say why it refused

The file holds no personal data (it is operational, like config.toml); the broker
password stays in its own file so that it can be owner-only. An account's data goes
only to the endpoint of its home region (PR-REGION, checked by the uploader).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from phoneagent.config import convert, read_toml
from phoneagent.errors import AgentUsageError
from phoneagent.upload.client import CheckedClient

ENDPOINTS_NAME = "cloud.toml"
DEFAULT_PREFIX = "watchsync"
_MAX_INFLIGHT = 64
MqttVersion = Literal["5", "3.1.1"]


class EndpointError(AgentUsageError, ValueError):
    """An endpoint that may not or cannot be used; the message says what to change."""


class PlaintextRefusedError(EndpointError):
    """PR-TLS: plaintext MQTT to a host outside loopback without the explicit opt-in."""


def is_loopback(host: str) -> bool:
    """Literal loopback addresses and ``localhost`` only: no DNS, which could be spoofed."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Endpoint:
    region: str
    host: str
    port: int
    tls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    allow_plaintext: bool = False
    prefix: str = DEFAULT_PREFIX
    mqtt: MqttVersion = "5"

    def check_transport(self) -> None:
        if not self.tls and not self.allow_plaintext and not is_loopback(self.host):
            raise PlaintextRefusedError(
                f"Refusing plaintext MQTT to {self.host}:{self.port} (region {self.region}): "
                "credentials and health data would cross the network unencrypted. Use TLS "
                "(tls = true) or, for a trusted network, set allow_plaintext = true."
            )

    def tls_context(self) -> ssl.SSLContext | None:
        """Server certificate and host name verified; ``ca_file`` replaces the system roots."""
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=None if self.ca_file is None else str(self.ca_file)
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def client(
        self,
        identifier: str | None = None,
        *,
        session_expiry: int = 0,
        timeout: float = 10.0,
        kind: type[aiomqtt.Client] = CheckedClient,
    ) -> aiomqtt.Client:
        """A not yet connected client; raises ``PlaintextRefusedError`` before any socket.

        Its ``publish`` raises ``PublishRefusedError`` when the broker refuses a message
        (``kind=aiomqtt.Client`` gives aiomqtt's own, for benchmarks' baselines).

        With ``session_expiry`` (seconds) and a fixed ``identifier`` the broker keeps the
        session, subscriptions and queued QoS 1 messages while the client is away (on
        MQTT 3.1.1, which has no expiry, until the session is taken with a clean one).
        """
        self.check_transport()
        persistent = session_expiry != 0
        if self.mqtt == "3.1.1":
            session: dict[str, Any] = {
                "protocol": aiomqtt.ProtocolVersion.V311,
                "clean_session": not persistent,
            }
        else:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry
            session = {
                "protocol": aiomqtt.ProtocolVersion.V5,
                "clean_start": not persistent,
                "properties": properties,
            }
        client = kind(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            tls_context=self.tls_context(),
            timeout=timeout,
            max_inflight_messages=_MAX_INFLIGHT,
            # Without it Nagle holds each window's last publish until the previous ACK.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
            **session,
        )
        client.pending_calls_threshold = _MAX_INFLIGHT * 2  # a full window is normal here
        return client


@dataclass(frozen=True, slots=True)
class Endpoints:
    prefix: str
    regions: dict[str, Endpoint]

    def for_region(self, region: str) -> Endpoint:
        try:
            return self.regions[region]
        except KeyError:
            known = ", ".join(sorted(self.regions)) or "none"
            raise EndpointError(
                f"No cloud endpoint is configured for region {region!r} (configured: {known})."
            ) from None


def endpoints_path(data_dir: Path) -> Path:
    return data_dir / ENDPOINTS_NAME


class _RegionFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[regions.NAME]`` table as written; file names still relative."""

    host: Annotated[str, msgspec.Meta(min_length=1)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    tls: bool = True
    ca_file: str | None = None
    username: str | None = None
    password_file: str | None = None
    allow_plaintext: bool = False
    mqtt: MqttVersion = "5"


class _EndpointsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prefix: str = DEFAULT_PREFIX
    # Tables converted one by one, so that a fault names its region.
    regions: dict[str, dict[str, Any]] = {}

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "+#$"):
            raise ValueError("prefix must be a topic without wildcards or '$'")


def load_endpoints(path: Path) -> Endpoints:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EndpointError(f"{path} does not exist: no cloud endpoints are configured.") from None
    except OSError as error:
        raise EndpointError(f"{path}: cannot read: {error.strerror}") from error
    return parse_endpoints(read_toml(data, str(path), EndpointError), str(path), path.parent)


def parse_endpoints(table: Any, origin: str, base: Path) -> Endpoints:
    """Relative file names are relative to ``base`` (the file's directory)."""
    written = convert(table, _EndpointsFile, origin, EndpointError)
    return Endpoints(
        written.prefix,
        {
            name: _endpoint(name, spec, f"{origin} [regions.{name}]", base, written.prefix)
            for name, spec in written.regions.items()
        },
    )


def _endpoint(name: str, table: dict[str, Any], origin: str, base: Path, prefix: str) -> Endpoint:
    spec = convert(table, _RegionFile, origin, EndpointError)
    password = None
    if spec.password_file is not None:
        try:
            password = (base / spec.password_file).read_text().strip()
        except OSError as error:
            raise EndpointError(f"{origin}: cannot read password_file: {error}") from error
    return Endpoint(
        region=name,
        host=spec.host,
        port=spec.port or (8883 if spec.tls else 1883),
        tls=spec.tls,
        ca_file=None if spec.ca_file is None else base / spec.ca_file,
        username=spec.username,
        password=password,
        allow_plaintext=spec.allow_plaintext,
        prefix=prefix,
        mqtt=spec.mqtt,
    )
