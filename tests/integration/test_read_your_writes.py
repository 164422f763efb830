"""A2N-Min-Position: queries wait for the projections they read, with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from application.caller import Caller
from application.listener import Listener
from application.positions import ProjectionPositions
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
