"""The CLIs start without the Bluetooth stack they do not use.

Under emulation (the BlueZ VM) every imported module costs; Bumble alone was half of
``phoneagent``'s start-up. Only the radio that opens imports its stack; and the agent's
CLI loads neither the watch nor the harnesses and the receiver its commands run
(``docs/architecture.md``). A command loads its own module of ``phoneagent.cli`` only.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import pytest

import phoneagent.cli
from phoneagent.cli import COMMAND_MODULES, main

pytestmark = pytest.mark.system


OTHER_SIDES = {
    "phoneagent.cli": ("watchsim", "harness", "cloudreceiver"),
    "watchsim.cli": ("phoneagent", "harness", "cloudreceiver"),
}


def _python(code: str) -> str:
    """What a fresh interpreter running ``code`` prints."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("module", sorted(OTHER_SIDES))
def test_cli_imports_no_bluetooth_stack(module: str) -> None:
    loaded = _python(
        f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    )
    assert "'bumble'" not in loaded and "'bless'" not in loaded, loaded
    assert "'click'" in loaded  # the probe saw the CLI's own imports
    for other in OTHER_SIDES[module]:
        assert f"'{other}'" not in loaded, loaded


def test_the_table_names_every_command_of_every_module_once() -> None:
    defined = {}
    for info in pkgutil.iter_modules(phoneagent.cli.__path__):
        module = importlib.import_module(f"phoneagent.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            assert command.name not in defined, command.name
            defined[command.name] = info.name
    assert defined == dict(COMMAND_MODULES)
    context = click.Context(main)
    for name in main.list_commands(context):
        command = main.get_command(context, name)
        assert command is not None and command.name == name


def test_status_imports_no_other_command() -> None:
    """Before, every command imported all of them (aiomqtt, plotly, the privacy audit):
    0.15-0.2 CPU-s more at every start."""
    probe = (
        "import sys; from phoneagent.cli import main\n"
        "try: main(['status', '--help'])\n"
        "except SystemExit: pass\n"
        "print('LOADED', *(m for m in sys.modules if m.startswith('phoneagent.cli.')))"
    )
    out = _python(probe)
    loaded = set(out.splitlines()[-1].split()[1:])
    others = {f"phoneagent.cli.{m}" for m in COMMAND_MODULES.values()} - {"phoneagent.cli.devices"}
    assert "phoneagent.cli.devices" in loaded
    assert not loaded & others, loaded & others


@pytest.mark.parametrize(
    ("transport", "loads"),
    [("loopback:127.0.0.1:7420", True), ("bluez", False), ("not a transport", False)],
)
def test_a_bumble_radio_is_loaded_ahead_on_a_thread(transport: str, loads: bool) -> None:
    """``session`` starts Bumble's import before opening the store, whose key derivation
    leaves the GIL free; a BlueZ or unparsable transport loads nothing ahead."""
    code = (
        "import sys, threading\n"
        "from phoneagent.transport import start_loading\n"
        "assert 'bumble' not in sys.modules\n"
        f"start_loading({transport!r})\n"
        "for thread in threading.enumerate():\n"
        "    if thread is not threading.main_thread(): thread.join()\n"
        "print('bumble.device' in sys.modules, 'phoneagent.transport.radio' in sys.modules)"
    )
    loaded = _python(code)
    assert loaded.split() == [str(loads)] * 2
