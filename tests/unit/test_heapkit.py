"""``heapkit.back_with_huge_pages``: which mappings it asks the kernel about, page by page,
and, against the running kernel, that what it reports backed is on huge pages."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from heapkit import back_with_huge_pages, huge_page_mode

MIB = 1 << 20
HUGE = 2 * MIB


def _collapse_possible() -> bool:
    """Linux 6.1 or later (``MADV_COLLAPSE``), transparent huge pages not switched off."""
    if not sys.platform.startswith("linux") or huge_page_mode() in (None, "never"):
        return False
    release = re.match(r"(\d+)\.(\d+)", platform.release())
    return release is not None and (int(release[1]), int(release[2])) >= (6, 1)


def _mapping(start: int, end: int, kind: str, rss_kb: int) -> str:
    return (
        f"{start:x}-{end:x} {kind}\n"
        f"Size:           {(end - start) // 1024} kB\n"
        "KernelPageSize:        4 kB\n"
        f"Rss:            {rss_kb} kB\n"
        "VmFlags: rd wr mr mw me ac\n"
    )


def test_only_mostly_resident_private_anonymous_mappings_are_asked_page_by_page(
    tmp_path: Path,
) -> None:
    base = 0x7F00_0000_0000
    smaps = tmp_path / "smaps"
    smaps.write_text(
        # The C heap, resident, from mid-page: its two whole huge pages inside.
        _mapping(base + MIB, base + 3 * HUGE + MIB, "rw-p 00000000 00:00 0   [heap]", 6144)
        # Arenas, unnamed, three quarters resident: one huge page.
        + _mapping(base + 4 * HUGE, base + 5 * HUGE, "rw-p 00000000 00:00 0 ", 1536)
        # A thread's stack, barely touched; the main stack; a file; a shared mapping;
        # a read-only one; and a resident one too small for a whole huge page.
        + _mapping(base + 6 * HUGE, base + 10 * HUGE, "rw-p 00000000 00:00 0 ", 64)
        + _mapping(base + 10 * HUGE, base + 11 * HUGE, "rw-p 00000000 00:00 0   [stack]", 2048)
        + _mapping(base + 11 * HUGE, base + 12 * HUGE, "rw-p 00000000 08:01 77 /lib/x.so", 2048)
        + _mapping(base + 12 * HUGE, base + 13 * HUGE, "rw-s 00000000 00:01 9 /dev/zero", 2048)
        + _mapping(base + 13 * HUGE, base + 14 * HUGE, "r--p 00000000 00:00 0 ", 2048)
        + _mapping(base + 14 * HUGE + MIB, base + 15 * HUGE + MIB, "rw-p 00000000 00:00 0 ", 2048)
    )
    asked: list[tuple[int, int, int]] = []

    def madvise(address: int, length: int, advice: int) -> int:
        asked.append((address, length, advice))
        return -1 if address == base + 2 * HUGE else 0  # the kernel refuses one

    backed = back_with_huge_pages(smaps, madvise, page_size=HUGE)

    collapse = 25
    assert asked == [
        (base + HUGE, HUGE, collapse),
        (base + 2 * HUGE, HUGE, collapse),
        (base + 4 * HUGE, HUGE, collapse),
    ]
    assert backed == 2 * HUGE  # the refused page is not counted


@pytest.mark.skipif(not _collapse_possible(), reason="no MADV_COLLAPSE here")
def test_what_it_reports_backed_is_on_huge_pages() -> None:
    # A fresh process, so that the figure is its own: about 100 MB of small objects, as
    # a fleet's heap is, then the call and the kernel's count of its huge pages.
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
    assert backed >= 16 * MIB  # huge pages are on here: a refusal of all is the code's
    assert huge >= backed
