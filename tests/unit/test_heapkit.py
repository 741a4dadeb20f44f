"""``heapkit.back_with_huge_pages`` against the running kernel: what it reports backed is
on huge pages, and mappings it must not touch are left alone."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from heapkit import back_with_huge_pages

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _collapse_possible() -> bool:
    """Linux 6.1 or later (``MADV_COLLAPSE``), transparent huge pages not switched off."""
    if not sys.platform.startswith("linux") or not THP.exists() or "[never]" in THP.read_text():
        return False
    major, minor = (int(part) for part in platform.release().split(".")[:2])
    return (major, minor) >= (6, 1)


@pytest.mark.skipif(not _collapse_possible(), reason="no MADV_COLLAPSE here")
def test_what_it_reports_backed_is_on_huge_pages() -> None:
    # A fresh process, so that the figure is its own: 64 MiB of small objects, as a
    # fleet's heap is, then the call and the kernel's count of its huge pages.
    script = (
        "import heapkit\n"
        "objects = [[i] for i in range(1_000_000)]\n"
        "backed = heapkit.back_with_huge_pages()\n"
        "huge = [int(line.split()[1]) * 1024 for line in open('/proc/self/smaps_rollup')\n"
        "        if line.startswith('AnonHugePages:')][0]\n"
        "print(backed, huge)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    backed, huge = (int(x) for x in out.split())
    assert backed >= 32 << 20
    assert huge >= backed


def test_mappings_that_are_not_a_private_heap_or_hold_no_whole_huge_page_are_left(
    tmp_path: Path,
) -> None:
    maps = tmp_path / "maps"
    maps.write_text(
        # a file mapping, a shared one, a read-only one, and anonymous memory under 2 MiB
        "200000000-200400000 rw-p 00000000 08:01 1234 /usr/lib/libexample.so\n"
        "200400000-200800000 rw-s 00000000 00:01 99 /dev/zero (deleted)\n"
        "200800000-200c00000 r--p 00000000 00:00 0 \n"
        "200c80000-200e80000 rw-p 00000000 00:00 0 \n"
    )
    assert back_with_huge_pages(maps) == 0


def test_a_range_the_kernel_refuses_counts_for_nothing(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    # Anonymous in form, but nothing is mapped there in this process: madvise fails.
    maps.write_text("200000000-200400000 rw-p 00000000 00:00 0 \n")
    assert back_with_huge_pages(maps) == 0
