"""A disk that really fills: a small tmpfs mounted for one test (root, or passwordless
sudo as on CI), filled with a file and freed by deleting it."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

DISK_SIZE = "3m"


def _mount_command() -> list[str] | None:
    """How to mount here: as root directly, else through passwordless sudo (CI)."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    return None


def can_mount() -> bool:
    return _mount_command() is not None


@contextmanager
def tmpfs(disk: Path, size: str = DISK_SIZE) -> Iterator[Path]:
    """A tmpfs of ``size`` on the new directory ``disk``, owned by this user, unmounted
    afterwards (also for the soak run, ``tests/soak_faults.py``)."""
    prefix = _mount_command()
    assert prefix is not None, "mounting a tmpfs needs root or passwordless sudo"
    disk.mkdir()
    options = f"size={size},mode=0700,uid={os.getuid()},gid={os.getgid()}"
    subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run([*prefix, "umount", str(disk)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ``DISK_SIZE`` for one test."""
    if not can_mount():
        pytest.skip("mounting a small tmpfs needs root or passwordless sudo")
    with tmpfs(tmp_path / "disk") as disk:
        yield disk


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; deleting it frees the space."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler
