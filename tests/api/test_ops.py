"""Operations routes: liveness, readiness (database, Redis, projections), metrics, OpenAPI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, GRAPH, SCRAPER, create, owner_of, read
from tests.integration.helpers import poison

Client = TestClient[Any]


def test_health_answers_without_touching_dependencies(client: Client) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_reports_database_redis_and_every_projection(
    client: Client, user: dict[str, str]
) -> None:
    position = create(client, user)["position"]
    read(client, user, "/workflows", position)
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("ready", "ok", "ok")
    projections = {(p["projector"], p["application"]): p for p in body["projections"]}
    assert set(projections) == {
        ("identity", "identity"),
        ("identity", "workflows"),  # users' workflows_created counts
        ("identity", "executions"),  # users' workflows_executed counts
        ("workflows", "workflows"),
        ("workflows", "executions"),  # workflows' run counters
        ("workflow_comments", "workflows"),
        ("workflow_comments", "identity"),  # comment texts of erased authors
        ("executions", "executions"),
        ("credentials", "credentials"),
        ("nodes", "nodes"),
        ("nodes", "executions"),  # node usage statistics
        ("nodes", "identity"),  # reviews of erased raters
        ("schedules", "executions"),
        ("audit_log", "identity"),
        ("audit_log", "workflows"),
        ("audit_log", "executions"),
        ("audit_log", "credentials"),
        ("audit_log", "nodes"),
        ("event_triggers", "executions"),  # the process managers beside the workers
        ("notifications", "executions"),
        ("notifications", "identity"),
        ("notifications", "operations"),  # health checks' changes of status
        ("operations", "operations"),  # runtime settings, health check states
        ("audit_log", "operations"),
        ("system_notifications", "notifications"),
        ("system_notifications", "identity"),  # notifications of erased users
        ("audit_log", "notifications"),
    }
    workflows = projections[("workflows", "workflows")]
    assert workflows["position"] >= position
    assert workflows["lag"] == workflows["head"] - workflows["position"]
    assert workflows["status"] == "running"
    assert projections[("event_triggers", "executions")]["status"] in ("running", "standby")


def test_ready_is_503_when_redis_is_configured_but_down(api_settings: Settings) -> None:
    settings = replace(api_settings, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as isolated:
        response = isolated.get("/ready")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("unavailable")
    assert response.json()["status"] == "unavailable"


def test_metrics_expose_requests_latency_projection_lag_and_pool(
    client: Client, user: dict[str, str]
) -> None:
    create(client, user)
    client.get(f"{API}/workflows/nope", headers=user)
    text = client.get("/metrics", headers=SCRAPER).text
    assert 'a2n_http_requests_total{method="POST",route="/api/v1/workflows",status="201"}' in text
    assert (
        'a2n_http_requests_total{method="GET",route="/api/v1/workflows/{workflow_id}",status="404"}'
        in text
    )
    assert 'a2n_http_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    assert 'a2n_projection_lag_events{application="workflows",projector="workflows"}' in text
    assert 'a2n_projection_parked{projector="audit_log"} 0.0' in text
    # Every pool of the process reports its size against the budget (README, "Connections").
    for pool, most in (("read", 3), ("events", 3), ("write", 2), ("listener", 1)):
        assert f'a2n_db_pool_connections{{pool="{pool}",state="max"}} {most}.0' in text


def test_openapi_documents_every_route(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/workflows",
        "/api/v1/workflows/{workflow_id}",
        "/api/v1/workflows/{workflow_id}/definition",
        "/api/v1/audit/aggregates/{aggregate_id}/events",
        "/api/v1/audit/aggregates/{aggregate_id}",
        "/api/v1/audit/events",
        "/api/v1/audit/log",
        "/api/v1/audit/verify",
    } <= paths
    create_body = schema["paths"]["/api/v1/workflows"]["post"]["requestBody"]
    assert create_body["content"]["application/json"]["schema"]


def test_openapi_documents_every_error_as_a_problem(client: Client) -> None:
    """Generated clients parse an error by its documented media type: every 4xx and 5xx of every
    operation is RFC 9457 problem+json, as sent; /ready's 503 is its readiness report."""
    schema = client.get("/schema/openapi.json").json()
    assert {"type", "title", "status", "detail"} <= set(
        schema["components"]["schemas"]["Problem"]["required"]
    )
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    documented: dict[tuple[str, str], set[str]] = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
            documented[(method, path)] = set(errors)
            for status, response in errors.items():
                if (method, path, status) == ("get", "/ready", "503"):
                    readiness = {"schema": {"$ref": "#/components/schemas/Readiness"}}
                    assert response["content"] == {"application/json": readiness}
                    continue
                assert response["content"] == {"application/problem+json": problem}, (
                    method,
                    path,
                    status,
                )
    assert len(documented) > 100
    assert all({"400", "500"} <= errors for errors in documented.values())
    # What each route can answer follows from what it is.
    assert documented[("get", "/health")] == {"400", "500"}
    assert documented[("get", "/metrics")] == {"400", "401", "403", "500"}
    assert documented[("get", f"{API}/workflows")] == {"400", "401", "403", "429", "500", "503"}
    assert documented[("patch", f"{API}/workflows/{{workflow_id}}")] == {
        *("400", "401", "403", "404", "409", "413", "415", "422", "429", "500"),
    }
    assert documented[("post", f"{API}/auth/login")] == {
        *("400", "409", "413", "415", "422", "429", "500"),
    }
    assert documented[("post", "/webhook/{path}")] == {
        *("400", "401", "404", "405", "413", "429", "500", "503", "504"),
    }


def test_a_parked_projector_shows_in_ready_while_the_api_keeps_serving(
    fresh_database_url: str, redis_url: str, api_settings: Settings
) -> None:
    settings = replace(api_settings, database_url=fresh_database_url, redis_url=redis_url)
    app = create_app(settings, run_projectors=True)
    with TestClient(app) as isolated:
        user = owner_of(isolated)
        victim = create(isolated, user, definition=GRAPH)
        poison(fresh_database_url, victim["id"])
        after = create(isolated, user, name="after")

        def parked() -> dict[str, Any]:
            body: dict[str, Any] = isolated.get("/ready").json()
            return next(p for p in body["projections"] if p["projector"] == "workflows")

        wait(lambda: parked()["status"] == "parked")
        response = isolated.get("/ready")
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        check = parked()
        assert check["parkedEvent"]["aggregateId"] == victim["id"]
        assert "AttributeError" in check["parkedEvent"]["error"]
        # Commands and the other projections go on.
        audit = read(isolated, user, f"/audit/aggregates/{after['id']}/events", 0)
        assert audit["items"][0]["type"] == "WorkflowCreated"
        assert create(isolated, user, name="still serving")["revision"] == 1
        assert (
            'a2n_projection_parked{projector="workflows"} 1.0'
            in isolated.get("/metrics", headers=SCRAPER).text
        )

        # Administrators are alerted, on the alert channels (here the webhook channel).
        def parked_alerts() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = isolated.get(
                "/api/v1/admin/notifications", params={"kind": "projector.parked"}, headers=user
            ).json()["items"]
            return items

        # The alert shows once the system_notifications projector has written it.
        wait(lambda: bool(parked_alerts()))
        alerts = parked_alerts()
        assert [(a["resourceId"], a["severity"], a["userId"]) for a in alerts] == [
            ("workflows", "critical", None)
        ]
        assert "a2n project resume workflows" in alerts[0]["body"]
        assert [d["channel"] for d in alerts[0]["deliveries"]] == ["webhook"]


def wait(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
