"""Following a run's events live on real PostgreSQL and Redis: progress notices wake followers,
across processes through Redis, and a follower that misses them still catches up by polling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
import redis
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from application.eventstore import EventMetadata, event_store_env
from application.executions import commands
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.live import FollowTiming, RunEvent, follow
from application.executions.progress import ProgressHub, ProgressNotices, RedisProgress
from application.executions.queue import MemoryQueue
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionStatus
from tests.integration.helpers import record_run

WORKFLOW = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"
USER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"


async def followed_while_recording(
    url: str,
    hub: ProgressHub,
    progress: ProgressNotices,
    timing: FollowTiming,
    outcome: str = "SUCCESS",
) -> tuple[list[RunEvent | None], float]:
    """Follow a run whose first event is stored, while the rest is recorded half a second
    later through an app that announces to `progress`; what was followed, and how long after
    the recording the follower finished."""
    app = ExecutionsApp(env=event_store_env(url, pool_size=1), progress=progress)
    queued = record_run(app, WORKFLOW, USER, "QUEUED")
    pool = AsyncConnectionPool(url, kwargs={"autocommit": True}, open=False)
    await pool.open()
    try:
        seen: list[RunEvent | None] = []

        async def read() -> None:
            seen.extend([item async for item in follow(pool, hub, queued.id, 0, timing)])

        reading = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        await asyncio.to_thread(_record_rest, app, queued.id, outcome)
        recorded = time.monotonic()
        await asyncio.wait_for(reading, 60)
        return seen, time.monotonic() - recorded
    finally:
        await pool.close()
        app.close()


def _record_rest(app: ExecutionsApp, execution_id: str, outcome: str) -> None:
    """Take the queued run to its end, in one save."""
    execution = app.load(execution_id, Execution)
    execution.start("worker-1", [{"id": "start", "name": "Start", "type": "manual_trigger"}])
    execution.node_started("start", 1)
    execution.node_succeeded("start", {"output": [{"n": 1}]}, 5, [])
    if outcome == "SUCCESS":
        execution.succeed([{"n": 1}], 10)
    else:
        execution.cancel("stopped", 10)
    app.record(EventMetadata(USER), execution)


def types(seen: list[RunEvent | None]) -> list[str]:
    return [type(item.event).__name__ for item in seen if item is not None]


def test_a_notice_wakes_the_follower_long_before_its_next_poll(database_url: str) -> None:
    hub = ProgressHub()
    timing = FollowTiming(poll_seconds=30, heartbeat_seconds=60, lifetime_seconds=120)
    seen, after = asyncio.run(followed_while_recording(database_url, hub, hub, timing))
    assert types(seen) == ["Queued", "Started", "NodeStarted", "NodeSucceeded", "Succeeded"]
    assert [item.version for item in seen if item] == [1, 2, 3, 4, 5]
    assert after < 5
    assert hub.watched() == 0  # the follower let go of its watch


def test_a_follower_that_gets_no_notice_catches_up_by_polling(database_url: str) -> None:
    deaf, elsewhere = ProgressHub(), ProgressHub()
    timing = FollowTiming(poll_seconds=0.3, heartbeat_seconds=60, lifetime_seconds=120)
    seen, after = asyncio.run(
        followed_while_recording(database_url, deaf, elsewhere, timing, "CANCELLED")
    )
    assert types(seen)[-1] == "Cancelled"
    assert after < 3


def test_notices_travel_between_processes_through_redis(database_url: str, redis_url: str) -> None:
    channel = f"a2n:test:{uuid.uuid4().hex}:execution-progress"
    api_hub, worker_hub = ProgressHub(), ProgressHub()
    timing = FollowTiming(poll_seconds=30, heartbeat_seconds=60, lifetime_seconds=120)

    async def scenario() -> tuple[list[RunEvent | None], float]:
        client = aioredis.from_url(redis_url)
        sync_client = redis.Redis.from_url(redis_url)
        api_side = RedisProgress(sync_client, channel, api_hub)
        worker_side = RedisProgress(sync_client, channel, worker_hub)
        stop = asyncio.Event()
        relay = asyncio.create_task(api_side.relay(client, stop))
        await _until(lambda: sync_client.pubsub_numsub(channel)[0][1] == 1)
        try:
            return await followed_while_recording(database_url, api_hub, worker_side, timing)
        finally:
            stop.set()
            await relay
            await client.aclose()
            sync_client.close()

    seen, after = asyncio.run(scenario())
    assert types(seen)[-1] == "Succeeded"
    assert after < 5


def test_a_quiet_follower_sends_heartbeats_and_stops_at_its_lifetime(database_url: str) -> None:
    app = ExecutionsApp(env=event_store_env(database_url, pool_size=1))
    queued = record_run(app, WORKFLOW, USER, "QUEUED")
    app.close()
    timing = FollowTiming(poll_seconds=0.1, heartbeat_seconds=0.3, lifetime_seconds=1.2)

    async def scenario() -> list[RunEvent | None]:
        async with AsyncConnectionPool(database_url, kwargs={"autocommit": True}) as pool:
            return [item async for item in follow(pool, ProgressHub(), queued.id, 0, timing)]

    began = time.monotonic()
    seen = asyncio.run(scenario())
    assert 1.1 < time.monotonic() - began < 3
    assert types(seen) == ["Queued"]
    assert 2 <= seen.count(None) <= 4


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _waited_for_end(url: str, progress: ProgressNotices | None) -> Execution:
    """Wait (ExecutionService.wait_for_end) for a queued run that another thread takes to its
    end through an app announcing to `progress` (None: the waiting app's own hub)."""
    waiting_app = ExecutionsApp(env=event_store_env(url, pool_size=1))
    saving_app = (
        waiting_app
        if progress is None
        else ExecutionsApp(env=event_store_env(url, pool_size=1), progress=progress)
    )
    workflows_app = WorkflowsApp(env=event_store_env(url, pool_size=1))
    service = ExecutionService(waiting_app, WorkflowService(workflows_app), MemoryQueue())
    queued = record_run(waiting_app, WORKFLOW, USER, "QUEUED")
    queued_run = waiting_app.load(queued.id, Execution)

    async def scenario() -> Execution:
        waiting = asyncio.create_task(service.wait_for_end(queued_run, 120))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(_record_rest, saving_app, queued.id, "SUCCESS")
        return await asyncio.wait_for(waiting, 30)

    try:
        return asyncio.run(scenario())
    finally:
        for app in {waiting_app, saving_app, workflows_app}:
            app.close()


def test_a_caller_waiting_for_a_run_is_woken_by_the_notice_of_its_end(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no reading on its own for an hour, only the notice can end the wait in time.
    monkeypatch.setattr(commands, "WAIT_POLL_SECONDS", 3600)
    ended = _waited_for_end(database_url, None)
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [{"n": 1}]


def test_a_caller_waiting_for_a_run_whose_notice_went_astray_reads_on_its_own(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "WAIT_POLL_SECONDS", 0.05)
    ended = _waited_for_end(database_url, ProgressHub())  # announced to a hub nobody watches
    assert ended.status is ExecutionStatus.SUCCESS


def test_this_processs_watchers_hear_of_a_save_even_when_redis_is_away() -> None:
    hub = ProgressHub()
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    progress = RedisProgress(unreachable, "a2n:test:execution-progress", hub)

    async def scenario() -> int:
        async with hub.watch("run-1") as watch:
            await asyncio.to_thread(progress.announce, "run-1", 7)
            assert await watch.wait(5)
            return watch.latest

    assert asyncio.run(scenario()) == 7


def test_a_watch_begun_after_a_save_was_announced_starts_from_its_version() -> None:
    hub = ProgressHub(remembered=2)
    for execution_id in ("run-1", "run-2", "run-3"):
        hub.announce(execution_id, 4)
    hub.announce("run-3", 2)  # a late relay of an older save

    async def latest(execution_id: str) -> int:
        async with hub.watch(execution_id) as watch:
            return watch.latest

    assert asyncio.run(latest("run-3")) == 4
    assert asyncio.run(latest("run-1")) == 0  # forgotten: the oldest beyond `remembered`


def test_a_run_made_in_one_process_and_run_in_another_wakes_its_waiter_through_redis(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`a2n serve` saves a new run and waits for its end; `a2n work` runs it. The run's first
    save is not published (no other process can watch a run it has not seen), the worker's
    saves are, and they wake the waiter in the other process (with no polling to fall back on)."""
    monkeypatch.setattr(commands, "WAIT_POLL_SECONDS", 3600)
    channel = f"a2n:test:{uuid.uuid4().hex}:execution-progress"
    sync_client = redis.Redis.from_url(redis_url)
    serve_hub, work_hub = ProgressHub(), ProgressHub()
    sides = [RedisProgress(sync_client, channel, hub) for hub in (serve_hub, work_hub)]
    serve_app, work_app = (
        ExecutionsApp(env=event_store_env(database_url, pool_size=1), progress=side)
        for side in sides
    )
    workflows_app = WorkflowsApp(env=event_store_env(database_url, pool_size=1))
    service = ExecutionService(serve_app, WorkflowService(workflows_app), MemoryQueue())
    published = sync_client.pubsub(ignore_subscribe_messages=True)
    published.subscribe(channel)

    async def scenario() -> tuple[Execution, int, int]:
        clients = [aioredis.from_url(redis_url) for _ in range(2)]
        stop = asyncio.Event()
        relays = [
            asyncio.create_task(side.relay(client, stop))
            for side, client in zip(sides, clients, strict=True)
        ]
        await _until(lambda: sync_client.pubsub_numsub(channel)[0][1] == 3)
        try:
            queued = await asyncio.to_thread(record_run, serve_app, WORKFLOW, USER, "QUEUED")
            async with serve_hub.watch(queued.id) as here, work_hub.watch(queued.id) as there:
                heard = here.latest, there.latest
            waiting = asyncio.create_task(service.wait_for_end(queued.id, 120))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(_record_rest, work_app, queued.id, "SUCCESS")
            return await asyncio.wait_for(waiting, 30), *heard
        finally:
            stop.set()
            await asyncio.gather(*relays)
            for client in clients:
                await client.aclose()

    try:
        ended, heard_here, heard_there = asyncio.run(scenario())
        messages = []
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # None: nothing, or the subscription's own reply
            if (message := published.get_message(timeout=0.1)) is not None:
                messages.append(message["data"].decode())
    finally:
        published.close()
        sync_client.close()
        for app in (serve_app, work_app, workflows_app):
            app.close()
    assert ended.status is ExecutionStatus.SUCCESS
    assert (heard_here, heard_there) == (1, 0)  # the first save: in its own process only
    assert messages == [f"{ended.id} {ended.version}"]  # only the worker's save went out


def test_a_save_announced_here_and_relayed_back_wakes_no_watcher_twice() -> None:
    hub = ProgressHub()

    async def scenario() -> tuple[bool, bool, bool]:
        async with hub.watch("run-1") as watch:
            hub.announce("run-1", 3)  # this process's save
            first = await watch.wait(1)
            hub.announce("run-1", 3)  # the same save, back through Redis
            echo = await watch.wait(0.1)
            hub.announce("run-1", 4)  # another process's save
            return first, echo, await watch.wait(1)

    assert asyncio.run(scenario()) == (True, False, True)
