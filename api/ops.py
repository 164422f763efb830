"""Operations routes at the root: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog
from anyio import to_thread
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from api.auth import authorize_metrics
from api.context import services
from api.metrics import ExecutionFigures, RunCounts
from api.openapi import problem_response
from api.services import Services
from application.executions.roster import fresh, fresh_seconds
from application.nodes.docker import DockerError
from projections.status import ProjectionStatus, status_from_rows, status_query

CHECK_TIMEOUT = 2.0

log = structlog.get_logger(__name__)


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
    docker: str = "not configured"
    """The Docker engine of DOCKER nodes: ok, not configured, or unavailable and why (degraded,
    not 503: every other node still runs)."""


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
    docker = "not configured"
    if found.docker is not None:
        try:
            await found.docker.ping(CHECK_TIMEOUT)
            docker = "ok"
        except DockerError as error:
            docker = f"unavailable: {error.message}"
    checks = [_projection_check(found, s) for s in statuses]
    serving = database == "ok" and redis in ("ok", "not configured")
    degraded = docker.startswith("unavailable") or any(
        c.status in ("parked", "restarting") for c in checks
    )
    status = "unavailable" if not serving else "degraded" if degraded else "ready"
    return Response(
        Readiness(status=status, database=database, redis=redis, projections=checks, docker=docker),
        status_code=200 if serving else 503,
    )


@get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics (the metrics token, or an admin's credentials)",
    media_type="text/plain; version=0.0.4",
    guards=[authorize_metrics],
    responses={
        401: problem_response(
            401,
            "No or wrong credentials: send Authorization: Bearer <A2N_METRICS_TOKEN>, or an "
            "ADMIN's or OWNER's access token or API key.",
        ),
        403: problem_response(403, "Signed in, but without the admin scope."),
    },
)
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
    for name in {s.projector for s in statuses} | found.runner_states().keys():
        if (state := found.runner_state(name)) is not None:
            gauges.projector_restarts.labels(name).set(state.restarts)
    for pool, usage in found.connections.usage().items():
        for figure, count in usage.items():
            gauges.pool_connections.labels(pool, figure).set(count)
        gauges.pool_in_use.labels(pool).set(usage["size"] - usage["available"])
    try:
        round_trip, gauges.executions.figures = await asyncio.wait_for(
            _execution_figures(found), CHECK_TIMEOUT
        )
        gauges.db_round_trip.set(round_trip)
    except Exception as exc:
        log.warning("metrics.executions_unavailable", error=type(exc).__name__)
    try:
        depths = await asyncio.wait_for(
            to_thread.run_sync(found.executions.queue.band_depths), CHECK_TIMEOUT
        )
        for band, depth in depths.items():
            gauges.queue_depth.labels(band).set(depth)
        beats = fresh(
            await to_thread.run_sync(found.roster.beats),
            time.time(),
            fresh_seconds(found.settings.worker_beat_interval),
        )
    except Exception as exc:
        log.warning("metrics.queue_unavailable", error=type(exc).__name__)
    else:
        busy = sum(1 for b in beats if b.busy)
        gauges.workers.labels("busy").set(busy)
        gauges.workers.labels("idle").set(len(beats) - busy)
        running = sum(b.busy for b in beats)
        gauges.worker_slots.labels("busy").set(running)
        gauges.worker_slots.labels("free").set(max(0, sum(b.capacity for b in beats) - running))
    return Response(gauges.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def _execution_figures(found: Services) -> tuple[float, ExecutionFigures]:
    """A round trip to the database, and the run counters and duration buckets."""
    async with found.pool.connection() as conn:
        started = time.perf_counter()
        await conn.execute("SELECT 1")
        round_trip = time.perf_counter() - started
        cur = await conn.execute(
            "SELECT workflow_id, success_count, failure_count, execution_count "
            "FROM workflow_execution_stats WHERE execution_count > 0 ORDER BY workflow_id"
        )
        runs = [RunCounts(*row) for row in await cur.fetchall()]
        cur = await conn.execute("SELECT le_seconds, runs FROM execution_duration_bucket")
        counted: dict[float, int] = dict(await cur.fetchall())
        cur = await conn.execute(
            "SELECT coalesce(sum(total_duration_ms), 0) FROM workflow_execution_stats"
        )
        row = await cur.fetchone()
    buckets = [(bound, int(counted.get(bound, 0))) for bound, _ in ExecutionFigures().buckets]
    total_ms = row[0] if row else 0
    return round_trip, ExecutionFigures(runs, buckets, float(total_ms) / 1000)


async def _projection_status(found: Services) -> list[ProjectionStatus]:
    async with found.pool.connection() as conn:
        cur = await conn.execute(status_query())
        return status_from_rows(await cur.fetchall())


def _projection_check(found: Services, status: ProjectionStatus) -> ProjectionCheck:
    state = found.runner_state(status.projector)
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
