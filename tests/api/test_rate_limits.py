"""Rate limits on the real app: counted per user or API key once authenticated, per address on
the sign-in routes, per path on webhooks, refused with 429 problem+json, and each blocked window
recorded once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, Account, read, sign_up
from tests.api.test_webhooks import activated, hooked, unique_path
from tests.integration.helpers import rows


@pytest.fixture(scope="module")
def limited(api_settings: Settings, client: TestClient[Any]) -> Iterator[TestClient[Any]]:
    """A second API process on the same database with tight limits; the session client's
    projectors keep the read models current for both."""
    settings = replace(api_settings, rate_limits="read=2/60,write=off,auth=3/60,webhook=2/60")
    with TestClient(create_app(settings), raise_server_exceptions=False) as limited_client:
        yield limited_client


def test_reads_are_counted_per_user_not_per_address(
    limited: TestClient[Any], client: TestClient[Any], database_url: str
) -> None:
    alice, bob = sign_up(client), sign_up(client)

    statuses = [limited.get(f"{API}/me", headers=alice).status_code for _ in range(3)]
    refused = limited.get(f"{API}/me", headers=alice)

    assert statuses == [200, 200, 429]
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "2 per 60 seconds" in refused.json()["detail"]
    # Bob calls from the same address and still has his whole budget.
    assert limited.get(f"{API}/me", headers=bob).status_code == 200
    recorded = rows(
        database_url,
        "SELECT endpoint, is_blocked FROM api_rate_limit WHERE identifier = %s",
        (f"user:{alice.user_id}",),
    )
    assert recorded == [("read", True)]


def runs_of(client: TestClient[Any], user: Account, workflow_id: str) -> int:
    """How many runs of the workflow were started so far."""
    position = client.app.state.services.executions.app.head_position()
    listed = read(client, user, "/executions", position, workflowId=workflow_id, limit=500)
    return len(listed["items"])


def test_webhook_calls_are_counted_per_path_whoever_sends_them(
    limited: TestClient[Any], client: TestClient[Any], user: Account, database_url: str
) -> None:
    path, other = unique_path(), unique_path()
    workflow_id = activated(client, user, hooked(path, method="POST"))
    activated(client, user, hooked(other, method="POST"))

    answers = [limited.post(f"/webhook/{path}", json={"n": n}) for n in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[1].headers["RateLimit-Remaining"] == "0"
    refused = answers[2]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "2 per 60 seconds" in refused.json()["detail"]
    assert runs_of(client, user, workflow_id) == 2  # the refused call started nothing
    # Another path has its own budget; calls to paths nobody answers are not counted.
    assert limited.post(f"/webhook/{other}", json={}).status_code == 202
    unknown = f"/webhook/unknown-{uuid.uuid4().hex}"
    assert {limited.post(unknown, json={}).status_code for _ in range(3)} == {404}
    recorded = rows(
        database_url,
        "SELECT endpoint, request_count, is_blocked FROM api_rate_limit WHERE identifier = %s",
        (f"path:/webhook/{path}",),
    )
    assert recorded == [("webhook", 3, True)]


def test_a_workflow_sets_its_own_webhook_limit_or_turns_it_off(
    limited: TestClient[Any], client: TestClient[Any], user: Account
) -> None:
    strict, free = unique_path(), unique_path()
    own = {"webhookRateLimit": {"requests": 1, "seconds": 60}}
    activated(client, user, {**hooked(strict, method="POST"), "settings": own})
    activated(
        client, user, {**hooked(free, method="POST"), "settings": {"webhookRateLimit": "off"}}
    )

    # The default app limits no webhook; the workflow's own limit applies there too.
    assert [client.post(f"/webhook/{strict}").status_code for _ in range(2)] == [202, 429]
    # "off" overrides the installation's webhook=2/60.
    assert {limited.post(f"/webhook/{free}").status_code for _ in range(4)} == {202}


def test_an_api_key_has_its_own_budget(limited: TestClient[Any], client: TestClient[Any]) -> None:
    account = sign_up(client)
    created = client.post(
        f"{API}/me/api-keys", json={"name": "ci", "scopes": ["workflows:read"]}, headers=account
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["key"]}

    assert [limited.get(f"{API}/workflows", headers=key).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert limited.get(f"{API}/workflows", headers=account).status_code == 200


def test_sign_in_attempts_are_counted_per_address(limited: TestClient[Any]) -> None:
    body = {"email": "nobody@example.com", "password": "not the password"}
    statuses = [limited.post(f"{API}/auth/login", json=body).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_unlimited_groups_and_operational_routes_pass(
    limited: TestClient[Any], client: TestClient[Any]
) -> None:
    account: Account = sign_up(client)
    made = [
        limited.post(f"{API}/workflows", json={"name": f"w{i}"}, headers=account).status_code
        for i in range(4)
    ]
    assert made == [201] * 4
    assert {limited.get("/health").status_code for _ in range(5)} == {200}
