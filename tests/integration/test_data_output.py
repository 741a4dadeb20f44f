"""``phoneagent data`` streams (issue 16 item 4): rows go out as the store reads them.

A 7-day sync is 600k rows; the table used to be built whole before anything was
printed, and printed nothing for minutes. These tests check the order of events and the
memory, never a duration.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneagent.cli import main
from phoneagent.cli.data import WRITERS, rows_of
from phoneagent.errors import EXIT_UNREACHABLE
from phoneagent.store import Store, StoredSample, create_key_file, read_key_file
from protocol.metrics import Metric, Sample

WATCH = "F0:F1:F2:F3:F4:F5"
PAGES = 2500  # more than two of the store's 1000-row pages


def fill(data: Path, count: int) -> Path:
    """A store of ``count`` samples of one watch; returns its key file."""
    data.mkdir(mode=0o700)
    key_file = data.parent / "key"
    with Store.open(data, create_key_file(key_file)) as store:
        store.add_device(WATCH)
        metrics = list(Metric)
        store.store_batch(
            WATCH,
            [
                Sample(s, 1_780_000_000 + s, metrics[s % 4], 60 + s % 50)
                for s in range(1, count + 1)
            ],
        )
    return key_file


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "agent"
    return data, fill(data, PAGES)


class Recorder(io.StringIO):
    """Output that notes, at each write, how many samples had been read by then."""

    def __init__(self) -> None:
        super().__init__()
        self.samples_read = 0
        self.read_at_write: list[int] = []

    def counted(self, samples: Iterator[StoredSample]) -> Iterator[StoredSample]:
        for sample in samples:
            self.samples_read += 1
            yield sample

    def write(self, text: str) -> int:
        self.read_at_write.append(self.samples_read)
        return super().write(text)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_the_first_row_is_written_before_the_second_is_read(
    stored: tuple[Path, Path], fmt: str
) -> None:
    data, key_file = stored
    out = Recorder()
    with Store.open(data, read_key_file(key_file)) as store:
        WRITERS[fmt](rows_of(out.counted(store.iter_samples())), out)
    # Header (nothing read yet), then row 1 as soon as it was read: no row waits for the rest.
    assert out.read_at_write[:3] in ([0, 1, 2], [1, 2, 3])
    assert out.samples_read == PAGES
    assert _parse(fmt, out.getvalue()) == list(range(1, PAGES + 1))


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_memory_stays_bounded_by_a_page_not_the_range(tmp_path: Path, fmt: str) -> None:
    data = tmp_path / "agent"
    key_file = fill(data, 40_000)
    with Store.open(data, read_key_file(key_file)) as store, open("/dev/null", "w") as sink:
        tracemalloc.start()
        try:
            WRITERS[fmt](rows_of(store.iter_samples()), sink)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # 40k rows held at once take well over 10 MB; one page of 1000 a few hundred kB.
    assert peak < 3_000_000


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_data_prints_every_row_in_every_format(stored: tuple[Path, Path], fmt: str) -> None:
    data, key_file = stored
    result = _cli(data, key_file, "data", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert _parse(fmt, result.stdout) == list(range(1, PAGES + 1))
    limited = _cli(data, key_file, "data", "--format", fmt, "--limit", "3", "--metric", "spo2")
    assert _parse(fmt, limited.stdout) == [2, 6, 10]


def test_an_unknown_device_names_the_pair_command_and_prints_no_rows(
    stored: tuple[Path, Path],
) -> None:
    """Issue 16 item 8: "add it first" did not say how."""
    data, key_file = stored
    result = _cli(data, key_file, "data", "--device", "c0:ff:ee:00:00:01")
    assert result.exit_code == EXIT_UNREACHABLE
    assert "phoneagent pair C0:FF:EE:00:00:01" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_a_reader_that_leaves_early_gets_no_traceback(stored: tuple[Path, Path]) -> None:
    """``phoneagent data | head -1``: the pipe closes while rows are still coming."""
    data, key_file = stored
    command = [sys.executable, "-m", "phoneagent", "--data-dir", str(data)]
    command += ["--key-file", str(key_file), "data"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline().split()[:2] == [b"device", b"seq"]
        process.stdout.close()  # far more than a pipe's buffer is still to come
        errors = process.stderr.read().decode()
    assert process.returncode == 0, errors
    assert errors == ""


def _cli(data: Path, key_file: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), "--key-file", str(key_file), *args])


def _parse(fmt: str, text: str) -> list[int]:
    """The seqs of the printed rows."""
    if fmt == "json":
        return [row["seq"] for row in json.loads(text)]
    if fmt == "csv":
        return [int(row["seq"]) for row in csv.DictReader(io.StringIO(text))]
    lines = text.splitlines()
    assert lines[0].split() == ["device", "seq", "time", "metric", "value", "unit", "source"]
    assert lines[-1] == f"{len(lines) - 2} sample(s)"
    return [int(line.split()[1]) for line in lines[1:-1]]
