"""Start-up objects are frozen out of the collector's full passes, and start-up's garbage is
collected first, never frozen (a frozen reference cycle would never be freed)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from api.heap import freeze_start_up_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process goes on collecting everything


def test_live_objects_freeze_and_garbage_cycles_are_freed_first(unfrozen_after: None) -> None:
    kept = Node()
    garbage, partner = Node(), Node()
    garbage.other, partner.other = partner, garbage  # a cycle only the collector frees
    gone = weakref.ref(garbage)
    del garbage, partner
    assert gone() is not None
    assert any(o is kept for o in gc.get_objects())  # walked by every full collection
    frozen = freeze_start_up_objects()
    assert gone() is None
    assert frozen > 0  # (other threads' objects may be freed, and leave the frozen ones, meanwhile)
    assert all(o is not kept for o in gc.get_objects())  # no longer walked
