"""Everything a request handler needs, opened at start-up and closed at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.metrics import Metrics
from application.database import Database
from application.eventstore import event_store_env
from application.identity.app import IdentityApp
from application.identity.authenticate import Authenticator
from application.identity.commands import IdentityService, identity_service
from application.identity.sign_in import SignIn, sign_in_service
from application.keys import load_keys
from application.positions import ProjectionPositions
from application.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
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
    identity: IdentityService
    authenticator: Authenticator
    sign_in: SignIn
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

        env = event_store_env(database.url, pool_size=settings.db_pool_max)
        workflows_app = WorkflowsApp(env=env)
        stack.callback(workflows_app.close)
        identity_app = IdentityApp(env=env)
        stack.callback(identity_app.close)
        # Write-side helpers (data keys, outbox) run in worker threads: a small sync pool.
        sync_pool: ConnectionPool[Any] = ConnectionPool(
            database.url,
            min_size=1,
            max_size=settings.db_pool_max,
            kwargs={"application_name": "a2n-write", "autocommit": True},
            open=True,
            name="a2n-write",
        )
        stack.callback(sync_pool.close)
        keys = load_keys(settings)
        identity = identity_service(identity_app, sync_pool, keys, settings)

        positions = ProjectionPositions(database.url, pool)
        await positions.start()
        stack.push_async_callback(positions.stop)

        redis_client: Any = None
        limiter: RateLimiter = MemoryRateLimiter()
        if settings.redis_url:
            redis_client = aioredis.from_url(settings.redis_url, socket_timeout=2)
            stack.push_async_callback(redis_client.aclose)
            # Counts belong to one installation (one database), even if several share a Redis.
            installation = conninfo_to_dict(database.url).get("dbname", "a2n")
            limiter = RedisRateLimiter(redis_client, prefix=f"a2n:{installation}:")

        supervisor = None
        if run_projectors:
            from projections.identity import use_key_ring
            from projections.registry import PROJECTORS
            from projections.supervisor import ProjectionSupervisor

            use_key_ring(keys.master)
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
            identity=identity,
            authenticator=Authenticator(pool, identity.signer, positions),
            sign_in=sign_in_service(identity, limiter, keys, settings),
            metrics=Metrics(),
            redis=redis_client,
            supervisor=supervisor,
        )
