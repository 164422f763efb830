"""The duration histogram behind node_usage_stats.p95_duration_ms: buckets 10% wide, so the
reported p95 is never below the true one and at most 10% above it."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from projections.nodes import bucket_of, bucket_top, p95_of


@pytest.mark.parametrize("duration", [0, 1, 2, 3, 10, 99, 100, 101, 1234, 60_000, 3_600_000])
def test_a_duration_lies_in_its_bucket_and_the_bucket_is_10_percent_wide(duration: int) -> None:
    bucket = bucket_of(duration)
    assert duration <= bucket_top(bucket)
    assert bucket_top(bucket) <= max(1, math.ceil(duration * 1.1))


def test_p95_is_within_10_percent_of_the_exact_one() -> None:
    chance = random.Random(7)
    for _ in range(50):
        durations = [int(chance.lognormvariate(5, 1.5)) for _ in range(chance.randint(1, 400))]
        exact = sorted(durations)[math.ceil(0.95 * len(durations)) - 1]
        buckets = Counter(str(bucket_of(d)) for d in durations)
        assert exact <= p95_of(dict(buckets)) <= max(1, math.ceil(exact * 1.1))


def test_no_runs_have_no_p95() -> None:
    assert p95_of({}) == 0
