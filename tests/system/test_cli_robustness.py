"""Every command of both CLIs driven with bad input (issue 16): arguments generated with
hypothesis (seeded, bounded) plus the cases the issue found. Whatever comes in, a command
ends with a message and a documented exit code, never a traceback, and a command that
refuses leaves every file of the data directory as it was.

The CLIs run in-process through click's CliRunner (the same ``main`` a shell runs; what
would have been a traceback is ``result.exception``); the issue's cases also run as real
processes. Commands that would legitimately run until stopped (``demo``, ``air``,
``fleet``, ``watchsim run``, ``cloud-receiver``) always get one unknown option among the
generated ones, so they are refused by parsing, after every other value was looked at.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneagent.cli import main as phoneagent
from phoneagent.instance import LOCK_NAME
from phoneagent.store import DbKey, Store
from protocol.metrics import Metric, Sample
from tests.processes import AGENT_CLI, WATCH_CLI
from watchsim.cli import main as watchsim
from watchsim.peripheral.bumble_adapter import new_link
from watchsim.testing import start_loopback_watch

pytestmark = pytest.mark.system

KEY = "6b" * 32
WATCH = "F0:5A:6E:00:00:09"
NO_BUS = "unix:path=/nonexistent/bus"
# No Bluetooth stack reachable from the tests, whatever the machine has: the default
# transport (bluez) must then fail with its message, quickly.
ENV = {
    "PHONEAGENT_DB_KEY": KEY,
    "DBUS_SYSTEM_BUS_ADDRESS": NO_BUS,
    "DBUS_SESSION_BUS_ADDRESS": NO_BUS,
}
# README's: 0 ok, 1 error, 2 usage/configuration, 3 database key, 4 unreachable,
# 5 pairing lost; watchsim 0, 1 and 2 (usage).
AGENT_CODES = frozenset(range(6))
WATCH_CODES = frozenset({0, 1, 2})
EXIT_USAGE = 2
UNKNOWN_OPTION = "--no-such-option"
RUN_UNTIL_STOPPED = {
    ("demo",),
    ("cloud-receiver",),
    ("fleet",),
    ("air",),
    ("run",),  # watchsim run; phoneagent run fails on its radio below
}
EXAMPLES = 30

BAD = [
    "",
    " ",
    "-",
    "--",
    "notanaddress",
    "NOTANADDRESS",
    "F0:5A:6E:00:00",
    "ZZ:ZZ:ZZ:ZZ:ZZ:ZZ",
    "F0:5A:6E:00:00:01",  # well formed, never paired
    "-1",
    "0",
    "1e309",
    "nan",
    "99999999999999999999",
    "2026-13-45",
    "yesterday",
    "25:99-07:00",
    "ünïcødé",
    "../../../etc/passwd",
    "x" * 300,
    "{}",
    "metric:mood",
    "heart_rate",
    "calls",
    "@privacy=name",
    "eu",
    "xx",
]
TRANSPORTS = [
    "bluez",
    "bluez:hci7",
    "bluez:wlan0",
    "loopback:127.0.0.1:1",
    "loopback:nohost",
    "loopback:127.0.0.1:99999",
    "bumble:",
    "bumble:nosuchtransport:0",
    "carrier-pigeon",
]


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """A group's commands through click's public API (``phoneagent`` loads them lazily)."""
    context = click.Context(group)
    found = {name: group.get_command(context, name) for name in group.list_commands(context)}
    return {name: command for name, command in found.items() if command is not None}


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every leaf command under ``group``."""
    for name, command in sorted(subcommands(group).items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name)


def command_of(group: click.Group, path: tuple[str, ...]) -> click.Command:
    command: click.Command = group
    for name in path:
        assert isinstance(command, click.Group)
        command = subcommands(command)[name]
    return command


def words_for(command: click.Command) -> list[str]:
    """Its own option names and choice values: the generator combines them with bad ones."""
    words: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            words += [*param.opts, *param.secondary_opts]
        if isinstance(param.type, click.Choice):
            words += [str(c) for c in param.type.choices]
    return words or ["--help"]


def arguments(command: click.Command, scratch: Path) -> st.SearchStrategy[list[str]]:
    paths = [str(scratch / "missing" / "file"), str(scratch), str(scratch / "new.zip")]
    token = st.one_of(
        st.sampled_from(BAD + paths),
        st.sampled_from(words_for(command)),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6),
    )
    return st.lists(token, max_size=6)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file's digest; an empty lock file (nobody holds the data dir) holds no data."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not (path.name == LOCK_NAME and path.stat().st_size == 0)
    }


def check(result: Result, codes: frozenset[int], args: list[str]) -> None:
    """Ended with a documented code, through a message, not an exception's traceback."""
    shown = f"{args}: exit {result.exit_code}\n{result.output}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(shown) from result.exception
    assert result.exit_code in codes, shown
    assert "Traceback" not in result.output, shown


def agent_data(tmp_path: Path) -> Path:
    """A data dir with a device and samples, as after a first sync."""
    directory = tmp_path / "data"
    with Store.open(directory, DbKey(KEY)) as store:
        store.add_device(WATCH, name="Wrist", model="WatchSim 1", firmware="1.0.0")
        samples = [
            Sample(s, 1_780_000_000 + s, Metric.HEART_RATE, 60 + s % 30) for s in range(1, 50)
        ]
        store.store_batch(WATCH, samples)
    return directory


@pytest.mark.parametrize("path", list(commands(phoneagent)), ids=" ".join)
def test_every_phoneagent_command_answers_bad_input(
    tmp_path: Path, path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = agent_data(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)  # default outputs (`report`'s HTML file) land here
    command = command_of(phoneagent, path)
    forever = path in RUN_UNTIL_STOPPED

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        transport=st.one_of(st.none(), st.sampled_from(TRANSPORTS)),
        key_file=st.sampled_from([None, str(scratch / "no.key"), str(scratch)]),
        args=arguments(command, scratch),
    )
    def one(transport: str | None, key_file: str | None, args: list[str]) -> None:
        options = ["--data-dir", str(data)]
        options += [] if transport is None else ["--transport", transport]
        options += [] if key_file is None else ["--key-file", key_file]
        argv = [*options, *path, *args, *([UNKNOWN_OPTION] if forever else [])]
        before = snapshot(data)
        result = CliRunner().invoke(phoneagent, argv, env=ENV)
        check(result, AGENT_CODES, argv)
        if result.exit_code != 0:
            assert snapshot(data) == before, f"{argv} refused, yet changed the data dir"

    one()


@pytest.mark.parametrize("path", [p for p in commands(watchsim) if p[0] != "ctl"], ids=" ".join)
def test_every_watchsim_command_answers_bad_input(tmp_path: Path, path: tuple[str, ...]) -> None:
    command = command_of(watchsim, path)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None)
    @given(args=arguments(command, tmp_path))
    def one(args: list[str]) -> None:
        argv = [*path, "--state-dir", str(tmp_path / "watch"), *args, UNKNOWN_OPTION]
        check(CliRunner().invoke(watchsim, argv), WATCH_CODES, argv)

    one()


CTL_WORDS = [
    "status",
    "passkey",
    "press",
    "accept",
    "reject",
    "mute",
    "music",
    "play",
    "volume",
    "volume-up",
    "event",
    "off-wrist",
    "on-wrist",
    "battery-low",
    "reboot",
    "-5",
    "101",
    "3",
    "frobnicate",
]


async def test_watchsim_ctl_answers_any_words_with_a_documented_code(tmp_path: Path) -> None:
    """Words to a running watch: usage errors (2), refusals (1) or answers (0)."""
    watch = await start_loopback_watch(new_link(), tmp_path / "watch")
    state_dir = str(watch.app.config.state_dir)

    @settings(max_examples=60, derandomize=True, deadline=None, database=None)
    @given(words=st.lists(st.sampled_from(CTL_WORDS + BAD[:12]), min_size=1, max_size=4))
    def one(words: list[str]) -> None:
        # A short --timeout: ``passkey`` waits for a pairing that never comes.
        argv = ["ctl", "--state-dir", state_dir, "--timeout", "1", *words]
        check(CliRunner().invoke(watchsim, argv), WATCH_CODES, argv)

    try:
        await asyncio.to_thread(one)  # the watch answers on this loop meanwhile
        usage = await asyncio.to_thread(
            CliRunner().invoke, watchsim, ["ctl", "--state-dir", state_dir, "press", "nope"]
        )
        assert usage.exit_code == EXIT_USAGE, usage.output
    finally:
        await watch.stop()


def _process(cli: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", cli, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("cli", "args", "code", "says"),
    [
        # Item 1: the default transport (bluez) on a machine without BlueZ.
        (AGENT_CLI, ["scan"], 2, "--transport loopback:"),
        (AGENT_CLI, ["pair", "F0:5A:6E:00:00:01"], 2, "--transport loopback:"),
        (AGENT_CLI, ["run"], 2, "--transport loopback:"),
        # Item 2: garbage addresses.
        (AGENT_CLI, ["pair", "notanaddress"], 2, "F0:5A:6E:00:00:01"),
        (AGENT_CLI, ["sync", "NOTANADDRESS"], 2, "not a Bluetooth address"),
        # Item 10: exit codes as README documents them.
        (AGENT_CLI, ["consent", "grant", "nope"], 2, "unknown consent subject"),
        (AGENT_CLI, ["sync", "F0:5A:6E:00:00:01"], 4, "is not paired"),
        (WATCH_CLI, ["run", "--scenario", "nope"], 2, "no built-in scenario"),
        (WATCH_CLI, ["ctl", "--state-dir", "/nonexistent/watch", "status"], 1, "no watch"),
    ],
)
def test_the_issues_cases_as_real_processes(
    tmp_path: Path, cli: str, args: list[str], code: int, says: str
) -> None:
    data = agent_data(tmp_path)
    before = snapshot(data)
    done = (
        _process(cli, "--data-dir", str(data), *args, env=ENV)
        if cli == AGENT_CLI
        else (_process(cli, *args, env=ENV))
    )
    assert done.returncode == code, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert snapshot(data) == before


@pytest.mark.parametrize("command", [["status"], ["data"], ["run"]])
@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_data_dir_that_is_no_directory_is_named(
    tmp_path: Path, command: list[str], where: str
) -> None:
    """``status`` first asks a running agent over the data dir's socket, then opens the
    store: neither may end on a bare "Not a directory" or "File exists"."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    data = blocker if where == "a file" else blocker / "data"
    options = ["--data-dir", str(data), "--transport", "loopback:127.0.0.1:1"]
    result = CliRunner().invoke(phoneagent, [*options, *command], env=ENV)
    assert result.exit_code in {1, EXIT_USAGE}, result.output
    assert str(blocker) in result.output and "Traceback" not in result.output
    assert blocker.read_text() == "not a directory"
