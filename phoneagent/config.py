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

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from phoneagent.errors import AgentUsageError
from phoneagent.transport.identity import LEGACY_AGENT_ADDRESS
from protocol.address import Address, AddressError

CONFIG_NAME = "config.toml"
DEFAULT_TRANSPORT = "bluez"


class ConfigError(AgentUsageError, ValueError):
    """A configuration file that cannot be used; the message names the file and the fault."""


@dataclass(frozen=True, slots=True)
class SyncConfig:
    connect_timeout: float = 20.0
    scan_timeout: float = 30.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    transport: str = DEFAULT_TRANSPORT
    agent_address: str = LEGACY_AGENT_ADDRESS
    sync: SyncConfig = SyncConfig()


def config_path(data_dir: Path) -> Path:
    return data_dir / CONFIG_NAME


def load_config(data_dir: Path) -> AgentConfig:
    """The file's settings over the defaults; no file means all defaults."""
    path = config_path(data_dir)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return AgentConfig()
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error
    return parse_config(data, str(path))


def parse_config(data: dict[str, Any], origin: str) -> AgentConfig:
    known = {"transport", "agent_address", "sync"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {', '.join(unknown)}")
    texts: dict[str, str] = {}
    for name in ("transport", "agent_address"):
        if name in data:
            value = data[name]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{origin}: {name} must be a non-empty string")
            texts[name] = value.strip()
    if "agent_address" in texts:
        try:
            texts["agent_address"] = Address(texts["agent_address"])
        except AddressError as error:
            raise ConfigError(f"{origin}: agent_address: {error}") from None
    config = AgentConfig(
        transport=texts.get("transport", DEFAULT_TRANSPORT),
        agent_address=texts.get("agent_address", LEGACY_AGENT_ADDRESS),
    )
    section = data.get("sync", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{origin}: [sync] must be a table")
    timing = {f.name for f in fields(SyncConfig)}
    unknown = sorted(set(section) - timing)
    if unknown:
        raise ConfigError(f"{origin}: unknown [sync] setting(s) {', '.join(unknown)}")
    values: dict[str, float] = {}
    for name, value in section.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{origin}: [sync] {name} must be a positive number of seconds")
        values[name] = float(value)
    sync = replace(config.sync, **values)
    if sync.backoff_initial > sync.backoff_max:
        raise ConfigError(f"{origin}: [sync] backoff_initial is above backoff_max")
    return replace(config, sync=sync)
