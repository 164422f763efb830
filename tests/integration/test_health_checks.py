"""Health checks: what each probe reports against its thresholds, the rows stored in
health_check, the failure port, and that only the elected scheduler runs them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.queue import MemoryQueue
from application.executions.roster import FRESH_SECONDS, Beat, MemoryRoster
from application.executions.scheduler import Leadership, Scheduler
from application.executions.schedules import ScheduleService
from application.health.checks import Check, Result, Status
from application.health.monitor import HealthMonitor, monitor_for
from application.nodes.docker import DockerEngine
from application.settings import Settings
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from projections.status import projection_lags
from tests.docker_engine import running_engine
from tests.integration.helpers import record_run


@pytest.fixture
def pool(fresh_database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(
        fresh_database_url, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as opened:
        yield opened


def free_percent(path: Any) -> float:
    usage = shutil.disk_usage(path)
    return 100.0 * usage.free / usage.total


def stored(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM health_check ORDER BY id").fetchall()


def test_each_check_reports_against_its_threshold_and_failures_reach_the_port(
    fresh_database_url: str, pool: ConnectionPool[Any], redis_url: str, tmp_path: Any
) -> None:
    url = fresh_database_url
    runs = ExecutionsApp(env=event_store_env(url, pool_size=1))
    try:
        record_run(runs, "wf-1", "user-1", "SUCCESS")  # no projector runs: the lag grows
    finally:
        runs.close()
    queue = MemoryQueue()
    for _ in range(3):
        queue.submit("run", priority=2)
    roster = MemoryRoster()
    now = time.time()
    roster.beat(Beat("alive", busy=1, capacity=4, at=now))
    roster.beat(Beat("hung", busy=2, capacity=4, at=now - FRESH_SECONDS - 1))
    settings = replace(
        Settings(),
        data_dir=tmp_path,
        health_queue_depth=2,
        health_projection_lag=0,
        # Just above what is free: DEGRADED (UNHEALTHY is below half of it).
        health_disk_free_percent=min(100.0, free_percent(tmp_path) + 1),
        health_check_interval=3600.0,
    )
    failed: list[tuple[str, Result]] = []
    client = redis.Redis.from_url(redis_url)
    monitor = monitor_for(
        settings,
        pool,
        queue_depths=queue.band_depths,
        roster=roster,
        projection_lags=lambda: projection_lags(pool),
        redis_client=client,
        on_check_failed=lambda check, result: failed.append((check.name, result)),
    )
    try:
        first = monitor.run_due()
        # Workers get time to send their first beat before they are checked.
        assert "workers" not in {r.service_name for r in first}
        [workers] = [check for check in monitor.checks if check.name == "workers"]
        results = {r.service_name: r for r in first + monitor.run(workers)}
    finally:
        client.close()

    status = {name: r.status for name, r in results.items()}
    assert status["postgres"] is Status.HEALTHY
    assert status["redis"] is Status.HEALTHY
    assert (status["queue.high"], status["queue.normal"], status["queue.low"]) == (
        Status.DEGRADED,
        Status.HEALTHY,
        Status.HEALTHY,
    )
    assert results["queue.high"].details["depth"] == 3
    assert status["projection.executions"] is Status.DEGRADED
    assert results["projection.executions"].details["lag"] >= 1
    assert status["disk"] is Status.DEGRADED
    assert status["workers"] is Status.DEGRADED
    assert results["workers"].details["stale"] == ["hung"]
    assert results["workers"].details["alive"] == 1
    # Every result that is not HEALTHY went through the failure port, and only those.
    assert sorted(r.service_name for _, r in failed) == sorted(
        name for name, s in status.items() if s is not Status.HEALTHY
    )
    assert ("workers", results["workers"]) in failed

    rows = stored(url)
    assert {row["service_name"] for row in rows} == set(results)
    for row in rows:
        assert row["status"] == results[row["service_name"]].status.value
        assert row["next_check_at"] - row["created_at"] == timedelta(hours=1)
    assert next(r for r in rows if r["service_name"] == "postgres")["response_time"] >= 0
    assert monitor.run_due() == [], "nothing is due again within the interval"


def only(
    check: str, pool: ConnectionPool[Any], data_dir: Any, docker: DockerEngine | None = None
) -> HealthMonitor:
    """A monitor running only `check`, in a process without workers (with the Docker engine
    `docker`, when one is given)."""
    settings = replace(Settings(), data_dir=data_dir, health_checks=frozenset({check}))
    return monitor_for(
        settings,
        pool,
        queue_depths=MemoryQueue().band_depths,
        roster=MemoryRoster(),
        projection_lags=lambda: projection_lags(pool),
        docker=docker,
    )


def test_no_beating_worker_is_unhealthy(pool: ConnectionPool[Any], tmp_path: Any) -> None:
    monitor = only("workers", pool, tmp_path)
    assert monitor.run_due() == [], "not before the workers could beat"
    [result] = monitor.run(monitor.checks[0])
    assert (result.status, result.message) == (Status.UNHEALTHY, "no worker is beating")


def test_the_docker_engine_is_checked_when_one_is_configured(
    pool: ConnectionPool[Any], tmp_path: Any
) -> None:
    socket_path = tmp_path / "engine.sock"
    assert only("docker", pool, tmp_path).checks == [], "no engine configured, nothing to check"
    engine = DockerEngine.configured(f"unix://{socket_path}")
    monitor = only("docker", pool, tmp_path, engine)
    with running_engine(socket_path, {}):
        [answered] = monitor.run_due()
    assert (answered.service_name, answered.check_type) == ("docker", "docker")
    assert answered.status is Status.HEALTHY
    assert answered.message.startswith("answered in ")
    assert answered.details["apiVersion"] == "1.41"
    assert answered.details["engine"] == f"unix://{socket_path}"
    [silent] = monitor.run(monitor.checks[0])  # the engine is gone
    assert silent.status is Status.UNHEALTHY
    assert silent.message == (
        "could not reach the Docker engine (ConnectError); DOCKER nodes fail until it answers"
    )


def test_a_probe_that_raises_is_stored_unhealthy_without_secrets(
    fresh_database_url: str, pool: ConnectionPool[Any]
) -> None:
    def broken() -> list[Result]:
        raise ConnectionError("cannot reach redis://a2n:hunter2@cache:6379/0\x00")

    def bad_hook(check: Check, result: Result) -> None:
        raise RuntimeError("the notifier is down")

    monitor = HealthMonitor([Check("redis", "cache", 60, broken)], pool, on_check_failed=bad_hook)
    [result] = monitor.run_due()
    assert result.status is Status.UNHEALTHY
    [row] = stored(fresh_database_url)
    assert row["status"] == "UNHEALTHY"
    assert row["message"].startswith("ConnectionError: cannot reach redis://a2n:")
    assert "hunter2" not in row["message"]
    assert "\x00" not in row["message"]


def test_only_the_elected_scheduler_runs_the_checks(
    fresh_database_url: str, pool: ConnectionPool[Any], tmp_path: Any
) -> None:
    url = fresh_database_url
    env = event_store_env(url, pool_size=2)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    workflows = WorkflowService(workflows_app)
    service = ScheduleService(ExecutionService(executions_app, workflows, MemoryQueue()), workflows)

    def candidate() -> Scheduler:
        monitor = only("postgres", pool, tmp_path)
        return Scheduler(service, pool, Leadership(url), health=monitor.run_due)

    leader, standby = candidate(), candidate()
    try:
        leader.tick()
        standby.tick()
        assert [r["service_name"] for r in stored(url)] == ["postgres"]
        assert leader.round().checked == 0, "not due again within the interval"
    finally:
        leader.leadership.release()
        standby.leadership.release()
        workflows_app.close()
        executions_app.close()
