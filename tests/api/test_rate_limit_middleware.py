"""The rate limit middleware on a tiny app: 429 problem+json, headers, and handlers left alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from litestar import Litestar, get, post
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send
from psycopg_pool import AsyncConnectionPool

from api.ratelimit import RateLimitMiddleware
from application.ratelimit import (
    BlockedWindowRecorder,
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    RateLimiting,
    RateLimitPolicy,
    RedisRateLimiter,
)
from tests.integration.helpers import rows

POLICY = RateLimitPolicy(
    {"read": Limit(2, 30), "write": Limit(1, 30), "auth": Limit(1, 30, key_by="ip")}
)


@dataclass(frozen=True)
class Actor:
    user_id: str
    api_key_id: str | None = None


def fake_authentication(app: ASGIApp) -> ASGIApp:
    """Stands in for authentication: puts the caller named by test headers on the scope."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        user = headers.get(b"x-test-user")
        if user:
            key = headers.get(b"x-test-key")
            actor = Actor(user.decode(), key.decode() if key else None)
            scope.setdefault("state", {})["actor"] = actor
        await app(scope, receive, send)

    return handle


def build_app(
    limiter: RateLimiter,
    *,
    pool: AsyncConnectionPool | None = None,
    fail_open: bool = True,
) -> tuple[Litestar, dict[str, int]]:
    """An app whose handlers count their calls, so a test can see what got through."""
    calls = {"read": 0, "write": 0, "login": 0, "health": 0, "exempt": 0}

    @get("/api/v1/things", sync_to_thread=False)
    def read_things() -> dict[str, str]:
        calls["read"] += 1
        return {"ok": "read"}

    @post("/api/v1/things", sync_to_thread=False)
    def write_thing() -> dict[str, str]:
        calls["write"] += 1
        return {"ok": "write"}

    @post("/api/v1/auth/login", sync_to_thread=False)
    def login() -> dict[str, str]:
        calls["login"] += 1
        return {"ok": "login"}

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        calls["health"] += 1
        return {"status": "ok"}

    @get("/api/v1/exempt", sync_to_thread=False, opt={"rate_limit": None})
    def exempt() -> dict[str, str]:
        calls["exempt"] += 1
        return {"ok": "exempt"}

    async def open_pool() -> None:
        if pool is not None:
            await pool.open(wait=True, timeout=15)

    async def close() -> None:
        if pool is not None:
            await pool.close()
        if isinstance(limiter, RedisRateLimiter):
            await limiter.client.aclose()

    recorder = BlockedWindowRecorder(pool) if pool is not None else None
    limiting = RateLimiting(limiter, POLICY, recorder)
    app = Litestar(
        route_handlers=[read_things, write_thing, login, health, exempt],
        middleware=[
            fake_authentication,
            RateLimitMiddleware(lambda _: limiting, fail_open=fail_open),
        ],
        on_startup=[open_pool],
        on_shutdown=[close],
    )
    return app, calls


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    """Each backend. The Redis client is made here but connects on the test client's own event
    loop at first use, and the app closes it at shutdown."""
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    yield RedisRateLimiter(client, prefix=f"a2n-test:{uuid.uuid4().hex}:")


def user() -> dict[str, str]:
    return {"X-Test-User": f"user-{uuid.uuid4().hex[:12]}"}


def test_a_refused_request_gets_429_problem_json_and_never_reaches_the_handler(
    limiter: RateLimiter,
) -> None:
    app, calls = build_app(limiter)
    me = user()
    with TestClient(app) as client:
        first = client.get("/api/v1/things", headers=me)
        second = client.get("/api/v1/things", headers=me)
        refused = client.get("/api/v1/things", headers=me)

    assert (first.status_code, second.status_code) == (200, 200)
    assert [r.headers["RateLimit-Remaining"] for r in (first, second)] == ["1", "0"]
    assert first.headers["RateLimit-Limit"] == "2"
    assert first.headers["RateLimit-Policy"] == "2;w=30"
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 30
    assert "Retry-After" not in first.headers

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    body = refused.json()
    assert body["type"] == "https://a2n.dev/problems/rate-limited"
    assert (body["status"], body["title"]) == (429, "Too Many Requests")
    assert body["instance"] == "/api/v1/things"
    assert "2 per 30 seconds" in body["detail"]
    assert calls["read"] == 2


def test_groups_and_callers_have_their_own_budgets(limiter: RateLimiter) -> None:
    app, calls = build_app(limiter)
    me = user()
    with TestClient(app) as client:
        assert client.post("/api/v1/things", headers=me).status_code == 201
        assert client.post("/api/v1/things", headers=me).status_code == 429
        assert client.get("/api/v1/things", headers=me).status_code == 200
        assert client.post("/api/v1/things", headers=user()).status_code == 201
        with_key = {**me, "X-Test-Key": "key-1"}
        assert client.post("/api/v1/things", headers=with_key).status_code == 201
    assert calls["write"] == 3


def test_auth_routes_count_per_address_whoever_claims_to_call(limiter: RateLimiter) -> None:
    app, calls = build_app(limiter)
    with TestClient(app) as client:
        # Every test client request comes from the same address.
        assert client.post("/api/v1/auth/login", headers=user()).status_code == 201
        refused = client.post("/api/v1/auth/login", headers=user())
    assert refused.status_code == 429
    assert calls["login"] == 1


def test_operational_and_exempt_routes_are_not_limited(limiter: RateLimiter) -> None:
    app, calls = build_app(limiter)
    with TestClient(app) as client:
        responses = [client.get(p) for p in ("/health", "/api/v1/exempt") for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert not any("RateLimit-Limit" in r.headers for r in responses)
    assert (calls["health"], calls["exempt"]) == (5, 5)


def test_a_blocked_window_is_recorded_once(limiter: RateLimiter, database_url: str) -> None:
    pool = AsyncConnectionPool(
        database_url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
    )
    app, _ = build_app(limiter, pool=pool)
    me = user()
    with TestClient(app) as client:
        statuses = [client.post("/api/v1/things", headers=me).status_code for _ in range(6)]
    assert statuses == [201] + [429] * 5
    found = rows(
        database_url,
        "SELECT endpoint, request_count, is_blocked FROM api_rate_limit WHERE identifier = %s",
        (f"user:{me['X-Test-User']}",),
    )
    assert found == [("write", 2, True)]


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
def test_an_unreachable_store_fails_open_or_closed_as_configured(
    fail_open: bool, status: int
) -> None:
    down = RedisRateLimiter(aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    app, calls = build_app(down, fail_open=fail_open)
    with TestClient(app) as client:
        response = client.get("/api/v1/things", headers=user())
    assert response.status_code == status
    assert "RateLimit-Limit" not in response.headers
    assert calls["read"] == (1 if fail_open else 0)
    if not fail_open:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["Retry-After"] == "1"
