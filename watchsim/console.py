"""What the watch shows its wearer: a one-screen live view on a terminal, log lines
otherwise. Both read ``WatchApp.status()``, the same data ``watchsim ctl status`` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, Final, TextIO

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from watchsim.app import WatchApp
from watchsim.app.live import local_datetime

REFRESH_S: Final = 0.5


def owns_terminal(stream: TextIO) -> bool:
    """A terminal this process has in the foreground: a watch started with ``&`` shares
    its terminal with the shell and with ``phoneagent pair`` asking for the passkey, and a
    live view redrawn over them would hide the prompt; it logs lines instead."""
    if not stream.isatty():
        return False
    try:
        return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    except OSError:  # no controlling terminal after all
        return False


def passkey_line(number: int) -> str:
    """The line scripts and people look for; the same in both views."""
    return f"PASSKEY {number:06d}"


def _fmt(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def _table(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, Text(value))  # as it is: no markup or emoji codes (":CD:")
    return table


def _labelled(label: str, text: str) -> Text:
    """A bold label, then what a phone sent as it is: a caller or song named "[/]" or
    ":CD:" is text, never markup (a markup error ended the watch) or an emoji code."""
    return Text.assemble((label, "bold"), " ", text)


def render(status: dict[str, Any]) -> RenderableType:
    """The whole screen from one status snapshot."""
    peers = ", ".join(p["address"] for p in status["peers"]) or "-"
    radio = status["radio"]
    if status["back_in_range_at"]:
        radio += f" (out of range until {status['back_in_range_at']})"
    watch = _table(
        [
            ("name", f"{status['name']}  {status['address']}"),
            ("clock", f"{status['clock']}  x{status['speed']:g}"),
            ("radio", radio),
            ("peers", peers),
            ("passkey", "-" if status["passkey"] is None else f"{status['passkey']:06d}"),
            (
                "battery",
                f"{status['battery_percent']} %" + (" charging" if status["charging"] else ""),
            ),
        ]
    )
    vitals = _table(
        [
            ("activity", status["activity"] + ("" if status["on_wrist"] else "  (off wrist)")),
            ("heart rate", _fmt(status["heart_rate"], " bpm")),
            ("SpO2", _fmt(status.get("spo2"), " %")),
            ("skin temp", _fmt(status.get("skin_temperature"), " °C")),
            ("steps", str(status["steps_today"])),
            ("distance", f"{status['distance_m']} m"),
            ("energy", f"{status['energy_kcal']} kcal"),
        ]
    )
    if status.get("personality") == "infinitime":
        side, title, screen = _infinitime(status)
    else:
        side, title, screen = _ours(status)
    return Group(
        Columns(
            [
                Panel(watch, title="watch"),
                Panel(vitals, title="vitals"),
                Panel(side, title=title),
            ]
        ),
        Panel(screen, title="screen"),
        Panel(Text("\n".join(status["events"]) or "-"), title="events"),
    )


def _ours(status: dict[str, Any]) -> tuple[RenderableType, str, RenderableType]:
    """Our profile: the history panel, and the relay screen of our formats."""
    history = status["history"] or {}
    store = _table(
        [
            ("records", f"{history.get('count', 0)} / {history.get('capacity', 0)}"),
            ("seqs", f"{_fmt(history.get('oldest_seq'))} .. {_fmt(history.get('newest_seq'))}"),
            ("syncing", "yes" if history.get("reporting") else "no"),
            (
                "off",
                ", ".join(k for k, m in status["metrics"].items() if not m["enabled"]) or "-",
            ),
        ]
    )
    calls = [f"{c['state']}: {c['name'] or 'hidden caller'} (#{c['id']})" for c in status["calls"]]
    alerts = [f"{n['app']}: {n['title']} - {n['body']}" for n in status["notifications"][:5]]
    music = status["music"]
    now_playing = (
        "-"
        if music is None
        else f"{music['playback']}: {music['title']} - {music['artist']} (vol {music['volume']})"
    )
    screen = Group(
        *(_labelled("call", c) for c in calls or ["-"]),
        _labelled("music", now_playing),
        *map(Text, alerts or ["no notifications"]),
    )
    return store, "history", screen


def _infinitime(status: dict[str, Any]) -> tuple[RenderableType, str, RenderableType]:
    """The InfiniTime personality: weather and navigation beside, its own screens below."""
    weather, navigation = status["weather"], status["navigation"]
    side = _table(
        [
            ("firmware", f"InfiniTime {status['firmware']}"),
            (
                "weather",
                "-"
                if weather is None
                else f"{weather['temperature'] / 100:.1f} °C {weather['location']}",
            ),
            ("navigation", f"{navigation['narrative'] or '-'} ({navigation['progress']} %)"),
            ("security", "none required"),
        ]
    )
    call, music = status["call"], status["music"]
    ringing = "-" if call is None else call["caller"] + (" (muted)" if call["muted"] else "")
    playing = "playing" if music["playing"] else "paused"
    screen = Group(
        _labelled("call", ringing),
        _labelled("music", f"{playing}: {music['track']} - {music['artist']}"),
        *map(Text, status["notifications"] or ["no notifications"]),
    )
    return side, "infinitime", screen


async def show_live(app: WatchApp, stop: asyncio.Event, stream: TextIO) -> None:
    """Redraw the screen until ``stop``; passkeys also go above it as plain lines."""
    console = Console(file=stream)
    with Live(render(app.status()), console=console, auto_refresh=False) as live:

        def on_passkey(number: int) -> None:
            live.console.print(passkey_line(number))

        app.passkey_listeners.append(on_passkey)
        try:
            while not stop.is_set():
                live.update(render(app.status()), refresh=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REFRESH_S)
        finally:
            app.passkey_listeners.remove(on_passkey)


def log_plainly(app: WatchApp, stream: TextIO) -> None:
    """One line per thing that happens, for logs and pipes."""

    def line(text: str) -> None:
        clock = local_datetime(app.clock.now(), app.clock.utc_offset_s)
        print(f"{clock.isoformat(timespec='seconds')} {text}", file=stream, flush=True)

    app.log_listeners.append(line)
    app.passkey_listeners.append(lambda number: line(passkey_line(number)))
