"""What the CLIs say where a newcomer meets them (issue 16): a message to act on and its
documented exit code, on real data directories, buses and radios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneagent.cli import main
from phoneagent.errors import EXIT_UNREACHABLE, EXIT_USAGE
from phoneagent.relays.service import RelayService
from phoneagent.store import DbKey, Store
from tests.dbus_session import private_bus
from watchsim.cli import main as watchsim

KEY = "5a" * 32
NO_BUS = "unix:path=/nonexistent/bus"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    Store.open(directory, DbKey(KEY)).close()
    return directory


def run(data: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--data-dir", str(data), *args], env={"PHONEAGENT_DB_KEY": KEY, **(env or {})}
    )


@pytest.mark.parametrize("command", ["scan", "pair F0:5A:6E:00:00:02", "run --no-dbus"])
def test_bluez_without_a_system_bus_says_so_and_how_to_use_loopback(
    data: Path, command: str
) -> None:
    result = run(
        data, "--transport", "bluez", *command.split(), env={"DBUS_SYSTEM_BUS_ADDRESS": NO_BUS}
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert "system D-Bus" in result.output and "--transport loopback:" in result.output


def test_bluez_without_bluetoothd_says_so(data: Path) -> None:
    with private_bus() as bus:  # a bus on which nothing owns org.bluez
        result = run(data, "--transport", "bluez", "scan", env={"DBUS_SYSTEM_BUS_ADDRESS": bus})
    assert result.exit_code == EXIT_USAGE, result.output
    assert "bluetoothd" in result.output and "--transport loopback:" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["pair", "notanaddress"],
        ["sync", "NOTANADDRESS"],
        ["unpair", "--yes", "F0:5A:6E:00:00"],
        ["data", "--device", "12345"],
        ["delete", "--yes", "--device", "GG:00:00:00:00:00"],
    ],
)
def test_a_bad_address_is_a_usage_error_that_shows_the_form(data: Path, args: list[str]) -> None:
    result = run(data, *args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "not a Bluetooth address" in result.output and "F0:5A:6E:00:00:01" in result.output
    assert "pair NOTANADDRESS" not in result.output


def test_an_address_in_any_case_or_with_dashes_is_the_same_watch(data: Path) -> None:
    result = run(data, "sync", "f0-5a-6e-00-00-02")
    assert result.exit_code == EXIT_UNREACHABLE  # not paired: the store was asked for it
    assert "F0:5A:6E:00:00:02 is not paired" in result.output


def test_an_unknown_consent_subject_is_a_usage_error(data: Path) -> None:
    result = run(data, "consent", "grant", "metric:mood")
    assert result.exit_code == EXIT_USAGE
    assert "unknown consent subject" in result.output


def test_consent_show_lists_only_the_call_privacy_in_force(data: Path) -> None:
    for privacy in ("name", "hidden"):
        assert run(data, "permissions", "set", "--call-privacy", privacy).exit_code == 0
    rows = json.loads(run(data, "consent", "show", "--json").stdout)
    scopes = [r["scope"] for r in rows if r["subject"] == "calls" and r["scope"]]
    assert scopes == ["@privacy=hidden"]


def test_privacy_audit_points_to_a_document_that_lists_what_it_checks(data: Path) -> None:
    result = CliRunner().invoke(main, ["privacy", "audit", "--help"])
    assert "POLICY.md" not in result.output and "docs/privacy.md" in result.output
    document = (Path(__file__).parents[2] / "docs" / "privacy.md").read_text()
    checked = {row["id"] for row in json.loads(run(data, "privacy", "audit", "--json").stdout)}
    assert checked
    assert {i for i in checked if f"| {i} |" not in document} == set()


def test_scan_all_titles_its_table_for_what_it_lists() -> None:
    from phoneagent.cli.devices import scan_title

    assert scan_title(show_all=False) == "Watches"
    assert scan_title(show_all=True) != "Watches"


async def test_run_says_why_relays_come_from_injection_only(tmp_path: Path) -> None:
    from phoneagent.cli.sync import relay_summary

    store = Store.open(tmp_path / "data", DbKey(KEY))
    service = RelayService(store, tmp_path / "data", session_bus=NO_BUS, system_bus=NO_BUS)
    try:
        await service.start()
        summary = relay_summary(service)
    finally:
        await service.aclose()
        store.close()
    assert summary.startswith("phoneagent inject only (")
    assert "music, notifications: no session bus" in summary
    assert "calls: no system bus" in summary

    store = Store.open(tmp_path / "data", DbKey(KEY))
    service = RelayService(store, tmp_path / "data", dbus=False)
    try:
        await service.start()
        assert relay_summary(service) == "phoneagent inject only (--no-dbus)"
    finally:
        await service.aclose()
        store.close()


def test_bumble_warnings_stay_off_a_terminal_without_logging() -> None:
    """As in ``demo`` and ``watchsim run``: a program that configured no logging (a process
    of its own: pytest's log capture would hide Python's last-resort handler)."""
    program = (
        "import logging; from bumblekit.quiet import quiet_bumble_debug_strings; "
        "quiet_bumble_debug_strings(); "
        "logging.getLogger('bumble.device').warning('a peer vanished mid-exchange')"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert "vanished" not in done.stderr


def test_devices_piped_shows_whole_addresses_and_names(data: Path) -> None:
    name = "A watch with a rather long name, as people give them"
    with Store.open(data, DbKey(KEY)) as store:
        store.add_device("F0:5A:6E:00:00:02", name=name, model="WatchSim 1", firmware="1.0.0")
    result = run(data, "devices")  # CliRunner's stdout is a pipe, not a terminal
    assert result.exit_code == 0
    assert "F0:5A:6E:00:00:02" in result.output and name in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--start", "1900-01-01T00:00"], "--start"),
        (["--start", "2200-01-01T00:00", "--hours", "1"], "--start"),
        (["--hours", "1e9"], "--hours"),
    ],
)
def test_a_demo_history_outside_the_record_timestamps_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    """Before, the watch started with samples no record can carry, and the backfill ended
    in a traceback (the watch's REPORT failed); the demo's folder, key included, stayed."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = CliRunner().invoke(main, ["demo", "--seconds", "0", *args])
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"Invalid value for {option}" in result.output and "1970-01-01" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--start", "2200-01-01T00:00"], "--start"), (["--backfill", "30000d"], "--backfill")],
)
def test_a_watch_clock_outside_the_record_timestamps_is_a_usage_error(
    tmp_path: Path, args: list[str], option: str
) -> None:
    result = CliRunner().invoke(
        watchsim, ["run", "--transport", "loopback", "--state-dir", str(tmp_path / "w"), *args]
    )
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"Invalid value for {option}" in result.output and "2106-02-07" in result.output


def test_a_failed_demo_removes_the_folder_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, only Ctrl-C removed it: a demo that failed left its folder in /tmp."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    key = tmp_path / "key"
    key.write_text("5a" * 32)
    key.chmod(0o644)  # refused: other users could read it
    result = CliRunner().invoke(main, ["--key-file", str(key), "demo", "--seconds", "0"])
    assert result.exit_code not in (0, 1), result.output
    assert "Demo failed: removed its data directory" in result.output
    assert "chmod 600" in result.output
    assert list(tmp.iterdir()) == []
