"""The agent's configuration file, ``config.toml`` in the data directory.

Only operational settings live here (which radio, timeouts): it is plaintext, so
anything personal (profile, consent, bonds) belongs in the encrypted store instead.

    transport = "loopback:127.0.0.1:7000"   # or "bumble:usb:0", "bluez:hci0"
    agent_address = "F0:5A:6E:00:00:01"     # legacy only: see below

    [sync]
    connect_timeout = 20.0   # seconds for one connection attempt
    scan_timeout = 30.0      # seconds `phoneagent sync` waits for the watch to advertise
    backoff_initial = 1.0    # first retry delay after a failed session
    backoff_max = 60.0       # longest retry delay

The agent's identity on Bumble radios is not set here: each install makes its own and
keeps it in the encrypted store (``transport.identity``). ``agent_address`` is read only
by a store bonded before that, which adopts it (default: the fixed address every install
used then) so that its watches still recognise it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from phoneagent.errors import AgentUsageError
from phoneagent.transport.identity import LEGACY_AGENT_ADDRESS
from protocol.address import Address

CONFIG_NAME = "config.toml"
DEFAULT_TRANSPORT = "bluez"

T = TypeVar("T")
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(AgentUsageError, ValueError):
    """A configuration file that cannot be used; the message names the file and the fault."""


class SyncConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    connect_timeout: Seconds = 20.0
    scan_timeout: Seconds = 30.0
    backoff_initial: Seconds = 1.0
    backoff_max: Seconds = 60.0

    def __post_init__(self) -> None:
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoff_initial is above backoff_max")


class AgentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    transport: str = DEFAULT_TRANSPORT
    agent_address: Address = Address(LEGACY_AGENT_ADDRESS)
    sync: SyncConfig = SyncConfig()

    def __post_init__(self) -> None:
        if not self.transport or self.transport != self.transport.strip():
            raise ValueError("transport must be a non-empty string without surrounding spaces")


def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


def load_config(data_dir: Path) -> AgentConfig:
    """The file's settings over the defaults; no file means all defaults."""
    path = config_path(data_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return AgentConfig()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    return convert(read_toml(data, str(path), ConfigError), AgentConfig, str(path), ConfigError)


def _checked_types(kind: type, value: Any) -> Any:
    """msgspec's hook for the types it does not know: addresses are parsed where read."""
    if kind is Address:
        return Address(value)  # AddressError, a ValueError: reported at the key
    raise NotImplementedError(kind)


def read_toml(data: bytes, origin: str, error: Callable[[str], AgentUsageError]) -> Any:
    """The tables of TOML ``data``, untyped (``convert`` types them); ``origin`` names it."""
    try:
        return msgspec.toml.decode(data)
    except msgspec.DecodeError as fault:
        raise error(f"{origin}: not valid TOML: {fault}") from None


def convert(table: Any, kind: type[T], origin: str, error: Callable[[str], AgentUsageError]) -> T:
    """``table`` as a ``kind``, every key known and typed; else ``error`` naming ``origin``,
    the key and what was expected, in one line."""
    try:
        return msgspec.convert(table, kind, dec_hook=_checked_types)
    except msgspec.ValidationError as fault:
        message, _, where = str(fault).partition(" - at `$")
        key = where.rstrip("`").lstrip(".")
        message = message.replace(" | null`", "`").replace("`object`", "`table`")  # TOML's terms
        raise error(f"{origin}: {key}: {message}" if key else f"{origin}: {message}") from None
