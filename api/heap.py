"""Start-up objects kept out of the garbage collector's full passes.

A long-running role holds some 100,000-170,000 objects made while starting: modules, classes,
functions, routes, the node catalog. CPython's full (generation 2) collection walks every one
of them each time it runs, which under load was about every 20 s, holding the GIL for 50-140
ms: every request and projector batch in flight waited (benchmarks/RESULTS.md, stop 23: p99 at
200 runs/s 153-258 ms with those pauses, 72-123 ms in four of five passes without).
`gc.freeze()` moves the objects alive at that moment to a permanent generation the collector no
longer walks; later full passes take about 3 ms.
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> int:
    """Collect the garbage of start-up, then freeze what is left; how many objects froze.
    Collecting first matters: a reference cycle frozen as garbage would never be freed."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
