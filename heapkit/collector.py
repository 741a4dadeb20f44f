"""The cyclic collector in a process that holds hundreds of simulated devices.

CPython's collector walks every object of a generation it collects, and a full
collection walks them all. While a fleet process makes its devices' long-lived objects
(models, histories, GATT tables; stores, radios, connections, MQTT clients), each full
collection walked everything made so far and found next to nothing: at 1,000 pairs the
watch process spent 1.2-2.2 CPU-s of every 10 s in them while its watches started, and
each agent worker about 1 s of every 10 s, each a pause of its loop, until its agents'
live state was frozen (docs/scaling.md, step 22). So:

- ``hold_full_collections`` while the devices are made: young and middle collections
  still take the cycles that die young; what is left is taken by
- ``freeze_long_lived``, once they are made: one full collection, then ``gc.freeze``,
  which puts what survived out of every later collection's sight, and full collections
  back on CPython's schedule.

Either call also makes a young collection come every ``YOUNG_COLLECTION_EVERY`` net
allocations instead of every 700: what is young in a running fleet is each second's
messages, which reference counting frees, and at 700 an agent worker made 3-4 young
collections a second that walked them for about 15 ms and found almost no cycles.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_COLLECTION_EVERY: Final = 10_000
_MIDDLE_EVERY: Final = 10  # young collections per middle one: CPython's
_FULL_EVERY: Final = 10  # middle collections per full one: CPython's
_FULL_HELD: Final = 2**31 - 1  # middle collections per full one: never, in practice


def hold_full_collections() -> None:
    """No automatic full collection until ``freeze_long_lived``."""
    gc.set_threshold(YOUNG_COLLECTION_EVERY, _MIDDLE_EVERY, _FULL_HELD)


def freeze_long_lived() -> None:
    """What lives now is out of the collector's sight from here on (after one full
    collection, which takes what cycles are left), and full collections are back."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, _MIDDLE_EVERY, _FULL_EVERY)
