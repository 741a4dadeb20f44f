"""Both ends and the air quieten Bumble's debug strings, in every Bumble module.

Each case runs in a fresh interpreter: the quietening is process-wide and permanent, so
in the test process it would already be installed by whichever test ran first.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = """
import logging, sys
from bumble import colors
from bumble.att import ATT_Handle_Value_Notification

stock = getattr(colors.color, "__wrapped__", colors.color)
loud = sorted(
    name for name, module in tuple(sys.modules.items())
    if name.startswith("bumble") and getattr(module, "color", None) is stock
)
assert not loud, f"modules still building colour strings: {loud}"
assert "bumble.host" in sys.modules and "bumble.controller" in sys.modules
pdu = ATT_Handle_Value_Notification(attribute_handle=0x2A, attribute_value=b"\\x01")
assert str(pdu) == "ATT_Handle_Value_Notification", str(pdu)
assert colors.color("x", "green") == "x"
logging.getLogger("bumble").setLevel(logging.DEBUG)
assert "attribute_handle" in str(pdu)
assert colors.color("x", "green") != "x"
print("quiet")
"""

AGENT = """
import asyncio, sys
from bumble.link import LocalLink
from phoneagent.transport import BumbleRadio

async def main():
    radio = await BumbleRadio.on_link(LocalLink())
    await radio.close()

asyncio.run(main())
assert not any(name.startswith("watchsim") for name in sys.modules), "agent imported watchsim"
"""

WATCH = """
import asyncio, sys, tempfile
from pathlib import Path
from watchsim.peripheral.bumble_adapter import new_link, start_on_link
from watchsim.peripheral.port import PairingMode

async def main():
    with tempfile.TemporaryDirectory() as state:
        watch = await start_on_link(new_link(), Path(state), mode=PairingMode.JUST_WORKS)
        await watch.stop()

asyncio.run(main())
assert not any(name.startswith("phoneagent") for name in sys.modules), "watch imported agent"
"""

AIR = """
import asyncio
from watchsim.air import Air

async def main():
    air = Air()
    await air.start()
    await air.close()

asyncio.run(main())
"""


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script) + CHECK],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_agent_radio_quietens_bumble() -> None:
    assert run(AGENT).strip() == "quiet"


def test_watch_adapter_quietens_bumble() -> None:
    assert run(WATCH).strip() == "quiet"


def test_air_quietens_bumble() -> None:
    """The air relays every packet of both ends: its controllers' strings were ~15% of it."""
    assert run(AIR).strip() == "quiet"
