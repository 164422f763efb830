"""The execution queues (in-process and Redis Streams) and the leases, against the real Redis."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from application.executions.leases import Leases, MemoryLeases, RedisLeases
from application.executions.queue import Delivery, MemoryQueue
from application.executions.redis_queue import RedisStreamQueue


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"a2n:test-{uuid.uuid4().hex[:12]}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)
    client.close()


@asynccontextmanager
async def stream_queue(
    redis_url: str, prefix: str, consumer: str, lease_seconds: int = 30
) -> AsyncIterator[RedisStreamQueue]:
    """A worker's queue, its entries abandoned (and leases run out) after `lease_seconds`."""
    sync_client = redis.Redis.from_url(redis_url)
    client = aioredis.from_url(redis_url)
    try:
        leases = RedisLeases(client, prefix=prefix, seconds=lease_seconds)
        yield RedisStreamQueue(sync_client, client, leases, prefix=prefix, consumer=consumer)
    finally:
        await client.aclose()
        sync_client.close()


async def one(queue: Any, timeout: float) -> Delivery | None:
    """The one delivery a receive of at most one answered, or None."""
    found = await queue.receive(timeout)
    assert len(found) <= 1
    return found[0] if found else None


def received(queue: Any, count: int) -> Callable[[], Awaitable[list[str]]]:
    async def take() -> list[str]:
        ids = []
        for _ in range(count):
            delivery = await one(queue, 1.0)
            assert delivery is not None
            ids.append(delivery.execution_id)
            await queue.ack(delivery)
        return ids

    return take


def test_the_memory_queue_serves_higher_priority_first_then_in_order() -> None:
    queue = MemoryQueue()
    for execution_id, priority in [("a", 0), ("b", 5), ("c", 0), ("d", -3), ("e", 5)]:
        queue.submit(execution_id, priority)
    assert asyncio.run(received(queue, 5)()) == ["b", "e", "a", "c", "d"]


def test_the_memory_queue_wakes_a_waiting_worker_when_a_thread_submits() -> None:
    queue = MemoryQueue()

    async def wait_then_submit() -> str | None:
        waiting = asyncio.create_task(one(queue, 5.0))
        await asyncio.sleep(0.05)
        threading.Thread(target=queue.submit, args=("late", 0)).start()
        delivery = await waiting
        return delivery.execution_id if delivery else None

    assert asyncio.run(wait_then_submit()) == "late"
    assert asyncio.run(queue.receive(0.05)) == []


def test_the_stream_queue_serves_priority_bands_in_order(redis_url: str, prefix: str) -> None:
    async def scenario() -> list[str]:
        async with stream_queue(redis_url, prefix, "w1") as queue:
            for execution_id, priority in [("a", 0), ("b", -1), ("c", 9), ("d", 0)]:
                queue.submit(execution_id, priority)
            taken = await received(queue, 4)()
            assert await queue.receive(0.1) == []
            assert await queue.depth() == 0
            return taken

    assert asyncio.run(scenario()) == ["c", "a", "d", "b"]


def test_a_dead_workers_entry_is_taken_over_once_abandoned(redis_url: str, prefix: str) -> None:
    async def scenario() -> tuple[str | None, str | None]:
        async with (
            stream_queue(redis_url, prefix, "dead", lease_seconds=1) as dead,
            stream_queue(redis_url, prefix, "alive", lease_seconds=1) as alive,
        ):
            dead.submit("run-1", 0)
            assert (await one(dead, 1.0)) is not None  # then it dies without an ack
            early = await one(alive, 0.1)
            await asyncio.sleep(1.2)
            late = await one(alive, 0.1)
            assert late is not None
            await alive.ack(late)
            return (early.execution_id if early else None), late.execution_id

    assert asyncio.run(scenario()) == (None, "run-1")


def test_keep_alive_keeps_a_running_entry_from_being_taken(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        async with (
            stream_queue(redis_url, prefix, "busy", lease_seconds=1) as busy,
            stream_queue(redis_url, prefix, "other", lease_seconds=1) as other,
        ):
            busy.submit("run-2", 0)
            delivery = await one(busy, 1.0)
            assert delivery is not None
            for _ in range(3):
                await asyncio.sleep(0.5)
                await busy.keep_alive(delivery)
                await busy.leases.renew("run-2", "busy")
                assert await other.receive(0.05) == []
            await busy.ack(delivery)

    asyncio.run(scenario())


@pytest.fixture(params=["memory", "redis"])
def leases_of(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Any:
    """Leases of one kind, lasting `seconds`."""

    @asynccontextmanager
    async def make(seconds: int) -> AsyncIterator[Leases]:
        if request.param == "memory":
            yield MemoryLeases(seconds)
            return
        client = aioredis.from_url(redis_url)
        try:
            yield RedisLeases(client, prefix=prefix, seconds=seconds)
        finally:
            await client.aclose()

    return make


def test_a_lease_is_one_workers_until_released_or_expired(leases_of: Any) -> None:
    async def scenario() -> None:
        async with leases_of(1) as leases:
            assert await leases.acquire("x", "w1")
            assert not await leases.acquire("x", "w2")
            assert await leases.acquire("x", "w1")  # holding it again is fine
            assert await leases.held(["x", "y"]) == {"x"}
            assert not await leases.renew("x", "w2")
            await leases.release("x", "w2")  # not w2's: nothing happens
            assert not await leases.acquire("x", "w2")
            await leases.release("x", "w1")
            assert await leases.acquire("x", "w2")
            await asyncio.sleep(1.2)  # w2 stopped renewing
            assert await leases.held(["x"]) == set()
            assert not await leases.renew("x", "w2")
            assert await leases.acquire("x", "w3")

    asyncio.run(scenario())


def test_expired_memory_leases_do_not_pile_up() -> None:
    """Without Redis one process gives a lease per run for as long as it lives: leases that ran
    out (their worker stopped renewing) or were released after running out are swept as leases
    are taken, so the map holds about the leases live at once, not every one ever given."""
    now = [0.0]
    leases = MemoryLeases(10, clock=lambda: now[0])

    async def scenario() -> None:
        assert await leases.acquire("long", "keeper")
        for n in range(10_000):
            assert await leases.acquire(f"run-{n}", "w1")
            for _ in range(2):  # run-n runs out; "long", renewed, lives on: never swept
                assert await leases.renew("long", "keeper")
                now[0] += 6
            if n % 2:
                await leases.release(f"run-{n}", "w1")  # too late: it ran out already
            assert leases.kept() <= 2 * MemoryLeases.SWEEP_FLOOR
        assert await leases.held(["long"]) == {"long"}
        assert not await leases.acquire("long", "other")
        # Leases live at the same time are all kept, however many.
        for n in range(1_000):
            assert await leases.acquire(f"busy-{n}", "w1")
        assert await leases.held([f"busy-{n}" for n in range(1_000)]) == {
            f"busy-{n}" for n in range(1_000)
        }

    asyncio.run(scenario())


def lease_holder(redis_url: str, prefix: str, execution_id: str) -> str | None:
    with redis.Redis.from_url(redis_url) as client:
        value = client.get(f"{prefix}lease:{execution_id}")
    return value.decode() if value is not None else None


def test_one_take_serves_as_many_as_asked_highest_band_first_each_leased(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with stream_queue(redis_url, prefix, "w1") as queue:
            for execution_id, priority in [("a", 0), ("b", -1), ("c", 9), ("d", 0), ("e", 9)]:
                queue.submit(execution_id, priority)
            first = await queue.receive(1.0, most=4)
            assert all(delivery.leased for delivery in first)
            assert [lease_holder(redis_url, prefix, d.execution_id) for d in first] == ["w1"] * 4
            rest = await queue.receive(1.0, most=4)
            for delivery in first + rest:
                await queue.ack(delivery)
            assert await queue.depth() == 0
            return [d.execution_id for d in first], [d.execution_id for d in rest]

    assert asyncio.run(scenario()) == (["c", "e", "a", "d"], ["b"])


def test_the_ack_gives_the_lease_back_and_forgets_the_entry(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        async with stream_queue(redis_url, prefix, "w1") as queue:
            queue.submit("run-1", 0)
            delivery = await one(queue, 1.0)
            assert delivery is not None
            assert await queue.depth() == 1
            assert not await queue.leases.acquire("run-1", "w2")  # w1's, with the delivery
            await queue.ack(delivery)
            assert lease_holder(redis_url, prefix, "run-1") is None
            assert await queue.depth() == 0
            assert await queue.receive(0.05) == []

    asyncio.run(scenario())


def test_the_ack_leaves_a_lease_another_worker_took_meanwhile(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        async with stream_queue(redis_url, prefix, "slow", lease_seconds=1) as slow:
            slow.submit("run-1", 0)
            delivery = await one(slow, 1.0)
            assert delivery is not None
            await asyncio.sleep(1.2)  # its lease ran out
            assert await slow.leases.acquire("run-1", "other")
            await slow.ack(delivery)
            assert lease_holder(redis_url, prefix, "run-1") == "other"

    asyncio.run(scenario())


def test_a_duplicate_of_a_run_a_live_worker_holds_is_dropped(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        async with (
            stream_queue(redis_url, prefix, "holder") as holder,
            stream_queue(redis_url, prefix, "other") as other,
        ):
            holder.submit("run-1", 0)
            delivery = await one(holder, 1.0)
            assert delivery is not None
            holder.submit("run-1", 0)  # submitted again (a reconciler, a retried use case)
            other.submit("run-2", 0)
            taken = await other.receive(1.0, most=2)
            assert [d.execution_id for d in taken] == ["run-2"]
            assert await other.depth() == 2  # the duplicate is gone: holder's and run-2's
            assert lease_holder(redis_url, prefix, "run-1") == "holder"
            await other.ack(taken[0])
            await holder.ack(delivery)
            assert await holder.depth() == 0

    asyncio.run(scenario())


def test_a_taken_over_entry_comes_before_new_ones_and_under_the_new_workers_lease(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> list[str]:
        async with (
            stream_queue(redis_url, prefix, "dead", lease_seconds=1) as dead,
            stream_queue(redis_url, prefix, "alive", lease_seconds=1) as alive,
        ):
            dead.submit("old", -5)
            assert (await one(dead, 1.0)) is not None  # then it dies without an ack
            alive.submit("new", 5)
            await asyncio.sleep(1.2)
            taken = await alive.receive(1.0, most=2)
            assert lease_holder(redis_url, prefix, "old") == "alive"
            for delivery in taken:
                await alive.ack(delivery)
            assert await alive.depth() == 0
            return [d.execution_id for d in taken]

    assert asyncio.run(scenario()) == ["old", "new"]


_DYING_WORKER = """
import asyncio, sys
import redis, redis.asyncio as aioredis
from application.executions.leases import RedisLeases
from application.executions.redis_queue import RedisStreamQueue

async def main() -> None:
    client = aioredis.from_url(sys.argv[1])
    leases = RedisLeases(client, prefix=sys.argv[2], seconds=1)
    queue = RedisStreamQueue(
        redis.Redis.from_url(sys.argv[1]), client, leases, prefix=sys.argv[2], consumer="doomed"
    )
    taken = await queue.receive(5.0)
    print(taken[0].execution_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_run_taken_by_a_worker_killed_mid_run_is_taken_over_once_its_lease_ran_out(
    redis_url: str, prefix: str
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", _DYING_WORKER, redis_url, prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with redis.Redis.from_url(redis_url) as client:
            client.xadd(f"{prefix}executions:normal", {"id": "run-1"})
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "run-1"
        assert lease_holder(redis_url, prefix, "run-1") == "doomed"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    async def scenario() -> tuple[list[str], str]:
        async with stream_queue(redis_url, prefix, "heir", lease_seconds=1) as heir:
            early = [d.execution_id for d in await heir.receive(0.1)]
            await asyncio.sleep(1.2)
            late = await one(heir, 1.0)
            assert late is not None
            assert late.leased
            assert lease_holder(redis_url, prefix, "run-1") == "heir"
            await heir.ack(late)
            return early, late.execution_id

    assert asyncio.run(scenario()) == ([], "run-1")
