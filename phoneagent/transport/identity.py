"""The agent's own Bluetooth identity on Bumble radios (BlueZ uses the adapter's), kept
apart from the Bumble code so that reading it does not load a Bluetooth stack.

Every install has its own: a random static identity address and an identity resolving
key (IRK), made on first use and kept beside the bonds in the encrypted store, because a
bond means nothing without the identity the watch bonded with. The IRK is distributed at
pairing; on air the radio then shows only resolvable private addresses, which the bonded
watch resolves to the identity and nobody else can link (``docs/security.md``).

Before identities lived in the store every install used ``LEGACY_AGENT_ADDRESS`` (or the
``agent_address`` of its ``config.toml``) and gave watches an all-zero IRK. A store that
holds bonds but no identity adopts that address, without privacy, so that watches bonded
before still recognise it; once its last bond is gone it gets an identity of its own.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from phoneagent.transport.bonds import BondStore
from phoneagent.transport.errors import TransportConfigError

# What every install used before it had an identity of its own: public, hence only for
# stores bonded under it.
LEGACY_AGENT_ADDRESS = "F0:5A:6E:00:00:01"
IRK_SIZE = 16


class IdentityError(TransportConfigError):
    """A stored identity that cannot be used (the store's row is damaged): the radio does
    not open rather than show another identity, which would orphan every bond."""


def random_static_address() -> str:
    """Top two bits 11, the other 46 random (Core Vol 6 Part B 1.3.2.1)."""
    return ":".join(f"{b:02X}" for b in (0xC0 | secrets.randbelow(64), *secrets.token_bytes(5)))


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """``irk`` None: an adopted legacy identity, which keeps its address on air."""

    address: str
    irk: bytes | None = field(default=None, repr=False)

    @property
    def private(self) -> bool:
        """Whether the radio shows resolvable private addresses instead of ``address``."""
        return self.irk is not None

    @classmethod
    def generate(cls) -> AgentIdentity:
        return cls(random_static_address(), secrets.token_bytes(IRK_SIZE))

    def encode(self) -> str:
        irk = None if self.irk is None else self.irk.hex()
        return json.dumps({"address": self.address, "irk": irk})

    @classmethod
    def decode(cls, text: str) -> AgentIdentity:
        try:
            data: Any = json.loads(text)
            address, irk = data["address"], data["irk"]
            if not isinstance(address, str) or not (irk is None or isinstance(irk, str)):
                raise TypeError("address must be text, irk hex text or null")
            key = None if irk is None else bytes.fromhex(irk)
        except (ValueError, TypeError, KeyError) as error:
            raise IdentityError(f"the stored agent identity is damaged: {error}") from error
        if key is not None and len(key) != IRK_SIZE:
            raise IdentityError(f"the stored agent IRK has {len(key)} bytes, not {IRK_SIZE}")
        return cls(address, key)


def identity_of(bonds: BondStore, legacy_address: str = LEGACY_AGENT_ADDRESS) -> AgentIdentity:
    """The install's identity, made (and stored with ``bonds``) when it has none yet.

    A store bonded before identities existed adopts ``legacy_address``; a legacy identity
    with no bond left is replaced by a private one of its own.
    """
    text = bonds.identity()
    if text is not None:
        identity = AgentIdentity.decode(text)
        if identity.private or bonds.peers():
            return identity
    elif bonds.peers():
        identity = AgentIdentity(legacy_address.upper())
        bonds.set_identity(identity.encode())
        return identity
    identity = AgentIdentity.generate()
    bonds.set_identity(identity.encode())
    return identity
