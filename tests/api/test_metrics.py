"""/metrics after running workflows: runs by workflow and outcome, the run duration histogram,
queue depth per band, workers busy and idle, pools in use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.settings import Settings
from tests.api.helpers import API, RUNNABLE, SCRAPER, SLOW, owner_of, published, read, run
from tests.integration.helpers import record_run

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient[Any]) -> Samples:
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def figure(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_runs_are_counted_by_workflow_and_outcome_with_their_durations(
    fresh_database_url: str, redis_url: str, api_settings: Settings
) -> None:
    settings = replace(api_settings, database_url=fresh_database_url, redis_url=redis_url)
    runs = ExecutionsApp(env=event_store_env(fresh_database_url, pool_size=1))
    app = create_app(settings, run_projectors=True, run_workers=True)
    try:
        with TestClient(app) as client:
            user = owner_of(client)
            workflow_id = published(client, user, RUNNABLE)
            assert run(client, user, workflow_id, [{"n": 1}], wait="true")["status"] == "SUCCESS"
            for outcome in ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"):
                last = record_run(runs, workflow_id, user.user_id, outcome)  # type: ignore[arg-type]
            read(client, user, f"/stats/workflows/{workflow_id}", last.position)
            samples = scrape(client)
    finally:
        runs.close()
    by_status = {
        status: figure(samples, "a2n_executions_total", workflow_id=workflow_id, status=status)
        for status in ("SUCCESS", "FAILED", "CANCELLED")
    }
    # Timeouts count as failures, as in the workflow's failure_count.
    assert by_status == {"SUCCESS": 2.0, "FAILED": 2.0, "CANCELLED": 1.0}
    # Five runs ended, each timed: four recorded at 100 ms, one real run.
    assert figure(samples, "a2n_execution_duration_seconds_count") == 5.0
    assert figure(samples, "a2n_execution_duration_seconds_bucket", le="+Inf") == 5.0
    assert figure(samples, "a2n_execution_duration_seconds_bucket", le="0.1") >= 4.0
    assert figure(samples, "a2n_execution_duration_seconds_bucket", le="0.05") <= 1.0
    assert figure(samples, "a2n_execution_duration_seconds_sum") >= 0.4
    assert figure(samples, "a2n_db_round_trip_seconds") > 0


def test_queue_depth_and_busy_workers_show_a_run_under_way(
    fresh_database_url: str, redis_url: str, api_settings: Settings
) -> None:
    settings = replace(
        api_settings, database_url=fresh_database_url, redis_url=redis_url, worker_concurrency=4
    )
    with TestClient(create_app(settings, run_projectors=True, run_workers=True)) as client:
        user = owner_of(client)
        idle = scrape(client)
        assert figure(idle, "a2n_workers", state="idle") == 1.0
        assert figure(idle, "a2n_worker_slots", state="free") == 4.0
        for band in ("high", "normal", "low"):
            assert figure(idle, "a2n_queue_depth", band=band) == 0.0
        slow = run(client, user, published(client, user, SLOW), priority="5")
        samples = waited_for(
            lambda: scrape(client), lambda s: figure(s, "a2n_worker_slots", state="busy") == 1.0
        )
        assert figure(samples, "a2n_workers", state="busy") == 1.0
        assert figure(samples, "a2n_worker_slots", state="free") == 3.0
        # A Redis Streams entry stays until its run ends: the high band holds it.
        assert figure(samples, "a2n_queue_depth", band="high") == 1.0
        assert figure(samples, "a2n_db_pool_connections_in_use", pool="listener") == 1.0
        cancelled = client.post(f"{API}/executions/{slow['id']}/cancel", headers=user)
        assert cancelled.status_code == 200, cancelled.text


def waited_for(
    take: Callable[[], Samples], ready: Callable[[Samples], bool], timeout: float = 20.0
) -> Samples:
    """The first figures `ready` accepts (worker heartbeats come every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = take()
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)
