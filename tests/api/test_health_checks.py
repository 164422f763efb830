"""GET /admin/health-checks: the scheduler's results, the latest per check or the history with
filters and cursor pages; admins only; bad filters are problems."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.ids import new_id
from application.settings import Settings
from tests.api.helpers import API, Account, owner_of, problem, promote, sign_up

Client = TestClient[Any]
ROUTE = f"{API}/admin/health-checks"


@pytest.fixture(scope="module")
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


@pytest.fixture
def service(database_url: str) -> str:
    """A service name of this test alone, with five results a minute apart (newest DEGRADED)."""
    name = f"test.{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(minutes=10)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for minute in range(5):
            at = start + timedelta(minutes=minute)
            conn.execute(
                "INSERT INTO health_check (id, service_name, check_type, status, response_time, "
                "message, details, created_at, next_check_at) "
                "VALUES (%s, %s, 'database', %s, %s, %s, '{}', %s, %s)",
                (
                    new_id(),
                    name,
                    "DEGRADED" if minute == 4 else "HEALTHY",
                    minute,
                    f"result {minute}",
                    at,
                    at + timedelta(minutes=1),
                ),
            )
    return name


def get(client: Client, account: Account, **query: Any) -> Any:
    response = client.get(ROUTE, params=query, headers=account)
    assert response.status_code == 200, response.text
    return response.json()


def test_latest_shows_the_newest_result_of_each_check(
    client: Client, admin: Account, service: str
) -> None:
    [latest] = get(client, admin, service=service)["items"]
    assert (latest["serviceName"], latest["status"], latest["message"]) == (
        service,
        "DEGRADED",
        "result 4",
    )
    assert latest["checkType"] == "database"
    assert latest["responseTime"] == 4
    everything = get(client, admin)
    assert service in [item["serviceName"] for item in everything["items"]]
    assert everything["nextCursor"] is None
    assert get(client, admin, service=service, status="HEALTHY")["items"] == []


def test_history_pages_newest_first_with_filters(
    client: Client, admin: Account, service: str
) -> None:
    first = get(client, admin, view="history", service=service, limit=2)
    assert [i["message"] for i in first["items"]] == ["result 4", "result 3"]
    second = get(
        client, admin, view="history", service=service, limit=2, cursor=first["nextCursor"]
    )
    third = get(
        client, admin, view="history", service=service, limit=2, cursor=second["nextCursor"]
    )
    assert [i["message"] for i in second["items"] + third["items"]] == [
        "result 2",
        "result 1",
        "result 0",
    ]
    assert third["nextCursor"] is None
    healthy = get(client, admin, view="history", service=service, status="HEALTHY", type="database")
    assert len(healthy["items"]) == 4
    since = first["items"][1]["createdAt"]
    recent = get(client, admin, view="history", service=service, **{"from": since})
    assert [i["message"] for i in recent["items"]] == ["result 4", "result 3"]


@pytest.mark.parametrize(
    "query",
    [
        {"view": "everything"},
        {"status": "FINE"},
        {"type": "kettle"},
        {"from": "yesterday"},
        {"from": "2026-01-01T00:00:00"},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"view": "history", "cursor": "not-a-cursor"},
        {"cursor": "eyJpZCI6IngifQ"},
        {"limit": "0"},
        {"limit": "501"},
        {"service": "a\x00b"},
        {"service": "x" * 201},
    ],
)
def test_bad_filters_are_problems(client: Client, admin: Account, query: dict[str, str]) -> None:
    problem(client.get(ROUTE, params=query, headers=admin), 400)


def test_only_admins_read_health_checks(client: Client, user: Account) -> None:
    assert client.get(ROUTE).status_code == 401
    assert problem(client.get(ROUTE, headers=user), 403)


def test_the_scheduler_checks_everything_and_the_route_serves_it(
    fresh_database_url: str, redis_url: str, api_settings: Settings
) -> None:
    # No file system has 100% free: the disk check fails, and the administrators are alerted.
    settings = replace(
        api_settings,
        database_url=fresh_database_url,
        redis_url=redis_url,
        health_disk_free_percent=100.0,
        # The workers are first checked three beats after the scheduler starts (15 s by default).
        worker_beat_interval=0.5,
    )
    app = create_app(settings, run_projectors=True, run_workers=True, run_scheduler=True)
    with TestClient(app) as isolated:
        owner = owner_of(isolated)
        deadline = time.monotonic() + 45
        while True:
            items = get(isolated, owner)["items"]
            names = {item["serviceName"] for item in items}
            if "workers" in names or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        alerts = isolated.get(
            f"{API}/admin/notifications", params={"kind": "health_check."}, headers=owner
        ).json()["items"]
    assert {"postgres", "redis", "queue.high", "queue.normal", "queue.low", "disk"} <= names
    assert {"projection.workflows", "projection.executions", "workers"} <= names
    by_name = {item["serviceName"]: item for item in items}
    assert by_name["postgres"]["status"] in ("HEALTHY", "DEGRADED")
    assert by_name["postgres"]["responseTime"] >= 0
    assert by_name["queue.normal"]["details"]["depth"] == 0
    assert by_name["disk"]["status"] in ("DEGRADED", "UNHEALTHY")
    disk = [alert for alert in alerts if alert["title"].startswith("Health check disk ")]
    assert [(alert["userId"], alert["title"]) for alert in disk] == [
        (None, f"Health check disk is {by_name['disk']['status']}")
    ]
