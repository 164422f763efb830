"""Bad input to the identity routes: a problem+json answer, and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, problem

Client = TestClient[Any]

PUBLIC_ROUTES = [
    "/auth/register",
    "/auth/login",
    "/auth/refresh",
    "/auth/verify-email",
    "/auth/password/forgot",
    "/auth/password/reset",
]
SIGNED_IN_ROUTES = [("PATCH", "/me"), ("POST", "/me/password"), ("POST", "/me/api-keys")]


def identity_events(client: Client) -> int:
    return int(client.app.state.services.identity.app.head_position())


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"email": ', 400),
        (b"[]", 422),
        (b'{"unexpected": 1}', 422),
        (b'{"email": 5, "password": [], "token": {}, "refreshToken": 1}', 422),
    ],
)
def test_public_routes_refuse_bad_bodies(
    client: Client, owner: Account, path: str, content: bytes, status: int
) -> None:
    before = identity_events(client)
    response = client.post(
        f"{API}{path}", content=content, headers={"content-type": "application/json"}
    )
    problem(response, status)
    assert identity_events(client) == before


@pytest.mark.parametrize(("method", "path"), SIGNED_IN_ROUTES)
def test_signed_in_routes_refuse_unknown_fields_and_wrong_types(
    client: Client, user: Account, method: str, path: str
) -> None:
    before = identity_events(client)
    for content in (b'{"name": 1, "scopes": "all", "currentPassword": 2}', b'{"nope": true}'):
        response = client.request(
            method,
            f"{API}{path}",
            content=content,
            headers={**user, "content-type": "application/json"},
        )
        problem(response, 422)
    assert identity_events(client) == before


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"email": "not-an-address", "password": "long enough password"}, "/email"),
        ({"email": "a@example.com\u0000", "password": "long enough password"}, "/email"),
        ({"email": "short@example.com", "password": "short"}, "/password"),
        ({"email": "n@example.com", "password": "long enough password", "name": "\x00"}, "/name"),
    ],
)
def test_register_reports_the_bad_field(
    client: Client, owner: Account, body: dict[str, str], pointer: str
) -> None:
    before = identity_events(client)
    found = problem(client.post(f"{API}/auth/register", json=body), 422)
    assert [e["pointer"] for e in found["errors"]] == [pointer]
    assert identity_events(client) == before


def test_api_key_rules_are_reported_at_once(client: Client, user: Account) -> None:
    before = identity_events(client)
    found = problem(
        client.post(
            f"{API}/me/api-keys",
            headers=user,
            json={"name": " ", "scopes": ["everything"], "allowedIps": ["999.1.1.1"]},
        ),
        422,
    )
    assert {e["pointer"] for e in found["errors"]} == {"/name", "/scopes/0", "/allowedIps/0"}
    assert identity_events(client) == before


@pytest.mark.parametrize("token", ["", "nope", "x" * 600, "00000000-0000-7000-8000-000000000000.x"])
def test_bad_tokens_are_refused_without_saying_why(client: Client, token: str) -> None:
    problem(client.post(f"{API}/auth/refresh", json={"refreshToken": token}), 401)
    problem(client.post(f"{API}/auth/verify-email", json={"token": token}), 422)
    garbage = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token or 'x'}"})
    problem(garbage, 401)


def test_an_api_key_name_with_a_nul_byte_is_refused(client: Client, user: Account) -> None:
    before = identity_events(client)
    found = problem(
        client.post(f"{API}/me/api-keys", headers=user, json={"name": "a\u0000b", "scopes": []}),
        422,
    )
    assert {e["pointer"] for e in found["errors"]} == {"/name", "/scopes"}
    assert identity_events(client) == before
