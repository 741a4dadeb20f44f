"""Private D-Bus daemons for tests: a fresh bus per test, never the desktop's.

``private_bus()`` runs ``dbus-daemon`` with a minimal config of our own (no
service activation, so nothing on this machine gets started on the test bus) and
yields its address once the daemon has printed it. The ``session_bus`` fixture is
one such bus; tests that also need a "system" bus (ModemManager) start a second one.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={directory}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    {rules}
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_bus(rules: str = "") -> Iterator[str]:
    """A running dbus-daemon; yields its address. ``rules``: extra policy elements.

    Its socket lives in a short temporary directory: a pytest ``tmp_path`` can exceed
    the 108 bytes of a Unix socket address.
    """
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.fail("dbus-daemon is not installed: run scripts/ci-setup.sh")
    with (
        tempfile.TemporaryDirectory(prefix="dbus-") as name,
        _daemon(daemon, Path(name), rules) as address,
    ):
        yield address


@contextlib.contextmanager
def _daemon(daemon: str, directory: Path, rules: str) -> Iterator[str]:
    config = directory / "bus.conf"
    config.write_text(_CONFIG.format(directory=directory, rules=rules))
    process = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        address = process.stdout.readline().strip() if ready else ""
        if not address:
            process.kill()
            _, errors = process.communicate()
            pytest.fail(f"dbus-daemon printed no address within {START_TIMEOUT_S:g} s: {errors}")
        yield address
    finally:
        process.terminate()
        process.communicate(timeout=START_TIMEOUT_S)


@pytest.fixture
def session_bus() -> Iterator[str]:
    with private_bus() as address:
        yield address
