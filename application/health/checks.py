"""The health checks: each probe measures one part of the installation and says how it is.

A probe returns one result per thing it looked at (one per queue band, one per projector), each
HEALTHY, DEGRADED (working, past a warning threshold) or UNHEALTHY (failing). A probe that raises
is reported UNHEALTHY by the monitor (application/health/monitor.py). Thresholds come from the
A2N_HEALTH_* settings.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool

from application.executions.roster import FRESH_SECONDS, Roster
from application.nodes.docker import DockerEngine, DockerError

if TYPE_CHECKING:
    import redis


class Status(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"


@dataclass(frozen=True)
class Result:
    service_name: str
    check_type: str
    status: Status
    message: str
    response_time: int | None = None
    """Milliseconds the probe took, when it reached something remote."""
    details: dict[str, Any] = field(default_factory=dict)


Probe = Callable[[], list[Result]]


@dataclass(frozen=True)
class Check:
    name: str
    check_type: str
    interval: float
    """Seconds between two runs of the probe."""
    probe: Probe
    first_after: float = 0.0
    """Seconds after the monitor starts before the first run (workers need time to beat)."""


@dataclass(frozen=True)
class ProjectionLag:
    projector: str
    lag: int
    parked: bool


def _past(value: float, warn: float) -> Status:
    return Status.DEGRADED if value > warn else Status.HEALTHY


def _timed(action: Callable[[], object]) -> int:
    started = time.perf_counter()
    action()
    return round((time.perf_counter() - started) * 1000)


def postgres_probe(pool: ConnectionPool[Any], warn_ms: int) -> Probe:
    """A round trip to PostgreSQL (a connection of the write pool, `SELECT 1`)."""

    def probe() -> list[Result]:
        def ask() -> None:
            with pool.connection() as conn:
                conn.execute("SELECT 1")

        ms = _timed(ask)
        return [
            Result(
                "postgres",
                "database",
                _past(ms, warn_ms),
                f"answered in {ms} ms",
                ms,
                {"warnMs": warn_ms},
            )
        ]

    return probe


def redis_probe(client: redis.Redis, warn_ms: int) -> Probe:
    """A PING to Redis (only when REDIS_URL is set)."""

    def probe() -> list[Result]:
        ms = _timed(client.ping)
        return [
            Result(
                "redis",
                "cache",
                _past(ms, warn_ms),
                f"answered in {ms} ms",
                ms,
                {"warnMs": warn_ms},
            )
        ]

    return probe


def docker_probe(engine: DockerEngine, warn_ms: int) -> Probe:
    """A ping to the Docker engine DOCKER nodes run on (only when A2N_DOCKER_HOST is set):
    UNHEALTHY, saying why, when it does not answer (DOCKER nodes fail; the others run on)."""

    def probe() -> list[Result]:
        details: dict[str, Any] = {"engine": engine.endpoint.address, "warnMs": warn_ms}
        started = time.perf_counter()
        try:
            version = asyncio.run(engine.ping())
        except DockerError as error:
            message = f"{error.message}; DOCKER nodes fail until it answers"
            return [Result("docker", "docker", Status.UNHEALTHY, message, details=details)]
        ms = round((time.perf_counter() - started) * 1000)
        details["apiVersion"] = version
        return [Result("docker", "docker", _past(ms, warn_ms), f"answered in {ms} ms", ms, details)]

    return probe


def queue_probe(depths: Callable[[], dict[str, int]], warn_depth: int) -> Probe:
    """Runs waiting or under way per priority band of the execution queue."""

    def probe() -> list[Result]:
        return [
            Result(
                f"queue.{band}",
                "queue",
                _past(depth, warn_depth),
                f"{depth} runs queued or running",
                details={"depth": depth, "warnDepth": warn_depth},
            )
            for band, depth in depths().items()
        ]

    return probe


def projection_probe(lags: Callable[[], list[ProjectionLag]], warn_lag: int) -> Probe:
    """Events each projector has not applied yet; a parked projector is failing."""

    def probe() -> list[Result]:
        return [
            Result(
                f"projection.{p.projector}",
                "projection",
                Status.UNHEALTHY if p.parked else _past(p.lag, warn_lag),
                "stopped on a parked event" if p.parked else f"{p.lag} events behind",
                details={"lag": p.lag, "parked": p.parked, "warnLag": warn_lag},
            )
            for p in lags()
        ]

    return probe


def disk_probe(path: Path, warn_percent: float, fail_percent: float) -> Probe:
    """Free space on the file system of the data directory (A2N_DATA_DIR)."""

    def probe() -> list[Result]:
        usage = shutil.disk_usage(path if path.exists() else Path.cwd())
        free = 100.0 * usage.free / usage.total if usage.total else 0.0
        status = (
            Status.UNHEALTHY
            if free < fail_percent
            else Status.DEGRADED
            if free < warn_percent
            else Status.HEALTHY
        )
        return [
            Result(
                "disk",
                "disk",
                status,
                f"{free:.1f}% free ({usage.free // 2**20} MiB)",
                details={
                    "freeBytes": usage.free,
                    "totalBytes": usage.total,
                    "freePercent": round(free, 2),
                    "warnPercent": warn_percent,
                    "failPercent": fail_percent,
                },
            )
        ]

    return probe


def worker_probe(
    roster: Roster, clock: Callable[[], float] = time.time, *, within: float = FRESH_SECONDS
) -> Probe:
    """Worker heartbeats: UNHEALTHY when no worker beats (runs would wait for good), DEGRADED
    when some beat went stale, older than `within` seconds (a worker died or hangs; its runs
    pass to others after a lease)."""

    def probe() -> list[Result]:
        now = clock()
        beats = roster.beats()
        stale = sorted(b.worker for b in beats if now - b.at >= within)
        alive = len(beats) - len(stale)
        oldest = max((now - b.at for b in beats), default=None)
        status = Status.UNHEALTHY if alive == 0 else Status.DEGRADED if stale else Status.HEALTHY
        message = (
            "no worker is beating"
            if not beats
            else f"{alive} alive, {len(stale)} stale"
            if stale
            else f"{alive} alive"
        )
        return [
            Result(
                "workers",
                "worker",
                status,
                message,
                details={
                    "alive": alive,
                    "stale": stale,
                    "oldestBeatSeconds": None if oldest is None else round(oldest, 1),
                    "freshSeconds": within,
                },
            )
        ]

    return probe
