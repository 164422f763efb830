"""The buckets of the run duration histogram (/metrics `a2n_execution_duration_seconds`).

Fixed here because the workflows projector counts runs into them: changing the bounds means
rebuilding that projector, or the counts mix two sets of bounds.
"""

from __future__ import annotations

import bisect
import math

DURATION_BUCKETS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
"""Upper bounds in seconds; a run longer than the last falls in the +Inf bucket."""


def bucket_of(duration_ms: int) -> float:
    """The smallest bound that holds a run of `duration_ms` milliseconds (math.inf: none)."""
    index = bisect.bisect_left(DURATION_BUCKETS, duration_ms / 1000)
    return DURATION_BUCKETS[index] if index < len(DURATION_BUCKETS) else math.inf
