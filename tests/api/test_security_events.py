"""Security events for administrators: list with filters and pages, resolve once with a note."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, promote, sign_up
from tests.api.test_identity_bad_input import identity_events, problem

Client = TestClient[Any]
EVENTS = f"{API}/security-events"


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


def failed_logins(client: Client, account: Account, count: int) -> None:
    for _ in range(count):
        wrong = client.post(
            f"{API}/auth/login", json={"email": account.email, "password": "not the password"}
        )
        assert wrong.status_code == 401


def listed(client: Client, admin: Account, **params: Any) -> dict[str, Any]:
    """One page, read once the identity projection holds every event stored so far."""
    head = client.app.state.services.identity.app.head_position()
    response = client.get(EVENTS, params=params, headers={**admin, "A2N-Min-Position": str(head)})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def resolve(client: Client, admin: Account, event_id: str, body: Any = None) -> Any:
    return client.post(f"{EVENTS}/{event_id}/resolve", json=body, headers=admin)


def test_admins_page_through_filtered_events_and_resolve_them(
    client: Client, admin: Account
) -> None:
    victim = sign_up(client)
    failed_logins(client, victim, 3)
    first = listed(client, admin, userId=victim.user_id, type="FAILED_LOGIN", limit=2)
    assert len(first["items"]) == 2
    assert first["nextCursor"]
    rest = listed(client, admin, userId=victim.user_id, limit=2, cursor=first["nextCursor"])
    assert len(rest["items"]) == 1
    assert rest["nextCursor"] is None
    items = first["items"] + rest["items"]
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    item = items[0]
    assert (item["eventType"], item["severity"], item["userId"], item["isResolved"]) == (
        "FAILED_LOGIN",
        "MEDIUM",
        victim.user_id,
        False,
    )
    assert listed(client, admin, userId=victim.user_id, type="LOGIN_LOCKOUT")["items"] == []

    done = resolve(client, admin, item["id"], {"note": "the user mistyped; talked to them"})
    assert done.status_code == 200, done.text
    assert (done.json()["isResolved"], done.json()["resolvedBy"]) == (True, admin.user_id)
    resolved = listed(client, admin, userId=victim.user_id, resolved="true")["items"]
    assert [(r["id"], r["resolvedBy"], r["resolutionNote"]) for r in resolved] == [
        (item["id"], admin.user_id, "the user mistyped; talked to them")
    ]
    assert resolved[0]["resolvedAt"] is not None
    open_ones = listed(client, admin, userId=victim.user_id, resolved="false")["items"]
    assert {o["id"] for o in open_ones} == {i["id"] for i in items[1:]}

    # Without a body (or a note) it resolves too; a second resolution conflicts.
    assert resolve(client, admin, items[1]["id"]).status_code == 200
    before = identity_events(client)
    problem(resolve(client, admin, items[1]["id"], {"note": "again"}), 409)
    assert identity_events(client) == before


def test_users_neither_list_nor_resolve(client: Client, admin: Account, user: Account) -> None:
    failed_logins(client, user, 1)
    event_id = listed(client, admin, userId=user.user_id)["items"][0]["id"]
    problem(client.get(EVENTS, headers=user), 403)
    before = identity_events(client)
    problem(resolve(client, user, event_id), 403)
    assert identity_events(client) == before


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"note": ""}, 422, "/note"),
        ({"note": "nul\u0000byte"}, 422, "/note"),
        ({"note": "x" * 2001}, 422, "/note"),
        ({"note": 5}, 422, None),
        ({"reason": "x"}, 422, None),
    ],
)
def test_a_bad_note_changes_nothing(
    client: Client, admin: Account, user: Account, body: Any, status: int, pointer: str | None
) -> None:
    failed_logins(client, user, 1)
    event_id = listed(client, admin, userId=user.user_id)["items"][0]["id"]
    before = identity_events(client)
    found = problem(resolve(client, admin, event_id, body), status)
    if pointer:
        assert found["errors"][0]["pointer"] == pointer
    assert identity_events(client) == before
    assert not listed(client, admin, userId=user.user_id)["items"][0]["isResolved"]


def test_unknown_events_and_bad_parameters_are_problems(client: Client, admin: Account) -> None:
    before = identity_events(client)
    problem(resolve(client, admin, str(uuid.uuid4())), 404)
    problem(resolve(client, admin, "nope"), 404)
    assert identity_events(client) == before
    for params in ({"resolved": "maybe"}, {"limit": "0"}, {"cursor": "garbage"}):
        problem(client.get(EVENTS, params=params, headers=admin), 400)
