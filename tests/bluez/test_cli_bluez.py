"""The real CLIs as separate processes on the real stack: ``watchsim run --transport bluez``
on hci0 and ``phoneagent --transport bluez:hci1`` pair / sync / run / status, the same
scenario as loopback's ``tests/system/test_two_processes.py``. Numeric comparison is
proven on BlueZ in-process (``test_pairing.py``) and through the CLI on loopback: one more
CLI run here would cost the VM a minute and a half.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bluez.conftest import Adapters
from tests.processes import (
    Phone,
    Watch,
    assert_exactly_once,
    kill,
    line,
    pair_sync_kill_restart_resync,
)

pytestmark = pytest.mark.bluez_vm

# Each command starts Python on an emulated CPU (5-15 s of imports), then scans, connects and
# pairs through bluetoothd: tens of seconds where loopback takes one.
WAIT = 90.0


@pytest.mark.timeout(420)
async def test_pair_sync_run_kill_restart_resync(adapters: Adapters, tmp_path: Path) -> None:
    watch = Watch(tmp_path / "watch", ("--transport", "bluez", "--adapter", "hci0"), wait=WAIT)
    phone = Phone(tmp_path / "agent", "bluez:hci1", wait=WAIT)
    # On BlueZ the watch is the adapter: its address is hci0's, not one from the state dir.
    assert await pair_sync_kill_restart_resync(watch, phone) == adapters.watch


@pytest.mark.timeout(420)
async def test_pair_while_run_is_live_through_bluetoothd(
    adapters: Adapters, tmp_path: Path
) -> None:
    """``pair`` while ``run`` holds the data dir: the running agent pairs through its own
    org.bluez.Agent1, which relays bluetoothd's passkey request to the ``pair`` command's
    terminal over the agent's socket; the agent then syncs the watch."""
    watch = Watch(tmp_path / "watch", ("--transport", "bluez", "--adapter", "hci0"), wait=WAIT)
    phone = Phone(tmp_path / "agent", "bluez:hci1", wait=WAIT)
    process, address = await watch.start()
    try:
        async with phone.daemon() as agent:
            paired = await phone("pair", address, passkey_from=process)
            assert "The running agent syncs it from now on." in paired, paired
            await line(agent, rf"{address}: live", wait=phone.daemon_wait, stderr=True)
        assert_exactly_once(await phone.status(address))
    finally:
        await kill(process)
