"""Login lockout: too many failed sign-ins lock an account or an address, right password or not."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import psycopg
import pyotp
import pytest
import redis.asyncio as aioredis
from litestar.testing import TestClient

from api.app import create_app
from application.errors import TooManyAttempts
from application.identity.lockout import LoginLockout
from application.ratelimit import Limit, RedisRateLimiter
from application.settings import Settings
from tests.api.helpers import API, PASSWORD, Account, sign_up

Client = TestClient[Any]
FAILURES = 5  # the default A2N_LOGIN_MAX_FAILURES


def login(client: Client, email: str, password: str = PASSWORD) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def locked(response: Any, window: int = 900) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert 0 < int(response.headers["retry-after"]) <= window
    body = response.json()
    assert body["type"].endswith("/login-locked")
    assert f"Retry after {response.headers['retry-after']} seconds" in body["detail"]
    assert "accessToken" not in response.text


def security_events(client: Client, waiter: Account, kind: str) -> list[tuple[str | None, Any]]:
    """HIGH rows of one security event type, once the identity projection caught up (`waiter`
    is any signed-in account, to ask)."""
    services = client.app.state.services
    head = services.identity.app.head_position()
    caught_up = client.get(f"{API}/me", headers={**waiter, "A2N-Min-Position": str(head)})
    assert caught_up.status_code == 200, caught_up.text
    with psycopg.connect(str(services.database.url)) as conn:
        found = conn.execute(
            "SELECT user_id, metadata FROM security_event WHERE event_type = %s "
            "AND severity = 'HIGH' ORDER BY id",
            (kind,),
        ).fetchall()
    return [(user_id, metadata) for user_id, metadata in found]


def test_an_account_locks_after_failures_even_for_the_right_password(
    client: Client, user: Account
) -> None:
    for _ in range(FAILURES):
        assert login(client, user.email, "a wrong password!").status_code == 401
    locked(login(client, user.email))
    locked(login(client, user.email.upper(), "another wrong one"))
    lockouts = [m for u, m in security_events(client, user, "LOGIN_LOCKOUT") if u == user.user_id]
    assert lockouts == [{"scope": "account", "failures": FAILURES, "windowSeconds": 900.0}]
    # Others sign in as before, and the locked account's sessions go on.
    assert "accessToken" in login(client, sign_up(client).email).json()
    assert client.get(f"{API}/me", headers=user).status_code == 200


def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(
    client: Client, user: Account
) -> None:
    with ThreadPoolExecutor(max_workers=FAILURES * 2) as pool:
        answers = list(pool.map(lambda _: login(client, user.email, "wrong!"), range(FAILURES * 2)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * FAILURES + [429] * FAILURES


def test_an_unknown_address_locks_exactly_like_an_account(client: Client) -> None:
    address = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    for _ in range(FAILURES):
        assert login(client, address).status_code == 401
    locked(login(client, address))


def test_wrong_second_factor_codes_count_towards_the_lockout(client: Client, user: Account) -> None:
    setup = client.post(f"{API}/me/2fa/setup", headers=user).json()
    totp = pyotp.TOTP(setup["secret"])
    codes = client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": totp.now()}).json()[
        "recoveryCodes"
    ]
    challenge = login(client, user.email).json()["challenge"]
    for _ in range(FAILURES):
        wrong = client.post(
            f"{API}/auth/login/2fa",
            json={"challenge": challenge, "code": "AAAA-BBBB-CCCC-DDDD"},
        )
        assert wrong.status_code == 422
    right = {"challenge": challenge, "code": codes[0]}
    locked(client.post(f"{API}/auth/login/2fa", json=right))
    locked(login(client, user.email))
    locked(client.post(f"{API}/me/2fa/disable", headers=user, json={"code": codes[0]}))


def test_an_address_locks_after_failures_across_accounts(
    fresh_database_url: str, api_settings: Settings
) -> None:
    """One client address guessing many accounts: its own installation, with a low limit."""
    settings = replace(
        api_settings,
        database_url=fresh_database_url,
        login_max_failures=100,
        login_max_failures_per_ip=3,
        login_failure_window=60,
    )
    with TestClient(create_app(settings, run_projectors=True)) as isolated:
        owner = sign_up(isolated)
        for i in range(3):
            assert login(isolated, f"guess-{i}@example.com").status_code == 401
        locked(login(isolated, owner.email), window=60)
        lockouts = security_events(isolated, owner, "LOGIN_LOCKOUT")
        assert lockouts == [(None, {"scope": "address", "failures": 3, "windowSeconds": 60.0})]


def test_the_lockout_counts_in_memory_while_redis_is_down() -> None:
    async def scenario() -> None:
        down = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        try:
            lockout = LoginLockout(
                RedisRateLimiter(down), per_account=Limit(2, 60), per_address=Limit(10, 60)
            )
            await lockout.refuse_if_locked("user:u-1", "192.0.2.1")
            assert await lockout.failed("user:u-1", "192.0.2.1") == []
            begun = await lockout.failed("user:u-1", "192.0.2.1")
            assert [b.scope for b in begun] == ["account"]
            started = time.monotonic()
            with pytest.raises(TooManyAttempts) as refused:
                await lockout.refuse_if_locked("user:u-1", "192.0.2.9")
            assert 58 <= refused.value.retry_after <= 60 + (time.monotonic() - started)
            await lockout.refuse_if_locked("user:u-2", "192.0.2.1")
        finally:
            await down.aclose()

    asyncio.run(scenario())
