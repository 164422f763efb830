"""Everything a request handler needs, opened at start-up and closed at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from api.metrics import Metrics
from application.database import Database
from application.eventstore import event_store_env
from application.positions import ProjectionPositions
from application.settings import Settings
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from projections.supervisor import ProjectionSupervisor


@dataclass
class Services:
    settings: Settings
    database: Database
    pool: AsyncConnectionPool
    positions: ProjectionPositions
    workflows: WorkflowService
    metrics: Metrics
    redis: aioredis.Redis | None = None
    supervisor: ProjectionSupervisor | None = None


@asynccontextmanager
async def open_services(
    settings: Settings, database: Database, *, run_projectors: bool
) -> AsyncIterator[Services]:
    """Open pools and background tasks; close them in reverse order on exit."""
    async with AsyncExitStack() as stack:
        pool = AsyncConnectionPool(
            database.url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            kwargs={"application_name": "a2n-api", "autocommit": True},
            open=False,
            name="a2n-read",
        )
        await pool.open(wait=True, timeout=15)
        stack.push_async_callback(pool.close)

        workflows_app = WorkflowsApp(
            env=event_store_env(database.url, pool_size=settings.db_pool_max)
        )
        stack.callback(workflows_app.close)

        positions = ProjectionPositions(database.url, pool)
        await positions.start()
        stack.push_async_callback(positions.stop)

        redis_client: Any = None
        if settings.redis_url:
            redis_client = aioredis.from_url(settings.redis_url, socket_timeout=2)
            stack.push_async_callback(redis_client.aclose)

        supervisor = None
        if run_projectors:
            from projections.registry import PROJECTORS
            from projections.supervisor import ProjectionSupervisor

            supervisor = ProjectionSupervisor(
                database.url,
                PROJECTORS,
                batch_size=settings.projection_batch_size,
                poll_interval=settings.projection_poll_interval,
            )
            supervisor.start()
            stack.callback(supervisor.stop)

        yield Services(
            settings=settings,
            database=database,
            pool=pool,
            positions=positions,
            workflows=WorkflowService(workflows_app),
            metrics=Metrics(),
            redis=redis_client,
            supervisor=supervisor,
        )
