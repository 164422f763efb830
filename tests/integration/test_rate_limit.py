"""Rate limiting on real Redis and in memory: counting, refusing, sliding, isolation, recording."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from application.ids import is_id
from application.ratelimit import (
    BlockedWindow,
    BlockedWindowRecorder,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiterUnavailable,
    RateLimiting,
    RateLimitPolicy,
    RedisRateLimiter,
)
from tests.integration.helpers import rows

T = TypeVar("T")
Scenario = Callable[[RateLimiter], Awaitable[T]]


@pytest.fixture(params=["redis", "memory"])
def with_limiter(request: pytest.FixtureRequest) -> Callable[[Scenario[Any]], Any]:
    """Run an async scenario against a limiter of each backend; Redis keys get a prefix of this
    test's own, so runs and tests never share a counter."""

    def run(scenario: Scenario[T]) -> T:
        async def main() -> T:
            if request.param == "memory":
                return await scenario(MemoryRateLimiter())
            client = aioredis.from_url(request.getfixturevalue("redis_url"))
            try:
                prefix = f"a2n-test:{uuid.uuid4().hex}:"
                return await scenario(RedisRateLimiter(client, prefix=prefix))
            finally:
                await client.aclose()

        return asyncio.run(main())

    return run


def test_requests_under_the_limit_are_allowed_and_counted(with_limiter: Any) -> None:
    async def scenario(limiter: RateLimiter) -> list[tuple[bool, int, int]]:
        decisions = [await limiter.check("k", Limit(3, 60)) for _ in range(3)]
        assert all(0 < d.reset_after <= 60 and d.retry_after == 0 for d in decisions)
        return [(d.allowed, d.count, d.remaining) for d in decisions]

    assert with_limiter(scenario) == [(True, 1, 2), (True, 2, 1), (True, 3, 0)]


def test_over_the_limit_is_refused_until_the_oldest_request_leaves(with_limiter: Any) -> None:
    async def scenario(limiter: RateLimiter) -> None:
        limit = Limit(2, 10)
        started = time.monotonic()
        assert (await limiter.check("k", limit)).allowed
        assert (await limiter.check("k", limit)).allowed
        refused = await limiter.check("k", limit)
        elapsed = time.monotonic() - started
        assert not refused.allowed
        assert (refused.remaining, refused.count, refused.first_block) == (0, 2, True)
        # The oldest request frees its slot one window after it was counted.
        assert 10 - elapsed - 0.01 <= refused.retry_after <= 10
        again = await limiter.check("k", limit)
        assert not again.allowed
        assert not again.first_block

    with_limiter(scenario)


def test_the_window_slides(with_limiter: Any) -> None:
    async def scenario(limiter: RateLimiter) -> None:
        limit = Limit(2, 2.0)
        assert (await limiter.check("k", limit)).allowed  # a
        await asyncio.sleep(1.0)
        assert (await limiter.check("k", limit)).allowed  # b
        refused = await limiter.check("k", limit)
        assert not refused.allowed
        assert refused.retry_after <= 1.01  # Redis counts whole milliseconds
        await asyncio.sleep(refused.retry_after + 0.02)
        # a has left the window, b has not: one slot, not a fresh window of two.
        assert (await limiter.check("k", limit)).allowed
        after = await limiter.check("k", limit)
        assert not after.allowed
        await asyncio.sleep(after.retry_after + 0.02)
        assert (await limiter.check("k", limit)).allowed

    with_limiter(scenario)


def test_peek_tells_what_a_check_would_decide_and_counts_nothing(with_limiter: Any) -> None:
    async def scenario(limiter: RateLimiter) -> None:
        limit = Limit(2, 10)
        empty = await limiter.peek("k", limit)
        assert (empty.allowed, empty.count, empty.remaining, empty.retry_after) == (True, 0, 2, 0)
        for _ in range(5):
            assert (await limiter.peek("k", limit)).allowed
        await limiter.check("k", limit)
        assert (await limiter.peek("k", limit)).count == 1
        await limiter.check("k", limit)
        full = await limiter.peek("k", limit)
        assert (full.allowed, full.count, full.remaining) == (False, 2, 0)
        assert 9 <= full.retry_after <= 10
        refused = await limiter.check("k", limit)
        # Peeking at a full window opened no blocked window: the first refusal still does.
        assert not refused.allowed
        assert refused.first_block

    with_limiter(scenario)


def test_concurrent_checks_never_exceed_the_limit(with_limiter: Any) -> None:
    async def scenario(limiter: RateLimiter) -> int:
        decisions = await asyncio.gather(*(limiter.check("k", Limit(10, 60)) for _ in range(40)))
        return sum(d.allowed for d in decisions)

    assert with_limiter(scenario) == 10


def test_counters_are_separate_per_identifier_and_group(with_limiter: Any) -> None:
    policy = RateLimitPolicy({"read": Limit(1, 60), "write": Limit(1, 60)})

    async def scenario(limiter: RateLimiter) -> None:
        limiting = RateLimiting(limiter, policy)

        async def allowed(group: str, **who: Any) -> bool:
            verdict = await limiting.check(group, **{"ip": "192.0.2.1", **who})
            assert verdict is not None
            return verdict.decision.allowed

        assert await allowed("read", user_id="a")
        assert not await allowed("read", user_id="a")
        assert await allowed("read", user_id="b")
        assert await allowed("write", user_id="a")
        assert await allowed("read", user_id="a", api_key_id="k1")  # a key has its own budget
        assert await allowed("read", ip="a")  # an address never shares a user's counter
        assert await allowed("read")  # anonymous: by address
        assert not await allowed("read", ip="192.0.2.1")

    with_limiter(scenario)


def test_ip_keyed_groups_count_by_address_even_when_authenticated(with_limiter: Any) -> None:
    policy = RateLimitPolicy.defaults(auth=Limit(1, 60, key_by="ip"))

    async def scenario(limiter: RateLimiter) -> list[str]:
        limiting = RateLimiting(limiter, policy)
        first = await limiting.check("auth", ip="198.51.100.9", user_id="a")
        second = await limiting.check("auth", ip="198.51.100.9", user_id="b")
        assert first is not None
        assert second is not None
        assert first.decision.allowed
        assert not second.decision.allowed
        return [first.identifier, second.identifier]

    assert with_limiter(scenario) == ["ip:198.51.100.9", "ip:198.51.100.9"]


def test_groups_without_a_limit_are_not_checked() -> None:
    limiting = RateLimiting(MemoryRateLimiter(), RateLimitPolicy.defaults(read=None))
    assert asyncio.run(limiting.check("read", ip="192.0.2.1")) is None
    assert asyncio.run(limiting.check("nonexistent", ip="192.0.2.1")) is None
    assert asyncio.run(limiting.check("write", ip="192.0.2.1")) is not None


def test_a_blocked_window_is_recorded_once(with_limiter: Any, database_url: str) -> None:
    ip = f"test-{uuid.uuid4().hex}"

    async def scenario(limiter: RateLimiter) -> None:
        async with pooled(database_url) as pool:
            limiting = RateLimiting(
                limiter, RateLimitPolicy({"write": Limit(2, 60)}), BlockedWindowRecorder(pool)
            )
            verdicts = [await limiting.check("write", ip=ip) for _ in range(12)]
        assert [v.decision.allowed for v in verdicts if v] == [True, True] + [False] * 10

    with_limiter(scenario)
    found = rows(
        database_url,
        "SELECT id, identifier, endpoint, request_count, window_start, window_end, is_blocked, "
        "created_at FROM api_rate_limit WHERE identifier = %s",
        (f"ip:{ip}",),
    )
    assert len(found) == 1
    row_id, identifier, endpoint, count, start, end, blocked, created = found[0]
    assert is_id(row_id)
    assert (identifier, endpoint, count, blocked) == (f"ip:{ip}", "write", 3, True)
    assert end - start == timedelta(seconds=60)
    assert created is not None


def test_each_new_blocked_window_gets_its_own_row(with_limiter: Any, database_url: str) -> None:
    ip = f"test-{uuid.uuid4().hex}"

    async def scenario(limiter: RateLimiter) -> None:
        async with pooled(database_url) as pool:
            limiting = RateLimiting(
                limiter, RateLimitPolicy({"read": Limit(1, 1.0)}), BlockedWindowRecorder(pool)
            )
            for _ in range(2):
                outcomes = [await limiting.check("read", ip=ip) for _ in range(4)]
                assert [v.decision.allowed for v in outcomes if v] == [True, False, False, False]
                await asyncio.sleep(1.1)

    with_limiter(scenario)
    found = rows(
        database_url,
        "SELECT window_start, window_end FROM api_rate_limit WHERE identifier = %s "
        "ORDER BY window_end",
        (f"ip:{ip}",),
    )
    assert len(found) == 2
    assert found[0][1] <= found[1][0]  # windows do not overlap


def test_the_recorder_skips_a_window_already_recorded(database_url: str) -> None:
    identifier = f"ip:test-{uuid.uuid4().hex}"
    end = datetime.now(UTC)
    window = BlockedWindow(identifier, "write", 3, end - timedelta(seconds=60), end)
    later = BlockedWindow(identifier, "write", 3, end, end + timedelta(seconds=60))

    async def record_all() -> list[bool]:
        async with pooled(database_url) as pool:
            recorder = BlockedWindowRecorder(pool)
            return [await recorder.record(w) for w in (window, window, later)]

    assert asyncio.run(record_all()) == [True, False, True]


def test_memory_stays_bounded_and_idle_keys_go() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(max_keys=3, clock=lambda: now[0])
    for i in range(5):
        limiter.check_now(f"k{i}", Limit(5, 10))
    assert len(limiter) == 3
    now[0] += 11
    limiter.check_now("fresh", Limit(5, 10))
    assert len(limiter) == 1


def test_memory_limiter_is_safe_across_threads() -> None:
    limiter = MemoryRateLimiter()
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(25):
            decision = limiter.check_now("shared", Limit(50, 60))
            with lock:
                allowed.append(decision.allowed)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 50


def test_redis_keys_expire_with_their_window(redis_url: str) -> None:
    async def scenario() -> tuple[int, int]:
        client = aioredis.from_url(redis_url)
        prefix = f"a2n-test:{uuid.uuid4().hex}:"
        try:
            limiter = RedisRateLimiter(client, prefix=prefix)
            await limiter.check("k", Limit(1, 5))
            await limiter.check("k", Limit(1, 5))
            return await client.pttl(f"{prefix}{{k}}"), await client.pttl(f"{prefix}{{k}}:blocked")
        finally:
            await client.aclose()

    log_ttl, marker_ttl = asyncio.run(scenario())
    assert 0 < log_ttl <= 5000
    assert 0 < marker_ttl <= 5000


def test_an_unreachable_redis_is_reported_not_hidden() -> None:
    async def scenario() -> None:
        client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
        try:
            with pytest.raises(RateLimiterUnavailable):
                await RedisRateLimiter(client).check("k", Limit(1, 5))
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(("requests", "window"), [(0, 60.0), (1, 0.0)])
def test_limits_must_allow_something(requests: int, window: float) -> None:
    with pytest.raises(ValueError, match="at least"):
        Limit(requests, window)


@asynccontextmanager
async def pooled(url: str) -> AsyncIterator[AsyncConnectionPool]:
    """An opened async pool on `url`, as the API opens its own."""
    pool = AsyncConnectionPool(url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=15)
    try:
        yield pool
    finally:
        await pool.close()
