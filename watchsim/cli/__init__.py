"""``watchsim`` command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="watchsync")
def main() -> None:
    """Emulated BLE smartwatch."""


from watchsim.cli import air as _air  # noqa: E402, F401  (registers `watchsim air`)
from watchsim.cli import ctl as _ctl  # noqa: E402, F401  (registers `watchsim ctl`)
from watchsim.cli import fleet as _fleet  # noqa: E402, F401  (registers `watchsim fleet`)
from watchsim.cli import run as _run  # noqa: E402, F401  (registers `watchsim run`)
