"""``heapkit.collector``: full collections held while a fleet's devices are made, then one
that takes the dead cycles, and what lives frozen out of every later collection's sight
(``tests/conftest.py`` gives the test process its schedule back afterwards)."""

from __future__ import annotations

import gc
import weakref

from heapkit import YOUNG_COLLECTION_EVERY, freeze_long_lived, hold_full_collections


class _Node:
    """A collectable object that can point at itself."""

    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_held_full_collections_come_back_at_the_freeze() -> None:
    hold_full_collections()
    young, middle, full = gc.get_threshold()
    assert (young, middle) == (YOUNG_COLLECTION_EVERY, 10)
    assert full >= 2**31 - 1  # middle collections before a full one: never, in practice

    freeze_long_lived()
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10)


def test_the_freeze_takes_dead_cycles_and_puts_the_living_out_of_sight() -> None:
    dead = _Node()
    dead.peer = dead
    gone = weakref.ref(dead)
    living = _Node()
    living.peer = living
    gc.collect()  # both in the oldest generation, which only a full collection walks
    del dead
    frozen_before = gc.get_freeze_count()

    freeze_long_lived()

    assert gone() is None
    assert gc.get_freeze_count() > frozen_before
    assert not any(o is living for o in gc.get_objects())  # no generation holds it
