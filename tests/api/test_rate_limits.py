"""Rate limits on the real app: counted per user or API key once authenticated, per address on
the sign-in routes, refused with 429 problem+json, and each blocked window recorded once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, Account, sign_up
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


def test_webhook_calls_are_counted_per_sender_address(limited: TestClient[Any]) -> None:
    path = f"/webhook/unknown-{uuid.uuid4().hex}"
    statuses = [limited.post(path, json={}).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    assert "webhook" in limited.get(path).json()["detail"]


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
