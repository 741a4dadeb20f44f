"""README.md as a newcomer follows it (issue 16): its shell blocks run on loopback as
written (a free port for 7420, which the watch then joins instead of its default air; the
watch's address for ADDRESS; private XDG dirs), every
command its tables list exists with the options shown, and its exit codes are the CLIs'."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from phoneagent.cli import main as phoneagent
from phoneagent.errors import EXIT_CODES
from tests.mosquitto import free_port
from tests.processes import ADDRESS, WAIT, kill, line
from tests.system.test_cli_robustness import subcommands
from watchsim.cli import main as watchsim

pytestmark = pytest.mark.system

README = (Path(__file__).parents[2] / "README.md").read_text()
BIN = Path(sys.executable).parent
CLIS = {"phoneagent": phoneagent, "watchsim": watchsim}
# What a command may take on loopback: a backfill of a week, a sync of a day.
LONG_WAIT = 120.0


def block_after(heading: str) -> list[str]:
    """The lines of the first indented block after ``heading``."""
    text = README.split(heading, 1)[1]
    match = re.search(r"\n\n((?: {4}.*\n)+)", text)
    assert match, f"no shell block after {heading!r}"
    return [raw.strip() for raw in match[1].splitlines()]


def argv(command: str, substitutions: dict[str, str]) -> tuple[list[str], bool]:
    """The command's words (comment dropped, placeholders filled, the venv's scripts)
    and whether README runs it in the background (``&``)."""
    command = re.sub(r"\s+#.*$", "", command).strip()
    background = command.endswith("&")
    command = command.rstrip("&").strip()
    for placeholder, value in substitutions.items():
        command = command.replace(placeholder, value)
    words = shlex.split(command)
    name = Path(words[0]).name
    assert name in CLIS, command
    if (
        words[1:2] == ["run"]
        and name == "watchsim"
        and "--air" not in words
        and "7420" in (substitutions)
    ):  # README's watch joins the default air (port 7420), here on the free port
        words += ["--air", f"127.0.0.1:{substitutions['7420']}"]
    return [str(BIN / name), *words[1:]], background


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """A fresh user: private state and data homes, a database key in the environment."""
    for name in ("state", "data", "tmp"):
        (tmp_path / name).mkdir()
    return {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path / "tmp"),
        "PHONEAGENT_DB_KEY": "readme-test-key",
        "PYTHONUNBUFFERED": "1",
    }


@asynccontextmanager
async def started(
    words: list[str], env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        *words,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield process
    finally:
        await kill(process)


async def finished(
    words: list[str], env: dict[str, str], typed: bytes = b"", wait: float = LONG_WAIT
) -> tuple[int, str, str]:
    async with started(words, env) as process:
        out, err = await asyncio.wait_for(process.communicate(typed), wait)
    assert process.returncode is not None
    assert "Traceback" not in out.decode() + err.decode(), err.decode()
    return process.returncode, out.decode(), err.decode()


async def test_the_quickstart_demo_and_what_it_says_to_try_next(
    environment: dict[str, str],
) -> None:
    (command,) = block_after("## Quickstart")
    demo = command.split("&&")[-1].strip()  # the venv and the install are this one
    code, out, err = await finished(argv(demo, {})[0], environment)
    assert code == 0, err
    assert "Encrypted database:" in out
    shown = [line.strip() for line in out.splitlines() if line.startswith("  phoneagent ")]
    assert shown, out
    for command in shown:
        code, listed, err = await finished(argv(command, {})[0], environment)
        assert code == 0 and listed.strip(), err
    # "The first of them with `report` in place of `status`" (to a file of the test's).
    charts = Path(environment["TMPDIR"]) / "report.html"
    words = argv(shown[0].replace(" status", f" report --out {charts}"), {})[0]
    code, _, err = await finished(words, environment)
    assert code == 0 and "personal health data" in err and charts.stat().st_size > 0, err


async def test_two_processes_over_the_loopback_air_as_written(
    environment: dict[str, str],
) -> None:
    lines = block_after("### Two processes over the loopback air")
    port = str(free_port())
    commands = [argv(line, {"7420": port}) for line in lines]
    (air, _), (watch, _) = commands[:2]
    async with started(air, environment) as air_process:
        await line(air_process, r"listening on")
        async with started(watch, environment) as watch_process:
            address = (await line(watch_process, rf"ready: address {ADDRESS}"))[1]
            scan, pair, run = (argv(c, {"7420": port, "ADDRESS": address})[0] for c in lines[2:])

            code, out, err = await finished(scan, environment)
            assert code == 0 and address in out, out + err

            async with started(pair, environment) as pairing:
                passkey = (await line(watch_process, r"PASSKEY (\d{6})", wait=WAIT))[1]
                out_b, err_b = await asyncio.wait_for(
                    pairing.communicate(passkey.encode() + b"\n"), LONG_WAIT
                )
            assert pairing.returncode == 0, err_b.decode()
            assert f"Paired with {address}" in out_b.decode()

            async with started(run, environment) as daemon:
                await line(daemon, rf"{address}: live", wait=LONG_WAIT, stderr=True)
                daemon.send_signal(signal.SIGTERM)
                await line(daemon, "phoneagent stopped", wait=WAIT, stderr=True)
                assert await asyncio.wait_for(daemon.wait(), WAIT) == 0


def ctl_examples() -> list[str]:
    """One concrete command per alternative of each row of README's ``watchsim ctl`` table."""
    examples = []
    for row in re.findall(r"^\| `(watchsim ctl [^`]*)`", README, re.MULTILINE):
        words = re.sub(r"\[[A-Z_]+\]", "", row).replace("MIN", "1").replace("PERCENT", "10")
        head, *rest = words.split()
        alternatives = [w.split("\\|") for w in [head, *rest]]
        for i, options in enumerate(alternatives):
            if len(options) > 1:
                for option in options:
                    chosen = [o[0] for o in alternatives]
                    chosen[i] = option
                    examples.append(" ".join(chosen))
                break
        else:
            examples.append(" ".join(o[0] for o in alternatives))
    return examples


async def test_driving_a_running_watch_as_written(environment: dict[str, str]) -> None:
    lines = block_after("## Driving a running watch")
    port = str(free_port())
    (air, _), (watch, _) = (argv(c, {"7420": port}) for c in lines)
    examples = ctl_examples()
    assert len(examples) >= 15, examples  # every row and button
    async with started(air, environment) as air_process:
        await line(air_process, r"listening on")
        async with started(watch, environment) as watch_process:
            await line(watch_process, rf"ready: address {ADDRESS}", wait=LONG_WAIT)
            for example in examples:
                code, _out, err = await finished(argv(example, {})[0], environment)
                # Each as documented: done (0), or refused with a reason (1: no call to
                # accept, no passkey shown), never a usage error.
                assert code in (0, 1), f"{example}: {code} {err}"
                assert code == 0 or err.startswith("Error: "), f"{example}: {err}"


def table_commands(cli: str) -> list[tuple[list[str], list[str]]]:
    """(command path, options shown) of every ``cli`` command README's tables list."""
    found = []
    for cell in re.findall(rf"^\| `({cli} [^|]*?)` \|", README, re.MULTILINE):
        for chunk in re.findall(r"`?(" + cli + r" [^`]*)`?", cell):
            words = chunk.split()[1:]
            path: list[list[str]] = []
            for word in words:
                if word.startswith(("-", "[", "<")) or not word[:1].islower():
                    break
                path.append(word.split("\\|"))
            options = re.findall(r"(--[a-z][a-z-]*)", chunk)
            for alternatives in _expand(path):
                found.append((alternatives, options))
    return found


def _expand(path: list[list[str]]) -> list[list[str]]:
    """Every path through alternatives that name subcommands (``show|grant|revoke``)."""
    paths: list[list[str]] = [[]]
    for options in path:
        paths = [[*p, o] for p in paths for o in options]
    return paths


@pytest.mark.parametrize("cli", ["phoneagent", "watchsim"])
def test_every_command_in_the_tables_exists_with_its_options(cli: str) -> None:
    listed = table_commands(cli)
    assert listed
    for path, options in listed:
        command: click.Command = CLIS[cli]
        words = []
        for word in path:
            if not isinstance(command, click.Group) or word not in subcommands(command):
                break  # the rest are arguments (notifications, accept, ...)
            command = subcommands(command)[word]
            words.append(word)
        assert words, f"{cli} {' '.join(path)}: no such command"
        result = CliRunner().invoke(CLIS[cli], [*words, "--help"])
        assert result.exit_code == 0, result.output
        known = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}
        known |= {o for p in CLIS[cli].params for o in p.opts}  # global options
        if isinstance(command, click.Group):
            known |= {o for c in subcommands(command).values() for p in c.params for o in p.opts}
        missing = [o for o in options if o not in known]
        assert not missing, f"{cli} {' '.join(words)} has no {missing}"


def test_the_documented_exit_codes_are_the_clis() -> None:
    agent = re.search(r"Exit codes: (0 ok, 1 other error, [^.]*)\.", README)
    assert agent
    documented = {int(n) for n in re.findall(r"(\d) [a-z]", agent[1])}
    assert documented == set(EXIT_CODES)
    epilog = " ".join(CliRunner().invoke(phoneagent, ["--help"]).output.split())
    assert all(f"{code} {what}" in epilog for code, what in EXIT_CODES.items())
    assert "exits with status 1" in README and "and 2 for a usage error" in README
    assert "2 usage" in CliRunner().invoke(watchsim, ["--help"]).output
