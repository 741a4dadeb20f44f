"""``phoneagent`` command line. Each subcommand lives in its own module of this package.

Exit codes: ``phoneagent.errors`` (each failure carries its own).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import click

from clikit import OutputEndsGroup
from phoneagent.cli.context import AgentContext, as_cli_error
from phoneagent.errors import EXIT_CODES

# Each command and the module of this package that defines it (in its ``COMMANDS``): a
# command imports its module alone, not every other command's (aiomqtt, plotly, the
# privacy audit...), which took 0.15-0.2 CPU-s of every start
# (tests/system/test_cli_imports.py checks this table against the modules).
COMMAND_MODULES: Final[Mapping[str, str]] = {
    "account": "account",
    "cloud": "cloud",
    "cloud-receiver": "cloud",
    "consent": "consent",
    "data": "data",
    "delete": "delete",
    "demo": "demo",
    "devices": "devices",
    "export": "export",
    "fleet": "fleet",
    "inject": "inject",
    "logs": "privacy",
    "pair": "devices",
    "permissions": "permissions",
    "privacy": "privacy",
    "report": "report",
    "run": "sync",
    "scan": "devices",
    "status": "devices",
    "store": "store",
    "sync": "sync",
    "unpair": "devices",
}


class AgentGroup(OutputEndsGroup):
    """Turns the failures a user can act on into a message and an exit code; loads a
    command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_MODULES:
            return None
        module = importlib.import_module(f"phoneagent.cli.{COMMAND_MODULES[cmd_name]}")
        commands: tuple[click.Command, ...] = module.COMMANDS
        return next(c for c in commands if c.name == cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            mapped = as_cli_error(error)
            if mapped is None:
                raise
            raise mapped from error


@click.group(
    cls=AgentGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: " + ", ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + ".",
)
@click.version_option(package_name="watchsync")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the encrypted store lives (default: $XDG_DATA_HOME/phoneagent).",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the database key (else PHONEAGENT_DB_KEY, keyring or a prompt).",
)
@click.option(
    "--transport",
    "transport",
    help="loopback:HOST:PORT (the loopback air), bumble:SPEC or bluez[:hciN].",
)
@click.pass_context
def main(
    ctx: click.Context, data_dir: Path | None, key_file: Path | None, transport: str | None
) -> None:
    """Phone-side sync agent for BLE smartwatches."""
    ctx.obj = AgentContext(data_dir, key_file, transport)
