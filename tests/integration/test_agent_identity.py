"""The agent's own identity: one per install, kept in the encrypted store, private on air
(resolvable private addresses the bonded watch resolves), and bonds that survive restarts
of both sides and the upgrade from the fixed address every install once shared."""

from __future__ import annotations

import json
from pathlib import Path

from bumble import hci
from bumble.link import LocalLink

from phoneagent.store import AsyncStore, DbKey, Store
from phoneagent.sync import DeviceSync, StoreBonds, fixed_preferences
from phoneagent.sync.bonds import IDENTITY_SETTING
from phoneagent.sync.discovery import pair_device
from phoneagent.sync.preferences import SyncPreferences
from phoneagent.transport import BumbleRadio, MemoryBondStore, radio_transport
from phoneagent.transport.identity import LEGACY_AGENT_ADDRESS, AgentIdentity, identity_of
from tests.integration.test_sync_engine import QueueAgent
from watchsim.peripheral.bumble_adapter import BONDS_FILE, new_link
from watchsim.testing import LoopbackWatch, start_loopback_watch

KEY = DbKey("0e" * 32)
WAIT = 30.0


def _kind(address: str) -> int:
    """The top two bits: 3 random static, 1 resolvable private, 0 non-resolvable."""
    return int(address[:2], 16) >> 6


def watch_bonded_peers(state_dir: Path) -> set[str]:
    """The peer addresses the watch keeps bonds for (its Bumble key store file)."""
    data = json.loads((state_dir / BONDS_FILE).read_text())
    return {peer for namespace in data.values() for peer in namespace}


class Side:
    """One run of the agent: a new store handle and radio over the same files."""

    def __init__(self, store: Store, radio: BumbleRadio) -> None:
        self.store, self.radio = store, radio

    @classmethod
    async def start(
        cls, link: LocalLink, directory: Path, watch: LoopbackWatch, **radio: str
    ) -> Side:
        store = Store.open(directory, KEY)
        bonds = StoreBonds(store)
        agent = QueueAgent(watch)
        return cls(store, await BumbleRadio.on_link(link, bonds=bonds, agent=agent, **radio))

    async def sync(self, address: str) -> int:
        astore = AsyncStore(self.store)
        preferences = fixed_preferences(SyncPreferences())
        sync = DeviceSync(address, radio_transport(self.radio), astore, preferences)
        position = await sync.sync_once(scan_timeout=WAIT)
        await self.radio.close()
        await astore.aclose()
        return position


def test_every_install_makes_its_own_identity_and_keeps_it(tmp_path: Path) -> None:
    identities = []
    for name in ("one", "two"):
        with Store.open(tmp_path / name, KEY) as store:
            identities.append(identity_of(StoreBonds(store)))
        with Store.open(tmp_path / name, KEY) as store:  # the same files, a new handle
            assert identity_of(StoreBonds(store)) == identities[-1]
    one, two = identities
    assert one.address != two.address and one.irk != two.irk
    assert one.address != LEGACY_AGENT_ADDRESS and _kind(one.address) == 3
    assert one.private and one.irk is not None and len(one.irk) == 16


async def test_private_addresses_resolve_to_the_bond_across_restarts(tmp_path: Path) -> None:
    """Pair, then restart both sides (new link, radio, store handle; same files): the agent
    connects from a new resolvable private address each time, never its identity, and
    the watch resolves it to the bond without a passkey."""
    watch_dir, agent_dir = tmp_path / "watch", tmp_path / "agent"
    link = new_link()
    watch = await start_loopback_watch(link, watch_dir, seed=5)
    side = await Side.start(link, agent_dir, watch)
    identity = side.radio.identity_address
    first_air = side.radio.air_address
    assert _kind(first_air) == 1 and first_air != identity
    await pair_device(radio_transport(side.radio), side.store, watch.address, scan_timeout=WAIT)
    assert watch_bonded_peers(watch_dir) == {identity}
    await side.sync(watch.address)
    await watch.stop()

    seen = {first_air}
    for _ in range(2):
        link = new_link()
        watch = await start_loopback_watch(link, watch_dir, seed=5)
        side = await Side.start(link, agent_dir, watch)
        side.radio.rpa_lifetime = 0  # a new address at every scan
        assert side.radio.identity_address == identity
        position = await side.sync(watch.address)  # no passkey: QueueAgent would wait
        assert position > 1 and watch.passkeys.empty()
        air = side.radio.air_address
        assert _kind(air) == 1 and air not in seen
        seen.add(air)
        assert watch_bonded_peers(watch_dir) == {identity}  # recognised, not re-bonded
        await watch.stop()


async def test_a_store_bonded_before_identities_keeps_the_old_address(tmp_path: Path) -> None:
    """The upgrade: a store with bonds and no identity (as every store was) adopts the
    fixed address, without privacy, so the watch bonded with it still recognises it."""
    watch_dir, agent_dir = tmp_path / "watch", tmp_path / "agent"
    link = new_link()
    watch = await start_loopback_watch(link, watch_dir, seed=6)
    # What the old agent was: the fixed address, no privacy (a placeholder bond keeps the
    # legacy identity in use); the bond it made goes into a store with no identity row.
    old = MemoryBondStore()
    old.set_identity(AgentIdentity(LEGACY_AGENT_ADDRESS).encode())
    old.put("C0:00:00:00:00:99", "{}")
    radio = await BumbleRadio.on_link(link, bonds=old, agent=QueueAgent(watch))
    assert radio.air_address == LEGACY_AGENT_ADDRESS
    with Store.open(agent_dir, KEY) as store:
        await pair_device(radio_transport(radio), store, watch.address, scan_timeout=WAIT)
        bond = old.get(watch.address)
        assert bond is not None
        store.put_bond(watch.address, bond.encode())
        assert store.get_setting(IDENTITY_SETTING) is None
    await radio.close()
    await watch.stop()

    link = new_link()
    watch = await start_loopback_watch(link, watch_dir, seed=6)
    side = await Side.start(link, agent_dir, watch)
    assert side.radio.identity_address == side.radio.air_address == LEGACY_AGENT_ADDRESS
    assert await side.sync(watch.address) > 1 and watch.passkeys.empty()
    assert watch_bonded_peers(watch_dir) == {LEGACY_AGENT_ADDRESS}
    await watch.stop()

    with Store.open(agent_dir, KEY) as store:  # its last bond gone: an identity of its own
        store.delete_bond(watch.address)
        fresh = identity_of(StoreBonds(store))
    assert fresh.private and fresh.address != LEGACY_AGENT_ADDRESS


async def test_an_anonymous_radio_scans_from_a_non_resolvable_address() -> None:
    """``phoneagent scan``'s radio: no store, no identity on air, and it cannot pair."""
    radio = await BumbleRadio.on_link(new_link())
    async with radio:
        assert radio.anonymous and _kind(radio.air_address) == 0
        address = hci.Address(radio.air_address, hci.Address.RANDOM_DEVICE_ADDRESS)
        assert not address.is_resolvable and not address.is_static
