"""What a process that holds hundreds of simulated devices does with its long-lived heap.

A fleet process (``watchsim fleet``'s watches, ``phoneagent fleet``'s agent workers)
serves each device for a moment a second, so every device's objects, store pages and
cipher state are out of the CPU's caches and its address translations out of the TLB
by the time their turn comes again. In a virtual machine a TLB miss walks two sets of
page tables. Backed by 2 MiB pages instead of 4 KiB ones, the same heap needs 512 times
fewer translations: at N=1,000 the fleet used about a fifth less CPU (docs/scaling.md,
step 20). The kernel's default here (transparent huge pages on ``madvise``) gives a
process none unless it asks, which is what ``back_with_huge_pages`` does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["back_with_huge_pages"]

_HUGE = 2 << 20  # bytes in an x86-64 / arm64 transparent huge page
_MADV_HUGEPAGE = 14  # later faults in the range may take huge pages (Linux 2.6.38)
_MADV_COLLAPSE = 25  # back the range with huge pages now (Linux 6.1)
# Private anonymous read-write mappings: the C heap, the interpreter's object arenas.
_ANONYMOUS = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) rw-p 0+ 00:00 0\s*(\[heap\])?\s*$")


def back_with_huge_pages(maps: Path = Path("/proc/self/maps")) -> int:
    """Ask the kernel to back this process's anonymous heap with huge pages: what is
    there now at once, what grows there later as it faults in. Returns the bytes it
    backed; 0 where the kernel cannot (not Linux, older than 6.1, huge pages off or none
    free), which costs nothing but the speed-up. Call it once the long-lived objects are
    made (after ``gc.freeze``): the collapse copies what is resident, a few hundred
    megabytes a second."""
    if not sys.platform.startswith("linux") or not maps.exists():
        return 0
    madvise = _madvise()
    backed = 0
    for line in maps.read_text().splitlines():
        match = _ANONYMOUS.match(line)
        if match is None:
            continue
        start, end = int(match[1], 16), int(match[2], 16)
        first, last = -(-start // _HUGE) * _HUGE, end // _HUGE * _HUGE
        if last <= first:
            continue  # no whole huge page fits
        madvise(start, end - start, _MADV_HUGEPAGE)
        if madvise(first, last - first, _MADV_COLLAPSE) == 0:
            backed += last - first
    return backed


def _madvise() -> Callable[[int, int, int], int]:
    """libc's ``madvise``: Python's ``mmap.madvise`` reaches only its own mappings."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    function = libc.madvise
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    call: Callable[[int, int, int], int] = function
    return call
