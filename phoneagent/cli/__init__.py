"""``phoneagent`` command line. Each subcommand lives in its own module of this package.

Exit codes: ``phoneagent.errors`` (each failure carries its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from phoneagent.cli.context import AgentContext, as_cli_error
from phoneagent.errors import EXIT_CODES


class AgentGroup(click.Group):
    """Turns the failures a user can act on into a message and an exit code."""

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


def _register() -> None:
    from phoneagent.cli import (
        account,
        cloud,
        consent,
        data,
        delete,
        demo,
        devices,
        export,
        fleet,
        inject,
        permissions,
        privacy,
        report,
        store,
        sync,
    )

    for module in (
        devices,
        sync,
        data,
        report,
        demo,
        account,
        consent,
        export,
        delete,
        privacy,
        cloud,
        permissions,
        inject,
        fleet,
        store,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
