"""The ``phoneagent`` CLI: the demo end to end without a TTY, listings, exit codes."""

from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path

from click.testing import CliRunner

from phoneagent.cli import main
from phoneagent.errors import EXIT_KEY, EXIT_UNREACHABLE, EXIT_USAGE
from tests.processes import START


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"PHONEAGENT_DB_KEY": ""})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_demo_then_listings(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    demo = ("demo", "--hours", "1", "--seconds", "1", "--start", START)
    code, out = run("--data-dir", str(data), *demo)
    assert code == 0, out
    key = data / "demo.key"
    assert f"Wrote the database key to {key}" in out
    assert f"Encrypted database: {data / 'phoneagent.db'}" in out
    held = int(out.rsplit("It holds ", 1)[1].split()[0])
    assert held > 3500  # an hour of 1 Hz heart rate alone

    # What to try next, with this data dir and key file: each works as printed.
    shown = [shlex.split(line)[1:] for line in out.splitlines() if line.startswith("  phoneagent ")]
    assert {words[4] for words in shown} >= {"status", "data"}, out
    for words in shown:
        code, listed = run(*words)
        assert code == 0 and listed.strip(), listed

    common = ("--data-dir", str(data), "--key-file", str(key))
    code, out = run(*common, "status", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert [d["samples"] for d in status["devices"]] == [held]
    assert [d["gaps"] for d in status["devices"]] == [0]  # lossless (issue 16 item 7)

    code, out = run(*common, "devices", "--json")
    (device,) = json.loads(out)
    assert device["bonded"] and device["model"]

    code, out = run(*common, "data", "--metric", "heart_rate", "--limit", "5", "--json")
    rows = json.loads(out)
    assert len(rows) == 5 and {r["metric"] for r in rows} == {"heart_rate"}
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)

    code, out = run(*common, "data", "--format", "csv", "--limit", "3")
    assert len(list(csv.DictReader(io.StringIO(out)))) == 3


def test_wrong_key_exit_code(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    assert run("--data-dir", str(data), "demo", "--hours", "0", "--seconds", "0")[0] == 0
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    other.chmod(0o600)
    code, out = run("--data-dir", str(data), "--key-file", str(other), "devices")
    assert code == EXIT_KEY
    assert "does not open" in out and "Traceback" not in out


def test_broken_config_and_unknown_device(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    assert run("--data-dir", str(data), "demo", "--hours", "0", "--seconds", "0")[0] == 0
    key = str(data / "demo.key")
    code, out = run(
        "--data-dir", str(data), "--key-file", key, "unpair", "--yes", "C0:FF:EE:00:00:01"
    )
    assert code == EXIT_UNREACHABLE and "not paired" in out
    (data / "config.toml").write_text("transport = 3\n")
    code, out = run("--data-dir", str(data), "--key-file", key, "scan")
    assert code == EXIT_USAGE
    assert "config.toml: transport: Expected `str`, got `int`" in out
