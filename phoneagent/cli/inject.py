"""``inject notification|call|music``: hand the running agent a phone event, for demos
and tests. It goes through the same permission gate as the D-Bus sources and travels
over the agent's local socket only: nothing of it is written to disk.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from phoneagent.cli.context import AgentContext, CliError, pass_agent
from phoneagent.control import ControlError, ControlUsageError, request
from phoneagent.errors import EXIT_ERROR, EXIT_USAGE
from protocol.alerts import AlertCategory, CallStatus
from protocol.music import MAX_VOLUME, Playback


def _send(agent: AgentContext, payload: dict[str, Any]) -> Any:
    try:
        return asyncio.run(request(agent.data_dir, payload))
    except ControlUsageError as error:  # a value the agent cannot relay (too long, ...)
        raise CliError(str(error), EXIT_USAGE) from error
    except ControlError as error:
        raise CliError(str(error), EXIT_ERROR) from error


@click.group("inject")
def inject_group() -> None:
    """Feed the running agent (phoneagent run) a notification, call or track."""


@inject_group.command("notification")
@click.option("--app", default="demo", show_default=True, help="App id the rules match on.")
@click.option("--title", default="", help="What the watch shows first (e.g. the sender).")
@click.option("--body", default="", help="The notification's text.")
@click.option(
    "--category",
    type=click.Choice([c.name.lower() for c in AlertCategory]),
    default="message",
    show_default=True,
    help="Alert category (the watch's icon).",
)
@click.option("--key", default="", help="Your handle for it (to replace or --close it).")
@click.option("--close", "close", is_flag=True, help="Dismiss the notification --key names.")
@pass_agent
def notification_command(
    agent: AgentContext, app: str, title: str, body: str, category: str, key: str, close: bool
) -> None:
    """Post a notification (or dismiss one with --close --key KEY)."""
    if close:
        if not key:
            raise CliError("--close needs --key", EXIT_USAGE)
        result = _send(agent, {"op": "close", "key": key})
        click.echo("Removed." if result["removed"] else f"No notification {key!r} is held.")
        return
    payload = {"op": "notify", "app": app, "title": title, "body": body, "category": category}
    result = _send(agent, payload | {"key": key})
    click.echo(f"Notification {result['key']}: {result['result']}.")


@inject_group.command("call")
@click.argument("state", type=click.Choice([s.name.lower() for s in CallStatus]))
@click.option("--caller", default="", help="Display name; a number is never shown.")
@click.option("--key", default="", help="The call's handle (given back by `incoming`).")
@pass_agent
def call_command(agent: AgentContext, state: str, caller: str, key: str) -> None:
    """A call changes state on the phone: incoming, then accepted/rejected/ended/missed."""
    if state != "incoming" and not key:
        raise CliError(f"{state} needs --key of the incoming call", EXIT_USAGE)
    result = _send(agent, {"op": "call", "state": state, "caller": caller, "key": key})
    if result["relayed"]:
        click.echo(f"Call {result['key']} (watch call id {result['call_id']}): {state}.")
    else:
        click.echo(f"Call {result['key']}: not relayed (calls not granted, or not ringing).")


@inject_group.command("music")
@click.argument("playback", type=click.Choice([p.name.lower() for p in Playback]))
@click.option("--title", default="", help="Track title.")
@click.option("--artist", default="", help="Track artist.")
@click.option("--position", "position_s", type=click.IntRange(0), default=0, help="Seconds.")
@click.option("--duration", "duration_s", type=click.IntRange(0), default=0, help="Seconds.")
@click.option(
    "--volume",
    type=click.IntRange(0, MAX_VOLUME),
    default=50,
    show_default=True,
    help="The phone's volume, as the watch shows it.",
)
@pass_agent
def music_command(
    agent: AgentContext,
    playback: str,
    title: str,
    artist: str,
    position_s: int,
    duration_s: int,
    volume: int,
) -> None:
    """Now playing changed; pushed to the watches if music is granted."""
    payload = {
        "op": "music",
        "playback": playback,
        "title": title,
        "artist": artist,
        "position_s": position_s,
        "duration_s": duration_s,
        "volume": volume,
    }
    result = _send(agent, payload)
    if not result["relayed"]:
        click.echo("Now playing: not relayed (music not granted).")
        return
    click.echo(f"Now playing updated ({result['watches']} watch(es) connected).")


@inject_group.command("status")
@pass_agent
def status_command(agent: AgentContext) -> None:
    """Counts (no content), sources, and the buttons the watches pressed, as JSON."""
    click.echo(json.dumps(_send(agent, {"op": "status"}), indent=2))


COMMANDS = (inject_group,)
