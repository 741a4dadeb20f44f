"""The agent's own address on Bumble radios (BlueZ uses the adapter's), kept apart from the
Bumble code so that reading the configuration does not load a Bluetooth stack."""

from __future__ import annotations

# A random static address (two top bits set): bonds only survive with a stable identity.
DEFAULT_AGENT_ADDRESS = "F0:5A:6E:00:00:01"
