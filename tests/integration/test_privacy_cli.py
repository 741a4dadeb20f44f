"""The privacy commands through click's CliRunner on a real encrypted data directory."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneagent.cli import main
from phoneagent.errors import EXIT_ERROR
from phoneagent.logs import LOG_NAME, logs_dir
from phoneagent.store import DbKey, Store
from protocol.metrics import Metric, Sample
from tests.disk import fill

KEY = "3c" * 32
WATCH = "F0:F1:F2:F3:F4:F5"
ADULT = ["--region", "eu", "--birth-date", "1990-03-01", "--sex", "female"]
ADULT += ["--height", "168", "--weight", "61.2"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    with Store.open(directory, DbKey(KEY)) as store:
        store.add_device(WATCH, name="Wrist", serial="SN-9")
        store.store_batch(
            WATCH, [Sample(s, 1_700_000_000 + s, Metric.HEART_RATE, 70) for s in range(5)]
        )
    return directory


def run(data: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(
        main, ["--data-dir", str(data), *args], env={"PHONEAGENT_DB_KEY": KEY}
    )
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_under_age_account_is_refused_with_a_message__PR_MINOR(data: Path) -> None:
    result = run(
        data, "account", "create", *ADULT[:2], "--birth-date", "2013-01-01", *ADULT[4:], ok=False
    )
    assert result.exit_code == 1 and "minimum age of 16" in result.output
    with Store.open(data, DbKey(KEY)) as store:
        assert store.ledger.get_account() is None


def test_account_lifecycle_and_consent_ledger__PR_WITHDRAW__PR_VERSION(data: Path) -> None:
    shown = json.loads(run(data, "account", "show", "--json").stdout)
    assert shown["kind"] == "guest"
    assert "not accepted the privacy policy" in run(data, "consent", "show").output
    refused = run(data, "consent", "grant", "cloud_sync", ok=False)
    assert "guest mode never" in refused.output
    run(data, "account", "create", *ADULT)
    run(data, "consent", "grant", "cloud_sync")
    run(data, "consent", "withdraw", "cloud_sync")
    consents = json.loads(run(data, "consent", "show", "--json").stdout)
    cloud = next(c for c in consents if c["subject"] == "cloud_sync")
    assert cloud["granted"] is False and cloud["policy_version"]
    run(data, "account", "update", "--weight", "59")
    assert json.loads(run(data, "account", "show", "--json").stdout)["weight_kg"] == 59.0
    deleted = run(data, "account", "delete", "--yes")
    assert "Cloud erasure requested from eu" in deleted.output
    assert json.loads(run(data, "account", "show", "--json").stdout)["kind"] == "guest"


def test_export_json_csv_and_zip_cover_every_table__PR_ACCESS(data: Path, tmp_path: Path) -> None:
    run(data, "account", "create", *ADULT)
    exported = json.loads(run(data, "export", "--format", "json").stdout)
    tables = exported["tables"]
    assert len(tables["samples"]) == 5 and tables["devices"][0]["serial"] == "SN-9"
    assert tables["account"][0]["region"] == "eu" and tables["consent_ledger"]
    folder = tmp_path / "csv"
    run(data, "export", "--format", "csv", "--out", str(folder))
    with (folder / "samples.csv").open() as f:
        assert [r["value"] for r in csv.DictReader(f)] == ["70.0"] * 5
    assert stat.S_IMODE((folder / "samples.csv").stat().st_mode) == 0o600
    archive = tmp_path / "export.zip"
    run(data, "export", "--format", "csv", "--out", str(archive))
    with zipfile.ZipFile(archive) as z:
        assert "devices.csv" in z.namelist()
    assert not list(tmp_path.glob("*.partial"))
    assert "exists already" in run(data, "export", "--out", str(archive), ok=False).output


@pytest.mark.parametrize("out", ["csv", "export.zip", "export.json"])
def test_export_keeps_a_file_of_the_persons_named_like_its_partial(
    data: Path, tmp_path: Path, out: str
) -> None:
    """``OUT.partial`` is the person's name too (a leftover, their own folder): the export
    neither fails on it nor deletes it (it deleted it, folder and all, and failed)."""
    theirs = tmp_path / f"{out}.partial"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    fmt = "json" if out.endswith(".json") else "csv"
    run(data, "export", "--format", fmt, "--out", str(tmp_path / out))
    assert (tmp_path / out).exists()
    assert (theirs / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", out, theirs.name])
    missing = run(data, "export", "--out", str(tmp_path / "nowhere" / "x.json"), ok=False)
    assert f"{tmp_path / 'nowhere'}: no such folder" in missing.output


@pytest.mark.parametrize("out", ["csv", "export.zip", "export.json"])
def test_an_export_onto_a_full_disk_names_its_path(data: Path, small_disk: Path, out: str) -> None:
    """The message was "Error: No space left on device", naming no path: the write that
    failed was into the export's hidden partial folder, which carries no name."""
    filler = fill(small_disk)
    fmt = "json" if out.endswith(".json") else "csv"
    path = small_disk / out
    failed = run(data, "export", "--format", fmt, "--out", str(path), "--to", "Dr Coach", ok=False)
    assert failed.exit_code == EXIT_ERROR
    assert failed.stderr == f"Error: {path}: No space left on device\n"
    assert list(small_disk.iterdir()) == [filler]  # nothing half-written left behind
    assert json.loads(run(data, "privacy", "report", "--json").stdout) == []  # not shared


def test_an_export_to_a_full_stdout_says_so(data: Path) -> None:
    """``phoneagent export > FILE`` on a full disk (here /dev/full, which is always full)."""
    command = [sys.executable, "-m", "phoneagent", "--data-dir", str(data), "export"]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            command,
            stdout=full,
            stderr=subprocess.PIPE,
            env={**os.environ, "PHONEAGENT_DB_KEY": KEY},
            timeout=60,
        )
    assert done.returncode == EXIT_ERROR
    assert done.stderr.decode() == "Error: standard output: No space left on device\n"


def test_share_is_ledgered_and_reported__PR_SHARE__PR_DISCLOSE(data: Path, tmp_path: Path) -> None:
    run(data, "export", "--out", str(tmp_path / "mine.json"))
    assert json.loads(run(data, "privacy", "report", "--json").stdout) == []
    run(data, "export", "--out", str(tmp_path / "coach.json"), "--to", "Dr Coach")
    (entry,) = json.loads(run(data, "privacy", "report", "--json").stdout)
    assert entry["recipient"] == "Dr Coach" and entry["asked_by_user"] is True
    assert "samples" in entry["categories"]


def test_delete_command_needs_a_scope__PR_DELETE(data: Path) -> None:
    run(data, "delete", "--yes", ok=False)
    run(data, "delete", "--all", "--device", WATCH, "--yes", ok=False)
    assert (
        "Deleted 5 sample(s) and 1 device(s)"
        in run(data, "delete", "--device", WATCH, "--yes").output
    )
    assert run(data, "delete", "--device", WATCH, "--yes", ok=False).exit_code == 4


def test_audit_json_exits_non_zero_on_a_failure__PR_ENC(data: Path) -> None:
    checks = json.loads(run(data, "privacy", "audit", "--json").stdout)
    assert {c["status"] for c in checks} <= {"pass", "n/a"} and len(checks) == 24
    (data / "leftover.json").write_text("{}")
    failed = run(data, "privacy", "audit", "--json", ok=False)
    assert "PR-ENC" in failed.output


def test_logs_upload_only_on_command_with_consent__PR_LOGS(data: Path, tmp_path: Path) -> None:
    logs_dir(data).mkdir(mode=0o700)
    (logs_dir(data) / LOG_NAME).write_text("sync ok for <mac>\n")
    out = tmp_path / "logs.zip"
    assert "account" in run(data, "logs", "upload", "--out", str(out), ok=False).output
    run(data, "account", "create", *ADULT)
    assert "log_upload" in run(data, "logs", "upload", "--out", str(out), ok=False).output
    run(data, "consent", "grant", "log_upload")
    assert "nothing was sent" in run(data, "logs", "upload", "--out", str(out)).output
    with zipfile.ZipFile(out) as z:
        assert z.read(LOG_NAME) == b"sync ok for <mac>\n"
