"""``watchsim air``: run the loopback air that watch and agent processes join over TCP."""

from __future__ import annotations

import asyncio
import signal

import click

from watchsim.cli import main
from watchsim.cli.run import DEFAULT_AIR_PORT


async def _run(host: str, port: int) -> None:
    from watchsim.air import Air  # Bumble: only `watchsim air` needs it at once

    air = Air(host, port)
    try:
        bound_host, bound_port = await air.start()
    except OSError as error:
        hint = "another air already runs there? --port 0 picks a free one"
        raise click.ClickException(f"cannot listen on {host}:{port} ({hint}): {error}") from None
    # Tests and scripts wait for this exact line; the transport string is what clients open.
    click.echo(f"listening on {bound_host}:{bound_port} (tcp-client:{bound_host}:{bound_port})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await air.close()
    click.echo("air closed")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_AIR_PORT,
    show_default=True,
    help="TCP port (the one `watchsim run` joins by default); 0 picks a free one.",
)
def air(host: str, port: int) -> None:
    """Shared virtual BLE air: each TCP client gets its own virtual controller."""
    asyncio.run(_run(host, port))
