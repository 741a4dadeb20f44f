"""The real CLIs as separate processes on the real stack: ``watchsim run --transport bluez``
on hci0 and ``phoneagent --transport bluez:hci1`` pair / sync / run / status, the same
scenarios as loopback's ``tests/system/test_two_processes.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bluez.conftest import Adapters
from tests.processes import Phone, Watch, kill, pair_and_sync, pair_sync_kill_restart_resync

pytestmark = pytest.mark.bluez_vm

# Each command starts Python and imports bleak, Bumble and SQLCipher on an emulated CPU, then
# scans, connects and pairs through bluetoothd: tens of seconds where loopback takes one.
WAIT = 90.0
WATCH = ("--transport", "bluez", "--adapter", "hci0")


def phone(tmp_path: Path) -> Phone:
    return Phone(tmp_path / "agent", "bluez:hci1", wait=WAIT)


@pytest.mark.timeout(480)
async def test_pair_sync_run_kill_restart_resync(adapters: Adapters, tmp_path: Path) -> None:
    watch = Watch(tmp_path / "watch", WATCH, wait=WAIT)
    await pair_sync_kill_restart_resync(watch, phone(tmp_path))


@pytest.mark.timeout(240)
async def test_numeric_comparison_pairing(adapters: Adapters, tmp_path: Path) -> None:
    watch = Watch(tmp_path / "watch", (*WATCH, "--pairing", "numeric"), wait=WAIT)
    process, address = await watch.start()
    try:
        assert address == adapters.watch
        await pair_and_sync(phone(tmp_path), process, address, numeric=True)
    finally:
        await kill(process)
