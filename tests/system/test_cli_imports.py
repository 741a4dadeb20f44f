"""The CLIs start without the Bluetooth stack they do not use.

Under emulation (the BlueZ VM) every imported module costs; Bumble alone was half of
``phoneagent``'s start-up. Only the radio that opens imports its stack; and the agent's
CLI loads neither the watch nor the harnesses and the receiver its commands run
(``docs/architecture.md``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.system


OTHER_SIDES = {
    "phoneagent.cli": ("watchsim", "harness", "cloudreceiver"),
    "watchsim.cli": ("phoneagent", "harness", "cloudreceiver"),
}


@pytest.mark.parametrize("module", sorted(OTHER_SIDES))
def test_cli_imports_no_bluetooth_stack(module: str) -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'bumble'" not in loaded and "'bless'" not in loaded, loaded
    assert "'click'" in loaded  # the probe saw the CLI's own imports
    for other in OTHER_SIDES[module]:
        assert f"'{other}'" not in loaded, loaded
