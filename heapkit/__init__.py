"""What a process that holds hundreds of simulated devices does with its long-lived heap:
keeps the cyclic collector off it (``collector``) and backs it with huge pages
(``hugepages``)."""

from heapkit.collector import YOUNG_COLLECTION_EVERY, freeze_long_lived, hold_full_collections
from heapkit.hugepages import back_in_background, back_with_huge_pages, huge_page_mode

__all__ = [
    "YOUNG_COLLECTION_EVERY",
    "back_in_background",
    "back_with_huge_pages",
    "freeze_long_lived",
    "hold_full_collections",
    "huge_page_mode",
]
