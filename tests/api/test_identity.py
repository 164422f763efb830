"""Identity through the HTTP API: sign-up, sign-in, refresh rotation, reuse, keys, suspension."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar.testing import TestClient

from application.crypto import KeyRing
from application.executions.app import ExecutionsApp
from application.identity.commands import parse_api_key
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import API, PASSWORD, Account, create, login, mailed_token, sign_up
from tests.integration.helpers import record_run, rows, wait_until

Client = TestClient[Any]


def db(client: Client) -> str:
    return str(client.app.state.services.database.url)


def test_refresh_rotates_and_a_reused_token_ends_the_session(client: Client, user: Account) -> None:
    first = user.tokens["refreshToken"]
    rotated = client.post(f"{API}/auth/refresh", json={"refreshToken": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refreshToken"] != first
    reused = client.post(f"{API}/auth/refresh", json={"refreshToken": first})
    assert reused.status_code == 401
    # The whole family is gone: the newest token and its access token stop too.
    assert (
        client.post(
            f"{API}/auth/refresh", json={"refreshToken": second["refreshToken"]}
        ).status_code
        == 401
    )
    headers = {"Authorization": f"Bearer {second['accessToken']}"}
    assert client.get(f"{API}/me", headers=headers).status_code == 401
    alerts = "SELECT event_type, severity FROM security_event WHERE user_id = %s"
    wait_until(lambda: ("REFRESH_TOKEN_REUSE", "HIGH") in rows(db(client), alerts, (user.user_id,)))


def test_wrong_password_is_refused_and_recorded(client: Client, user: Account) -> None:
    response = client.post(f"{API}/auth/login", json={"email": user.email, "password": "x" * 12})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    failures = "SELECT id FROM security_event WHERE event_type = 'FAILED_LOGIN' AND user_id = %s"
    wait_until(lambda: len(rows(db(client), failures, (user.user_id,))) == 1)


def test_registering_an_address_twice_conflicts(client: Client, user: Account) -> None:
    again = client.post(
        f"{API}/auth/register", json={"email": user.email.upper(), "password": PASSWORD}
    )
    assert again.status_code == 409


def test_a_suspended_user_is_cut_off_at_once(client: Client, owner: Account, user: Account) -> None:
    key = client.post(
        f"{API}/me/api-keys", headers=user, json={"name": "ci", "scopes": ["workflows:read"]}
    ).json()
    assert client.get(f"{API}/workflows", headers={"X-API-Key": key["key"]}).status_code == 200
    suspended = client.post(f"{API}/users/{user.user_id}/suspend", headers=owner, json={})
    assert suspended.status_code == 200, suspended.text
    assert client.get(f"{API}/me", headers=user).status_code == 401
    assert client.get(f"{API}/workflows", headers={"X-API-Key": key["key"]}).status_code == 401
    refreshed = client.post(
        f"{API}/auth/refresh", json={"refreshToken": user.tokens["refreshToken"]}
    )
    assert refreshed.status_code == 401
    assert client.post(f"{API}/users/{user.user_id}/reactivate", headers=owner).status_code == 200
    assert client.get(f"{API}/me", headers=user).status_code == 200


def test_api_keys_are_limited_by_scope_and_address(client: Client, user: Account) -> None:
    reader = client.post(
        f"{API}/me/api-keys", headers=user, json={"name": "reader", "scopes": ["workflows:read"]}
    ).json()
    auth = {"Authorization": f"Bearer {reader['key']}"}
    assert client.get(f"{API}/workflows", headers=auth).status_code == 200
    assert client.post(f"{API}/workflows", headers=auth, json={"name": "x"}).status_code == 403
    elsewhere = client.post(
        f"{API}/me/api-keys",
        headers=user,
        json={"name": "office", "scopes": ["workflows:read"], "allowedIps": ["203.0.113.0/24"]},
    ).json()
    refused = client.get(f"{API}/workflows", headers={"X-API-Key": elsewhere["key"]})
    assert refused.status_code == 403
    assert (
        client.post(
            f"{API}/me/api-keys", headers=user, json={"name": "root", "scopes": ["admin"]}
        ).status_code
        == 422
    )
    listed = client.get(f"{API}/me/api-keys", headers=user).json()
    assert all("key" not in item for item in listed)
    assert client.delete(f"{API}/me/api-keys/{reader['id']}", headers=user).status_code == 200
    assert client.get(f"{API}/workflows", headers=auth).status_code == 401


def test_password_reset_by_mailed_token_ends_old_sessions(
    client: Client, owner: Account, user: Account
) -> None:
    assert client.post(f"{API}/auth/password/forgot", json={"email": user.email}).status_code == 202
    assert (
        client.post(f"{API}/auth/password/forgot", json={"email": "nobody@example.com"}).status_code
        == 202
    )
    assert client.get(f"{API}/admin/mail-outbox", headers=user).status_code == 403
    token = mailed_token(client, owner, user.user_id, "PASSWORD_RESET")
    new_password = "a brand new long password"
    reset = client.post(
        f"{API}/auth/password/reset", json={"token": token, "password": new_password}
    )
    assert reset.status_code == 200, reset.text
    assert (
        client.post(
            f"{API}/auth/password/reset", json={"token": token, "password": new_password}
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{API}/auth/refresh", json={"refreshToken": user.tokens["refreshToken"]}
        ).status_code
        == 401
    )
    login(client, user.email, new_password)


def test_no_secret_or_personal_data_is_stored_in_clear(client: Client) -> None:
    account = sign_up(client)
    key = client.post(
        f"{API}/me/api-keys", headers=account, json={"name": "k", "scopes": ["workflows:read"]}
    ).json()["key"]
    refreshed = client.post(
        f"{API}/auth/refresh", json={"refreshToken": account.tokens["refreshToken"]}
    ).json()
    secrets = [
        PASSWORD,
        account.email,
        key,
        api_key_secret(key),
        account.tokens["refreshToken"].split(".")[1],
        refreshed["refreshToken"].split(".")[1],
        account.tokens["accessToken"],
    ]
    with psycopg.connect(db(client)) as conn:
        stored = conn.execute("SELECT convert_from(state, 'UTF8') FROM identity_events").fetchall()
        audit = conn.execute("SELECT new_values::text FROM audit_log").fetchall()
    text = "\n".join(row[0] for row in stored + audit)
    for secret in secrets:
        assert secret not in text


def test_a_users_created_workflows_are_counted(client: Client, user: Account) -> None:
    first = create(client, user, name="one")
    create(client, user, name="two")
    copied = client.post(f"{API}/workflows/{first['id']}/duplicate", headers=user)
    assert copied.status_code == 201, copied.text

    def counted() -> int:
        me = client.get(f"{API}/me", headers=user).json()
        return int(me["workflowsCreated"])

    wait_until(lambda: counted() == 3)
    assert client.get(f"{API}/me", headers=user).json()["workflowsExecuted"] == 0


def test_identity_tables_equal_a_rebuild_from_zero(client: Client, runs: ExecutionsApp) -> None:
    creator = sign_up(client)
    made = create(client, creator, name="counted for its creator")
    run = record_run(runs, made["id"], creator.user_id)
    at = {"A2N-Min-Position": f"executions:{run.position}"}
    assert client.get(f"{API}/me", headers={**creator, **at}).json()["workflowsExecuted"] == 1
    use_key_ring(KeyRing.parse(client.app.state.services.settings.master_keys))
    result = Rebuilder(db(client), projector_named("identity")).verify()
    assert result.identical, result.differences
    # In small pages, pages of Workflows and Executions events are read before the Identity
    # events that registered their creators: the counts must come out the same.
    result = Rebuilder(db(client), projector_named("identity"), batch_size=5).verify()
    assert result.identical, result.differences


def api_key_secret(key: str) -> str:
    """The secret part of a key (itself URL-safe base64, so it may hold "_")."""
    parsed = parse_api_key(key)
    assert parsed is not None, key
    return parsed[1]
