"""`a2n up` within its connection budget, against a PostgreSQL that holds it to it.

The database belongs to a role of its own whose CONNECTION LIMIT is the budget README promises
for `a2n up` (12 with its projectors in threads): PostgreSQL itself refuses the 13th
connection, so runs driven through the API only succeed if the process never needs more. The
same role shows start-up waiting for a server that turns it away, and recovery after the server
drops every connection, in both projector placements.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import BUDGET, PROCESS_BUDGET, Limited, MostConnections
from tests.e2e.test_up import ROOT, free_port, wait_for_health


@dataclass
class Up:
    process: subprocess.Popen[str]
    base: str
    http: httpx.Client

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.base}/api/v1{path}", **kwargs)
        assert response.status_code in (200, 201, 202), response.text
        return response.json()


def start_up(url: str, redis_url: str | None, **settings: str) -> Up:
    """`a2n up` on `url`, with its projectors in threads unless `settings` say otherwise (the
    budget is then BUDGET on any machine, not PROCESS_BUDGET where `auto` takes a process)."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("A2N_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(DATABASE_URL=url, A2N_PORT=str(port), A2N_RATE_LIMITS="off", A2N_LOG_LEVEL="info")
    env["A2N_UP_PROJECTORS"] = "threads"
    env["A2N_DATA_DIR"] = tempfile.mkdtemp(prefix="a2n-budget-")
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Up(process, f"http://127.0.0.1:{port}", httpx.Client(timeout=30))


def stop(up: Up) -> tuple[str, str]:
    up.http.close()
    up.process.send_signal(signal.SIGTERM)
    return up.process.communicate(timeout=30)


def sign_in(up: Up) -> None:
    account = {"email": "owner@example.com", "password": "correct horse battery staple"}
    up.ok("POST", "/auth/register", json=account)
    tokens = up.ok("POST", "/auth/login", json=account)
    up.http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"


def two_step_workflow(up: Up) -> str:
    definition = {
        "nodes": [
            {"id": "start", "type": "manual_trigger"},
            {"id": "mark", "type": "set", "config": {"fields": {"ran": True}}},
        ],
        "connections": [{"source": "start", "target": "mark"}],
    }
    workflow_id: str = up.ok(
        "POST", "/workflows", json={"name": "budget", "definition": definition}
    )["id"]
    up.ok("POST", f"/workflows/{workflow_id}/activate")
    return workflow_id


def run_and_wait(up: Up, workflow_id: str) -> str:
    ended = up.ok(
        "POST", f"/workflows/{workflow_id}/executions", params={"wait": "true"}, json=[{"n": 1}]
    )
    status: str = ended["status"]
    return status


def runs_read(up: Up, workflow_id: str) -> int:
    page = up.ok("GET", "/executions", params={"workflowId": workflow_id, "limit": 100})
    return len(page["items"])


def busy_runs(up: Up, count: int) -> None:
    """Sign in and run a two-step workflow `count` times, eight at a time, each request
    waiting for its run's end (API reads, event store saves, the worker and every projector all
    busy at once); every run succeeds and is projected."""
    sign_in(up)
    workflow_id = two_step_workflow(up)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: run_and_wait(up, workflow_id), range(count)))
    assert statuses == ["SUCCESS"] * count
    wait_for(lambda: runs_read(up, workflow_id) == count, 30, "every run projected")


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "in-process-queue"])
def test_up_runs_within_its_connection_budget(
    limited: Limited, redis_url: str, with_redis: bool
) -> None:
    up = start_up(limited.url, redis_url if with_redis else None)
    sampler = MostConnections(limited)
    try:
        wait_for_health(up.base, up.process, 60)
        sampler.start()
        busy_runs(up, 40)
    finally:
        most = sampler.stop()
        _, err = stop(up)
    assert "too many connections" not in err, err[-3000:]
    assert 0 < most <= BUDGET


def test_start_up_waits_for_a_full_server_and_says_why(limited: Limited, redis_url: str) -> None:
    limited.limit(0)  # every connection of the role is refused, as by a full server
    up = start_up(limited.url, redis_url)
    try:
        assert up.process.stderr is not None
        line = up.process.stderr.readline()
        assert line.startswith("waiting for PostgreSQL: too many connections for role"), line
        assert up.process.poll() is None
        limited.limit(BUDGET)
        wait_for_health(up.base, up.process, 60)
        sign_in(up)
        assert run_and_wait(up, two_step_workflow(up)) == "SUCCESS"
    finally:
        stop(up)


@pytest.mark.parametrize(
    ("projectors", "budget"), [("threads", BUDGET), ("process", PROCESS_BUDGET)]
)
def test_losing_the_database_degrades_ready_and_recovers_by_itself(
    limited: Limited, redis_url: str, projectors: str, budget: int
) -> None:
    limited.limit(budget)
    up = start_up(limited.url, redis_url, A2N_UP_PROJECTORS=projectors)
    try:
        wait_for_health(up.base, up.process, 60)
        sign_in(up)
        workflow_id = two_step_workflow(up)
        assert run_and_wait(up, workflow_id) == "SUCCESS"
        # The server goes away for a while: every connection dropped, none accepted.
        limited.limit(0)
        assert limited.drop_connections() > 0

        def ready() -> httpx.Response:
            return up.http.get(f"{up.base}/ready", timeout=10)

        wait_for(lambda: ready().status_code == 503, 20, "/ready reports the lost database")
        assert ready().json()["database"].startswith("unavailable")
        limited.limit(budget)
        wait_for(lambda: ready().json()["status"] == "ready", 60, "/ready recovers")
        assert run_and_wait(up, workflow_id) == "SUCCESS"
        wait_for(lambda: runs_read(up, workflow_id) == 2, 30, "both runs readable")
    finally:
        stop(up)
