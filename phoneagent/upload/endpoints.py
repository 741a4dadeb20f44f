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

The file holds no personal data (it is operational, like config.toml); the broker
password stays in its own file so that it can be owner-only. An account's data goes
only to the endpoint of its home region (PR-REGION, checked by the uploader).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from phoneagent.errors import AgentUsageError
from phoneagent.upload.client import CheckedClient

ENDPOINTS_NAME = "cloud.toml"
DEFAULT_PREFIX = "watchsync"
_MAX_INFLIGHT = 64
_KEYS = {"host", "port", "tls", "ca_file", "username", "password_file", "allow_plaintext"}


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
        session, subscriptions and queued QoS 1 messages while the client is away.
        """
        self.check_transport()
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session_expiry
        client = kind(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=self.tls_context(),
            timeout=timeout,
            max_inflight_messages=_MAX_INFLIGHT,
            # Without it Nagle holds each window's last publish until the previous ACK.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
            clean_start=session_expiry == 0,
            properties=properties,
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


def load_endpoints(path: Path) -> Endpoints:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise EndpointError(f"{path} does not exist: no cloud endpoints are configured.") from None
    except tomllib.TOMLDecodeError as error:
        raise EndpointError(f"{path}: not valid TOML: {error}") from error
    return parse_endpoints(data, str(path), path.parent)


def parse_endpoints(data: dict[str, Any], origin: str, base: Path) -> Endpoints:
    """Relative file names are relative to ``base`` (the file's directory)."""
    unknown = sorted(set(data) - {"prefix", "regions"})
    if unknown:
        raise EndpointError(f"{origin}: unknown setting(s) {', '.join(unknown)}")
    prefix = data.get("prefix", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "+#$"):
        raise EndpointError(f"{origin}: prefix must be a topic without wildcards or '$'")
    regions = data.get("regions", {})
    if not isinstance(regions, dict):
        raise EndpointError(f"{origin}: [regions] must be a table")
    return Endpoints(
        prefix,
        {
            name: _endpoint(name, spec, f"{origin} [regions.{name}]", base, prefix)
            for name, spec in regions.items()
        },
    )


def _endpoint(name: str, spec: Any, origin: str, base: Path, prefix: str) -> Endpoint:
    if not isinstance(spec, dict):
        raise EndpointError(f"{origin}: must be a table")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise EndpointError(f"{origin}: unknown setting(s) {', '.join(unknown)}")
    host = spec.get("host")
    if not isinstance(host, str) or not host:
        raise EndpointError(f"{origin}: host is required")
    tls = _typed(spec, "tls", bool, True, origin)
    port = _typed(spec, "port", int, 8883 if tls else 1883, origin)
    password_file = _typed(spec, "password_file", str, None, origin)
    ca_file = _typed(spec, "ca_file", str, None, origin)
    password = None
    if password_file is not None:
        try:
            password = (base / password_file).read_text().strip()
        except OSError as error:
            raise EndpointError(f"{origin}: cannot read password_file: {error}") from error
    return Endpoint(
        region=name,
        host=host,
        port=port,
        tls=tls,
        ca_file=None if ca_file is None else base / ca_file,
        username=_typed(spec, "username", str, None, origin),
        password=password,
        allow_plaintext=_typed(spec, "allow_plaintext", bool, False, origin),
        prefix=prefix,
    )


def _typed(spec: dict[str, Any], key: str, kind: type[Any], default: Any, origin: str) -> Any:
    value = spec.get(key, default)
    if value is not None and (type(value) is not kind):
        raise EndpointError(f"{origin}: {key} must be a {kind.__name__}")
    return value
