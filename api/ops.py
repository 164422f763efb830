"""Operations routes at the root: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from api.context import services
from api.services import Services
from projections.status import ProjectionStatus, status_from_rows, status_query

CHECK_TIMEOUT = 2.0


class ProjectionCheck(msgspec.Struct, rename="camel", omit_defaults=True):
    projector: str
    application: str
    position: int
    head: int
    lag: int
    status: str
    parked_event: dict[str, Any] | None = None
    last_error: str | None = None
    restarts: int | None = None


class Readiness(msgspec.Struct, rename="camel"):
    status: str
    database: str
    redis: str
    projections: list[ProjectionCheck]


@get("/health", tags=["ops"], summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/ready",
    tags=["ops"],
    summary="Readiness: database, Redis, projection lag and parked events",
    responses={503: ResponseSpec(Readiness, description="Not ready: a dependency is down.")},
)
async def ready(request: Request[Any, Any, Any]) -> Response[Readiness]:
    found = services(request)
    database, statuses = "ok", []
    try:
        statuses = await asyncio.wait_for(_projection_status(found), CHECK_TIMEOUT)
    except Exception as exc:
        database = f"unavailable: {type(exc).__name__}"
    redis = "not configured"
    if found.redis is not None:
        try:
            await asyncio.wait_for(found.redis.ping(), CHECK_TIMEOUT)
            redis = "ok"
        except Exception as exc:
            redis = f"unavailable: {type(exc).__name__}"
    checks = [_projection_check(found, s) for s in statuses]
    serving = database == "ok" and redis in ("ok", "not configured")
    degraded = any(c.status in ("parked", "restarting") for c in checks)
    status = "unavailable" if not serving else "degraded" if degraded else "ready"
    return Response(
        Readiness(status=status, database=database, redis=redis, projections=checks),
        status_code=200 if serving else 503,
    )


@get("/metrics", tags=["ops"], summary="Prometheus metrics", media_type="text/plain; version=0.0.4")
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    found = services(request)
    gauges = found.metrics
    try:
        statuses = await asyncio.wait_for(_projection_status(found), CHECK_TIMEOUT)
    except Exception:
        statuses = []
    for s in statuses:
        gauges.projection_lag.labels(s.projector, s.application).set(s.lag)
        gauges.projection_position.labels(s.projector, s.application).set(s.position)
        gauges.projection_parked.labels(s.projector).set(1 if s.parked else 0)
    for name, state in found.runner_states().items():
        gauges.projector_restarts.labels(name).set(state.restarts)
    for pool, usage in found.connections.usage().items():
        for figure, count in usage.items():
            gauges.pool_connections.labels(pool, figure).set(count)
    return Response(gauges.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def _projection_status(found: Services) -> list[ProjectionStatus]:
    async with found.pool.connection() as conn:
        cur = await conn.execute(status_query())
        return status_from_rows(await cur.fetchall())


def _projection_check(found: Services, status: ProjectionStatus) -> ProjectionCheck:
    state = found.runner_states().get(status.projector)
    parked = status.parked
    return ProjectionCheck(
        projector=status.projector,
        application=status.application,
        position=status.position,
        head=status.head,
        lag=status.lag,
        status="parked" if parked else state.status if state else "external",
        parked_event=None
        if parked is None
        else {
            "position": parked.position,
            "aggregateId": parked.originator_id,
            "topic": parked.topic,
            "error": parked.error,
            "parkedAt": parked.parked_at.isoformat(),
        },
        last_error=state.last_error if state else None,
        restarts=state.restarts if state else None,
    )
