"""Runs the health checks on their intervals, stores every result and reports failures.

The elected scheduler calls `run_due` every round (application/executions/scheduler.py), so the
checks run in one process of the installation at a time. Results are written straight to
`health_check` rather than recorded as events: they are telemetry kept 30 days, and events are
kept forever.

**Changes of status.** With `states` (application/health/states.py), every sample also goes
there after it is stored: a sample whose status differs from its check's status in effect is
recorded as a `HealthCheck` event (forever, unlike the rows), and the administrators' alert is
raised from that event, once per change, not once per failing sample.

**Failure port.** Every result that is not HEALTHY goes to `on_check_failed(check, result)`. By
default that writes a warning log line; notifications plug their alert sender in here. A hook
that raises is logged and does not stop the other checks or the storing of results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import structlog
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from application.executions.roster import Roster, fresh_seconds
from application.health.checks import (
    Check,
    Probe,
    ProjectionLag,
    Result,
    Status,
    disk_probe,
    docker_probe,
    postgres_probe,
    projection_probe,
    queue_probe,
    redis_probe,
    worker_probe,
)
from application.health.states import HealthStates
from application.ids import new_id
from application.logs import redact_text
from application.nodes.docker import DockerEngine
from application.settings import Settings
from domain.text import clean_json, clean_text

log = structlog.get_logger(__name__)

MESSAGE_LENGTH = 500

FailureHook = Callable[[Check, Result], None]
"""Called with each result that is not HEALTHY (the notifications' alert sender plugs in)."""


def log_failure(check: Check, result: Result) -> None:
    """The default failure hook: a warning in the service log."""
    log.warning(
        "health.check_failed",
        check=check.name,
        service=result.service_name,
        status=result.status.value,
        detail=result.message,
    )


_INSERT = (
    "INSERT INTO health_check (id, service_name, check_type, status, response_time, message, "
    "details, created_at, next_check_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


class HealthMonitor:
    def __init__(
        self,
        checks: Sequence[Check],
        pool: ConnectionPool[Any],
        *,
        on_check_failed: FailureHook = log_failure,
        states: HealthStates | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.checks = list(checks)
        self.pool = pool
        self.on_check_failed = on_check_failed
        self.states = states
        self.clock = clock
        started = time.monotonic()
        self._due = {check.name: started + check.first_after for check in self.checks}
        """When (monotonic) each check runs next."""

    def run_due(self) -> list[Result]:
        """Run every check whose interval passed; store and report what they found."""
        found: list[Result] = []
        for check in self.checks:
            if time.monotonic() >= self._due[check.name]:
                found.extend(self.run(check))
        return found

    def run(self, check: Check) -> list[Result]:
        """Run one check now, store its results and report its failures; it runs again after
        its interval."""
        self._due[check.name] = time.monotonic() + check.interval
        try:
            results = check.probe()
        except Exception as exc:
            results = [
                Result(
                    check.name,
                    check.check_type,
                    Status.UNHEALTHY,
                    f"{type(exc).__name__}: {exc}",
                )
            ]
        results = [_storable(result) for result in results]
        for result in results:
            if result.status is not Status.HEALTHY:
                try:
                    self.on_check_failed(check, result)
                except Exception:
                    log.exception("health.hook_failed", check=check.name)
        now = self.clock()
        try:
            self._store(check, results, now)
        except Exception:
            log.exception("health.store_failed", check=check.name)
        if self.states is not None:
            for result in results:
                try:
                    self.states.observe(result, now)
                except Exception:
                    log.exception("health.change_not_recorded", check=check.name)
        return results

    def _store(self, check: Check, results: list[Result], now: datetime) -> None:
        following = now + timedelta(seconds=check.interval)
        rows = [
            (
                new_id(),
                r.service_name,
                r.check_type,
                r.status.value,
                r.response_time,
                r.message,
                Jsonb(r.details),
                now,
                following,
            )
            for r in results
        ]
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(_INSERT, rows)


def _storable(result: Result) -> Result:
    """The result with its text free of secrets (an exception may name a URL) and storable."""
    return Result(
        clean_text(result.service_name, 200),
        result.check_type,
        result.status,
        clean_text(redact_text(result.message), MESSAGE_LENGTH),
        result.response_time,
        clean_json(result.details, max_string=MESSAGE_LENGTH),
    )


def monitor_for(
    settings: Settings,
    pool: ConnectionPool[Any],
    *,
    queue_depths: Callable[[], dict[str, int]],
    roster: Roster,
    projection_lags: Callable[[], list[ProjectionLag]],
    redis_client: redis.Redis | None = None,
    docker: DockerEngine | None = None,
    on_check_failed: FailureHook = log_failure,
    states: HealthStates | None = None,
) -> HealthMonitor:
    """The checks A2N_HEALTH_CHECKS names, with the A2N_HEALTH_* thresholds (Redis only when
    REDIS_URL is set, the Docker engine only when A2N_DOCKER_HOST is)."""
    every = settings.health_check_interval
    stale_after = fresh_seconds(settings.worker_beat_interval)
    disk = settings.health_disk_free_percent
    probes: dict[str, tuple[str, Probe]] = {
        "postgres": ("database", postgres_probe(pool, settings.health_latency_ms)),
        "queue": ("queue", queue_probe(queue_depths, settings.health_queue_depth)),
        "projections": (
            "projection",
            projection_probe(projection_lags, settings.health_projection_lag),
        ),
        "disk": ("disk", disk_probe(settings.data_dir, disk, disk / 2)),
        "workers": ("worker", worker_probe(roster, within=stale_after)),
    }
    if redis_client is not None:
        probes["redis"] = ("cache", redis_probe(redis_client, settings.health_latency_ms))
    if docker is not None:
        probes["docker"] = ("docker", docker_probe(docker, settings.health_latency_ms))
    checks = [
        # A worker starting beside this scheduler has not beaten yet: no false alarm at start.
        Check(name, kind, every, probe, stale_after if name == "workers" else 0.0)
        for name, (kind, probe) in probes.items()
        if name in settings.health_checks
    ]
    return HealthMonitor(checks, pool, on_check_failed=on_check_failed, states=states)
