"""A fleet process's long-lived heap on huge pages.

A fleet process (``watchsim fleet``'s watches, ``phoneagent fleet``'s agent workers)
serves each device for a moment a second, so by a device's turn its objects, store pages
and cipher state have left the CPU's caches and their address translations the TLB; in
a virtual machine a TLB miss walks two sets of page tables. Backed by 2 MiB pages instead
of 4 KiB ones, the same heap needs 512 times fewer translations (docs/scaling.md, step
20). The kernel's default here (transparent huge pages on ``madvise``) gives a process
none unless it asks, which is what ``back_with_huge_pages`` does.
"""

from __future__ import annotations

import ctypes
import logging
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Madvise = Callable[[int, int, int], int]  # libc's madvise(address, length, advice): 0 or -1

_MADV_COLLAPSE = 25  # back a range with huge pages now (Linux 6.1)
_SMAPS = Path("/proc/self/smaps")
_THP = Path("/sys/kernel/mm/transparent_hugepage")
# A private anonymous read-write mapping, unnamed (the interpreter's object arenas, the
# C library's other arenas, thread stacks) or the C heap; not the main thread's stack.
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
_ANONYMOUS = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) rw-p 0+ 00:00 0\s*(\[heap\])?\s*$")
_FIELD = re.compile(r"^(Size|Rss):\s+(\d+) kB$")
# A mapping at least this resident is heap in use; a thread's stack or a sparse arena is
# not, and collapsing it would fill its missing pages with zeros.
_RESIDENT = 0.75


def back_with_huge_pages(
    smaps: Path = _SMAPS, madvise: Madvise | None = None, page_size: int | None = None
) -> int:
    """Back the mostly resident private anonymous mappings of this process with huge
    pages, one huge page at a time; returns the bytes backed, 0 where the kernel cannot
    (not Linux, older than 6.1, none free) or the machine's owner said not to
    (transparent huge pages ``never``, which ``MADV_COLLAPSE`` would not heed): each
    failure costs a system call and nothing else. A mapping counts when at least
    ``_RESIDENT`` of it is; the missing pages within a page it backs are filled (the
    fleet's RSS per pair at N=1,000 did not move: 1.06-1.07 MB). Meant for once the
    long-lived objects are made (after ``gc.freeze``): it copies a few hundred megabytes
    a second. ``madvise`` and ``page_size`` stand in for the kernel's in tests."""
    if madvise is None:
        off = huge_page_mode() == "never"
        if not sys.platform.startswith("linux") or not smaps.exists() or off:
            return 0
        madvise = _libc_madvise()
    if page_size is None:
        size_file = _THP / "hpage_pmd_size"
        page_size = int(size_file.read_text()) if size_file.exists() else 2 << 20
    backed = 0
    for start, end in _resident_heap(smaps.read_text(errors="replace")):
        first, last = -(-start // page_size) * page_size, end // page_size * page_size
        for page in range(first, last, page_size):
            if madvise(page, page_size, _MADV_COLLAPSE) == 0:
                backed += page_size
    return backed


def back_in_background() -> threading.Thread:
    """``back_with_huge_pages`` on a thread of its own, which logs what it backed: the
    copying takes a second or so, and the caller's event loop goes on meanwhile."""

    def back() -> None:
        try:
            backed = back_with_huge_pages()
        except (OSError, ValueError) as error:  # an unreadable /proc or /sys: no speed-up
            log.warning("heap not backed with huge pages: %s", error)
        else:
            log.info("%d MiB of the heap on huge pages", backed >> 20)

    thread = threading.Thread(target=back, name="huge-pages", daemon=True)
    thread.start()
    return thread


def huge_page_mode() -> str | None:
    """The kernel's transparent huge page setting (``always``, ``madvise``, ``never``);
    None where it has none to read."""
    setting = _THP / "enabled"
    if not setting.exists():
        return None
    match = re.search(r"\[(\w+)\]", setting.read_text())
    return None if match is None else match[1]


def _resident_heap(smaps: str) -> list[tuple[int, int]]:
    """(start, end) of each private anonymous mapping at least ``_RESIDENT`` resident."""
    found: list[tuple[int, int]] = []
    mapping: tuple[int, int] | None = None
    size = 0
    for line in smaps.splitlines():
        if _MAPPING.match(line):
            match = _ANONYMOUS.match(line)
            mapping = None if match is None else (int(match[1], 16), int(match[2], 16))
        elif mapping is not None and (field := _FIELD.match(line)) is not None:
            if field[1] == "Size":
                size = int(field[2])
            else:  # Rss, which follows Size
                if size and int(field[2]) >= _RESIDENT * size:
                    found.append(mapping)
                mapping = None
    return found


def _libc_madvise() -> Madvise:
    """libc's ``madvise``: Python's ``mmap.madvise`` reaches only its own mappings."""
    function = ctypes.CDLL(None, use_errno=True).madvise
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    call: Madvise = function
    return call
