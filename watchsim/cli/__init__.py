"""``watchsim`` command line. Each subcommand lives in its own module of this package.

Exit codes: ``watchsim.errors`` (each failure carries its own).
"""

from __future__ import annotations

from typing import Any

import click

from clikit import OutputEndsGroup
from watchsim.errors import EXIT_ERROR, EXIT_USAGE, WatchsimError


class WatchsimGroup(OutputEndsGroup):
    """Turns the failures a person can act on into a message and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WatchsimError as error:
            failure = click.ClickException(str(error))
            failure.exit_code = error.exit_code  # type: ignore[misc]  # per instance here
            raise failure from None  # the message says it all; no traceback


@click.group(
    cls=WatchsimGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=f"Exit codes: 0 ok, {EXIT_ERROR} error, {EXIT_USAGE} usage "
    "(an unknown scenario, a ctl command that is not one).",
)
@click.version_option(package_name="watchsync")
def main() -> None:
    """Emulated BLE smartwatch."""


from watchsim.cli import air as _air  # noqa: E402, F401  (registers `watchsim air`)
from watchsim.cli import ctl as _ctl  # noqa: E402, F401  (registers `watchsim ctl`)
from watchsim.cli import fleet as _fleet  # noqa: E402, F401  (registers `watchsim fleet`)
from watchsim.cli import run as _run  # noqa: E402, F401  (registers `watchsim run`)
