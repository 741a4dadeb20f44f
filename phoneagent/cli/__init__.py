"""``phoneagent`` command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="watchsync")
def main() -> None:
    """Phone-side sync agent for BLE smartwatches."""


@main.command()
def demo() -> None:
    """Loopback watch + agent end to end (pair, backfill, live) with no hardware."""
    click.echo("phoneagent demo: not yet available (the sync engine is being built).")
