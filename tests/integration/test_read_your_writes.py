"""A2N-Min-Position: queries wait for the projections they read, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from application.caller import Caller
from application.listener import Listener
from application.positions import CHANNEL, ProjectionPositions
from application.workflows.commands import WorkflowService
from projections import workflows
from projections.runner import ProjectionRunner
from tests.integration.helpers import GRAPH

READER = ("workflows", "workflows")


def apply_all(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ProjectionRunner(workflows.projector).run_batch(conn)


async def with_positions(url: str, scenario: Callable[[ProjectionPositions], object]) -> object:
    async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
        await pool.open()
        listener = Listener(url)
        listener.start()
        positions = ProjectionPositions(pool, listener)
        await positions.start()
        try:
            return await scenario(positions)  # type: ignore[misc]
        finally:
            listener.stop()


def test_an_applied_position_answers_at_once_and_a_future_one_times_out(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    position = service_for(url).create(caller, name="seen", definition=GRAPH).position
    apply_all(url)

    async def scenario(positions: ProjectionPositions) -> tuple[bool, bool, float]:
        reached = await positions.wait_for([READER], position, timeout=1)
        started = time.monotonic()
        future = await positions.wait_for([READER], position + 1, timeout=0.3)
        return reached, future, time.monotonic() - started

    reached, future, waited = asyncio.run(with_positions(url, scenario))  # type: ignore[misc]
    assert reached is True
    assert future is False
    assert waited >= 0.3


def test_a_waiting_query_is_released_by_the_projector_commit(
    fresh_database_url: str, service_for: Callable[[str], WorkflowService], caller: Caller
) -> None:
    url = fresh_database_url
    position = service_for(url).create(caller, name="later", definition=GRAPH).position

    async def scenario(positions: ProjectionPositions) -> bool:
        for _ in range(100):  # the LISTEN connection opens in the background
            if positions.listening:
                break
            await asyncio.sleep(0.01)
        waiter = asyncio.create_task(positions.wait_for([READER], position, timeout=5))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await asyncio.to_thread(apply_all, url)
        return await asyncio.wait_for(waiter, 2)

    assert asyncio.run(with_positions(url, scenario)) is True


def test_positions_count_as_listened_to_only_once_their_channel_is(fresh_database_url: str) -> None:
    """A LISTEN connection already open takes a new subscription at its next turn. Until then
    the positions must not pass for followed: a read cache tagged by them would never see the
    announcements made meanwhile (a webhook activated then answered 404 from the routes cache of
    a process that had just started)."""
    url = fresh_database_url

    async def scenario() -> int | None:
        async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
            await pool.open()
            listener = Listener(url)
            listener.subscribe("a2n_unrelated", lambda payload: None)
            listener.start()
            try:
                await until(lambda: listener.listening)
                positions = ProjectionPositions(pool, listener)
                await positions.start()
                await until(lambda: positions.tag([READER]) is not None)
                before = positions.tag([READER])
                async with pool.connection() as conn:
                    await conn.execute("SELECT pg_notify(%s, 'workflows:workflows:7')", (CHANNEL,))
                await until(lambda: positions.tag([READER]) != before)
                return positions.positions.get(READER)
            finally:
                listener.stop()

    assert asyncio.run(scenario()) == 7


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)
