"""The request log (`a2n.http`) and the request counter of /metrics carry the status actually sent,
whichever path produced it: routing (404, 405), route middleware (401, 429), guards (403), the
handler (404, 413, 422) or an unexpected failure (500)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import psycopg
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, SCRAPER, owner_of, problem, sign_up

Labels = tuple[str, str, str]


def test_every_status_is_logged_and_counted_as_sent(
    api_settings: Settings, fresh_database_url: str
) -> None:
    settings = replace(
        api_settings,
        database_url=fresh_database_url,
        rate_limits="read=3/60,write=off,auth=off,webhook=off",
    )
    with capture_logs() as logs, TestClient(create_app(settings, run_projectors=True)) as client:
        owner_of(client)
        user, limited = sign_up(client), sign_up(client)
        too_big = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
        sent = [
            ("GET", f"{API}/workflows", {}, None, 401, f"{API}/workflows"),
            ("GET", f"{API}/users", user, None, 403, f"{API}/users"),
            ("GET", f"{API}/workflows/nope", user, None, 404, f"{API}/workflows/{{workflow_id}}"),
            ("GET", f"{API}/no-such-route", user, None, 404, "unmatched"),
            ("DELETE", "/health", {}, None, 405, "unmatched"),
            ("POST", f"{API}/workflows", user, too_big, 413, f"{API}/workflows"),
            ("POST", f"{API}/workflows", user, b'{"name": 5}', 422, f"{API}/workflows"),
            *[("GET", f"{API}/me", limited, None, 200, f"{API}/me")] * 3,
            ("GET", f"{API}/me", limited, None, 429, f"{API}/me"),
        ]
        for method, url, headers, body, status, _ in sent:
            response = client.request(
                method, url, headers={**headers, "content-type": "application/json"}, content=body
            )
            assert response.status_code == status, response.text
            if status != 200:
                # Refusals from outside the route handlers carry the request id too.
                assert problem(response, status)["requestId"] == response.headers["x-request-id"]
        # A real fault: the read model the workflow list queries is gone.
        with psycopg.connect(fresh_database_url, autocommit=True) as conn:
            conn.execute("DROP TABLE workflow CASCADE")
        assert problem(client.get(f"{API}/workflows", headers=user), 500)
        sent.append(("GET", f"{API}/workflows", user, None, 500, f"{API}/workflows"))
        metrics = client.get("/metrics", headers=SCRAPER).text

    logged = [(e["method"], e["route"], str(e["status"])) for e in logs if e["event"] == "request"]
    probes = [(method, route, str(status)) for method, _, _, _, status, route in sent]
    assert logged[-len(probes) - 1 : -1] == probes
    assert _requests_counted(metrics) == Counter(logged[:-1])  # the scrape counts after it


def _requests_counted(metrics: str) -> Counter[Labels]:
    counted: Counter[Labels] = Counter()
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "a2n_http_requests_total":
                labels: dict[str, Any] = sample.labels
                key = (labels["method"], labels["route"], labels["status"])
                counted[key] = int(sample.value)
    return counted
