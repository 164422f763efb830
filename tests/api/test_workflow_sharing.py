"""Sharing workflows: every permission level against every workflow route, the share routes,
"shared with me", ownership transfer, and the workflow_share read model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from projections import workflows
from projections.rebuild import Rebuilder
from tests.api.helpers import (
    API,
    GRAPH,
    Account,
    create,
    event_count,
    problem,
    read,
    share,
    sign_up,
    webhook_graph,
)
from tests.integration.helpers import table_contents

Client = TestClient[Any]
SMALLER = {"nodes": [GRAPH["nodes"][0]], "connections": []}


@dataclass(frozen=True)
class Cast:
    owner: Account
    me: Account
    other: Account


@pytest.fixture(scope="module")
def cast(client: Client) -> Cast:
    """The owner of every workflow below, the caller whose level varies, and a third user."""
    return Cast(sign_up(client), sign_up(client), sign_up(client))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    needs: str
    body: Any = None
    ok: int = 200

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/workflows/{id}", "VIEW"),
    Route("GET", "/workflows/{id}?version=1", "VIEW"),
    Route("GET", "/audit/aggregates/{id}/events", "VIEW"),
    Route("POST", "/workflows/{id}/duplicate", "VIEW", ok=201),
    Route("PATCH", "/workflows/{id}", "EDIT", {"name": "Renamed"}),
    Route("PUT", "/workflows/{id}/definition", "EDIT", SMALLER),
    Route("POST", "/workflows/{id}/activate", "EDIT"),
    Route("POST", "/workflows/{id}/deactivate", "EDIT"),
    Route("POST", "/workflows/{id}/archive", "ADMIN"),
    Route("GET", "/workflows/{id}/shares", "ADMIN"),
    Route("POST", "/workflows/{id}/shares", "ADMIN", {"userId": "{other}", "permission": "EDIT"}),
    Route("DELETE", "/workflows/{id}/shares/{other}", "ADMIN"),
    Route("POST", "/workflows/{id}/transfer", "OWNER", {"userId": "{other}"}, ok=200),
]
ORDER = ["VIEW", "EXECUTE", "EDIT", "ADMIN", "OWNER"]


def expected_status(level: str | None, route: Route) -> int:
    if level is None:
        return 404
    return route.ok if ORDER.index(level) >= ORDER.index(route.needs) else 403


def fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("level", [None, *ORDER])
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_level_may_do_what_it_includes_and_nothing_more(
    client: Client, cast: Cast, route: Route, level: str | None
) -> None:
    """No access: 404 as for a workflow that does not exist. Too little: 403, nothing stored."""
    wid = create(client, cast.owner, definition=webhook_graph())["id"]
    position = share(client, cast.owner, wid, cast.other.user_id, "VIEW")["position"]
    me = cast.owner if level == "OWNER" else cast.me
    if level not in (None, "OWNER"):
        position = share(client, cast.owner, wid, cast.me.user_id, level)["position"]
    ids = {"id": wid, "other": cast.other.user_id}
    before = event_count(client)
    response = client.request(
        route.method,
        API + fill(route.path, ids),
        json=fill(route.body, ids),
        headers={**me, "A2N-Min-Position": str(position)},
    )
    status = expected_status(level, route)
    if status >= 400:
        detail = problem(response, status)["detail"]
        if status == 403:
            assert f"needs {route.needs} permission" in detail
            assert f"you have {level}" in detail
        assert event_count(client) == before
    else:
        assert response.status_code == status, response.text


def test_a_sharee_sees_the_workflow_with_their_permission_in_every_answer(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    shared = create(client, user, definition=GRAPH)
    create(client, user)
    own = create(client, bob)
    position = share(client, user, shared["id"], bob.user_id, "EDIT")["position"]

    shown = read(client, bob, f"/workflows/{shared['id']}", position)
    assert (shown["permission"], shown["userId"]) == ("EDIT", user.user_id)
    assert read(client, user, f"/workflows/{shared['id']}", position)["permission"] == "OWNER"
    assert read(client, bob, f"/workflows/{shared['id']}", position, version=1)["permission"] == (
        "EDIT"
    )
    changed = client.patch(f"{API}/workflows/{shared['id']}", json={"name": "B"}, headers=bob)
    assert (changed.status_code, changed.json()["permission"]) == (200, "EDIT")

    def listed(account: Account, **filters: Any) -> list[tuple[str, str]]:
        page = read(client, account, "/workflows", changed.json()["position"], **filters)
        return [(w["id"], w["permission"]) for w in page["items"]]

    assert listed(bob) == [(own["id"], "OWNER"), (shared["id"], "EDIT")]
    assert listed(bob, sharedWithMe="true") == [(shared["id"], "EDIT")]
    assert listed(bob, sharedWithMe="false") == [(own["id"], "OWNER")]
    assert listed(bob, sharedWithMe="true", q="nothing like it") == []
    assert listed(user, sharedWithMe="true") == []
    assert {p for _, p in listed(user)} == {"OWNER"}

    revoked = client.delete(f"{API}/workflows/{shared['id']}/shares/{bob.user_id}", headers=user)
    assert revoked.status_code == 200, revoked.text
    after = revoked.json()["position"]
    assert read(client, bob, "/workflows", after, sharedWithMe="true")["items"] == []
    gone = client.get(
        f"{API}/workflows/{shared['id']}", headers={**bob, "A2N-Min-Position": str(after)}
    )
    problem(gone, 404)


def test_share_by_email_then_change_the_level_then_repeat_it(client: Client, user: Account) -> None:
    bob = sign_up(client)
    wid = create(client, user)["id"]
    url = f"{API}/workflows/{wid}/shares"
    granted = client.post(
        url, json={"email": f"  {bob.email.upper()} ", "permission": "VIEW"}, headers=user
    )
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert (body["userId"], body["permission"], body["revision"]) == (bob.user_id, "VIEW", 2)
    assert granted.headers["etag"] == '"2"'

    changed = client.post(
        url, json={"userId": bob.user_id, "permission": "EDIT"}, headers={**user, "If-Match": '"2"'}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["id"], changed.json()["permission"]) == (body["id"], "EDIT")
    again = client.post(url, json={"userId": bob.user_id, "permission": "EDIT"}, headers=user)
    assert (again.status_code, again.json()["revision"]) == (200, 3)

    shares = read(client, user, f"/workflows/{wid}/shares", again.json()["position"])
    [row] = shares["items"]
    assert row["id"] == body["id"]
    assert (row["userId"], row["permission"], row["sharedBy"]) == (
        bob.user_id,
        "EDIT",
        user.user_id,
    )
    assert row["createdAt"] < row["updatedAt"]
    assert shares["nextCursor"] is None
    assert read(client, user, f"/workflows/{wid}", again.json()["position"])["revision"] == 3


def test_an_admin_sharee_manages_shares_but_only_the_owner_transfers(
    client: Client, user: Account
) -> None:
    bob, carol, dave = sign_up(client), sign_up(client), sign_up(client)
    wid = create(client, user)["id"]
    share(client, user, wid, bob.user_id, "ADMIN")
    share(client, bob, wid, carol.user_id, "VIEW")
    position = share(client, bob, wid, dave.user_id, "ADMIN")["position"]

    first = read(client, bob, f"/workflows/{wid}/shares", position, limit=2)
    rest = read(client, bob, f"/workflows/{wid}/shares", position, cursor=first["nextCursor"])
    rows = first["items"] + rest["items"]
    assert [(r["userId"], r["permission"], r["sharedBy"]) for r in rows] == [
        (bob.user_id, "ADMIN", user.user_id),
        (carol.user_id, "VIEW", bob.user_id),
        (dave.user_id, "ADMIN", bob.user_id),
    ]
    assert rest["nextCursor"] is None
    viewer = client.get(
        f"{API}/workflows/{wid}/shares", headers={**carol, "A2N-Min-Position": str(position)}
    )
    assert "ADMIN" in problem(viewer, 403)["detail"]

    # An ADMIN may revoke another ADMIN, but not take the workflow.
    assert client.delete(f"{API}/workflows/{wid}/shares/{dave.user_id}", headers=bob).is_success
    taken = client.post(
        f"{API}/workflows/{wid}/transfer", json={"userId": bob.user_id}, headers=bob
    )
    problem(taken, 403)
    assert client.delete(
        f"{API}/workflows/{wid}/shares/{user.user_id}", headers=bob
    ).status_code == (404)


def test_a_sharee_may_leave_and_then_has_no_access(client: Client, user: Account) -> None:
    bob = sign_up(client)
    wid = create(client, user)["id"]
    share(client, user, wid, bob.user_id, "VIEW")
    left = client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=bob)
    assert left.status_code == 200, left.text
    assert left.json()["userId"] == bob.user_id
    problem(client.get(f"{API}/workflows/{wid}?version=1", headers=bob), 404)
    problem(client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=bob), 404)
    nobody = client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=user)
    problem(nobody, 404)


def test_transfer_makes_the_recipient_owner_and_the_old_owner_an_admin(
    client: Client, user: Account
) -> None:
    bob, carol = sign_up(client), sign_up(client)
    wid = create(client, user)["id"]
    share(client, user, wid, bob.user_id, "EDIT")
    share(client, user, wid, carol.user_id, "VIEW")
    moved = client.post(
        f"{API}/workflows/{wid}/transfer", json={"userId": bob.user_id}, headers=user
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["userId"], body["permission"]) == (bob.user_id, "ADMIN")
    assert moved.headers["etag"] == f'"{body["revision"]}"'

    shown = read(client, bob, f"/workflows/{wid}", body["position"])
    assert (shown["userId"], shown["permission"]) == (bob.user_id, "OWNER")
    shares = read(client, bob, f"/workflows/{wid}/shares", body["position"])["items"]
    assert {(s["userId"], s["permission"]) for s in shares} == {
        (user.user_id, "ADMIN"),
        (carol.user_id, "VIEW"),
    }
    mine = read(client, user, "/workflows", body["position"], sharedWithMe="true")["items"]
    assert [(w["id"], w["permission"]) for w in mine] == [(wid, "ADMIN")]
    assert read(client, bob, "/workflows", body["position"], sharedWithMe="false")["items"][0][
        "id"
    ] == (wid)

    again = client.post(
        f"{API}/workflows/{wid}/transfer", json={"userId": carol.user_id}, headers=user
    )
    assert "OWNER" in problem(again, 403)["detail"]
    dropped = client.delete(f"{API}/workflows/{wid}/shares/{user.user_id}", headers=bob)
    assert dropped.status_code == 200
    after = dropped.json()["position"]
    problem(
        client.get(f"{API}/workflows/{wid}", headers={**user, "A2N-Min-Position": str(after)}), 404
    )


def test_transfer_to_the_owner_or_to_nobody_is_refused(client: Client, user: Account) -> None:
    wid = create(client, user)["id"]
    before = event_count(client)
    url = f"{API}/workflows/{wid}/transfer"
    problem(client.post(url, json={"userId": user.user_id}, headers=user), 409)
    unknown = problem(client.post(url, json={"userId": str(uuid.uuid4())}, headers=user), 422)
    assert unknown["errors"] == [{"pointer": "/userId", "message": "names no active account"}]
    problem(client.post(url, json={}, headers=user), 422)
    problem(client.post(url, json={"userId": user.user_id, "owner": True}, headers=user), 422)
    assert event_count(client) == before


NO_ACCOUNT = [{"pointer": "/userId", "message": "names no active account"}]
NO_ADDRESS = [{"pointer": "/email", "message": "names no active account"}]
BAD_SHARES: list[tuple[str, Any, int, list[dict[str, str]] | None]] = [
    ("unknown id", {"userId": "{unknown}", "permission": "VIEW"}, 422, NO_ACCOUNT),
    ("malformed id", {"userId": "../x", "permission": "VIEW"}, 422, NO_ACCOUNT),
    (
        "unknown address",
        {"email": "nobody-{unknown}@example.com", "permission": "VIEW"},
        422,
        NO_ADDRESS,
    ),
    ("not an address", {"email": "not an address", "permission": "VIEW"}, 422, NO_ADDRESS),
    (
        "both",
        {"userId": "{bob}", "email": "x@example.com", "permission": "VIEW"},
        422,
        [{"pointer": "", "message": "give either userId or email"}],
    ),
    ("neither", {"permission": "VIEW"}, 422, None),
    ("owner level", {"userId": "{bob}", "permission": "OWNER"}, 422, None),
    ("no level", {"userId": "{bob}"}, 422, None),
    ("lowercase level", {"userId": "{bob}", "permission": "view"}, 422, None),
    ("id not a string", {"userId": 7, "permission": "VIEW"}, 422, None),
    ("unknown field", {"userId": "{bob}", "permission": "VIEW", "expires": 1}, 422, None),
    ("the owner", {"userId": "{owner}", "permission": "VIEW"}, 409, None),
    ("no body", None, 422, None),
]


@pytest.mark.parametrize(
    ("body", "status", "errors"), [c[1:] for c in BAD_SHARES], ids=[c[0] for c in BAD_SHARES]
)
def test_bad_shares_are_problems_and_store_nothing(
    client: Client,
    cast: Cast,
    body: Any,
    status: int,
    errors: list[dict[str, str]] | None,
) -> None:
    wid = create(client, cast.owner)["id"]
    ids = {"unknown": str(uuid.uuid4()), "bob": cast.me.user_id, "owner": cast.owner.user_id}
    before = event_count(client)
    response = client.post(
        f"{API}/workflows/{wid}/shares", json=fill(body, ids), headers=cast.owner
    )
    found = problem(response, status)
    if errors is not None:
        assert found["errors"] == errors
    assert event_count(client) == before


def test_suspended_and_unknown_accounts_get_the_same_answer(
    client: Client, owner: Account, user: Account
) -> None:
    suspended = sign_up(client)
    done = client.post(f"{API}/users/{suspended.user_id}/suspend", json={}, headers=owner)
    assert done.status_code == 200, done.text
    wid = create(client, user)["id"]
    url = f"{API}/workflows/{wid}/shares"
    by_id = client.post(url, json={"userId": suspended.user_id, "permission": "VIEW"}, headers=user)
    by_email = client.post(url, json={"email": suspended.email, "permission": "VIEW"}, headers=user)
    unknown = client.post(
        url, json={"email": "no-one@example.com", "permission": "VIEW"}, headers=user
    )
    assert problem(by_id, 422)["errors"] == NO_ACCOUNT
    assert problem(by_email, 422) | {"instance": None, "requestId": None} == problem(
        unknown, 422
    ) | {"instance": None, "requestId": None}


def test_archived_workflows_take_no_new_shares_and_a_stale_if_match_is_412(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    wid = create(client, user)["id"]
    url = f"{API}/workflows/{wid}/shares"
    stale = client.post(
        url, json={"userId": bob.user_id, "permission": "VIEW"}, headers={**user, "If-Match": '"5"'}
    )
    assert problem(stale, 412)["currentRevision"] == 1
    share(client, user, wid, bob.user_id, "VIEW")
    assert client.post(f"{API}/workflows/{wid}/archive", headers=user).status_code == 200
    refused = client.post(url, json={"userId": bob.user_id, "permission": "EDIT"}, headers=user)
    assert "archived" in problem(refused, 409)["detail"]
    ended = client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=user)
    assert ended.status_code == 200, ended.text


def test_the_share_table_is_rebuilt_from_the_events(
    client: Client, database_url: str, user: Account
) -> None:
    bob, carol = sign_up(client), sign_up(client)
    wid = create(client, user)["id"]
    share(client, user, wid, bob.user_id, "VIEW")
    share(client, user, wid, bob.user_id, "ADMIN")
    share(client, bob, wid, carol.user_id, "EXECUTE")
    client.post(f"{API}/workflows/{wid}/transfer", json={"userId": carol.user_id}, headers=user)
    position = client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=carol).json()[
        "position"
    ]
    read(client, carol, f"/workflows/{wid}/shares", position)

    live = table_contents(database_url, "workflow_share")
    mine = [row for row in live if row["workflow_id"] == wid]
    assert [(r["user_id"], r["permission"], r["shared_by"]) for r in mine] == [
        (user.user_id, "ADMIN", user.user_id)
    ]
    rebuilder = Rebuilder(database_url, workflows.projector)
    assert rebuilder.verify().identical
    rebuilder.rebuild()
    assert table_contents(database_url, "workflow_share") == live


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "!!"}, "cursor")],
)
def test_bad_share_list_parameters_are_400_naming_them(
    client: Client, user: Account, params: dict[str, str], parameter: str
) -> None:
    made = create(client, user)
    response = client.get(
        f"{API}/workflows/{made['id']}/shares",
        params=params,
        headers={**user, "A2N-Min-Position": str(made["position"])},
    )
    assert [e["parameter"] for e in problem(response, 400)["errors"]] == [parameter]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/workflows/{id}/shares"),
        ("POST", "/workflows/{id}/shares"),
        ("DELETE", "/workflows/{id}/shares/{me}"),
        ("POST", "/workflows/{id}/transfer"),
    ],
)
@pytest.mark.parametrize(
    "bad_id",
    ["orders", "../../etc", str(uuid.uuid4()), "x" * 5000],
    ids=["word", "path", "unknown-uuid", "long"],
)
def test_share_routes_on_a_bad_workflow_id_are_404(
    client: Client, cast: Cast, method: str, path: str, bad_id: str
) -> None:
    before = event_count(client)
    body = {"userId": cast.other.user_id}
    if path.endswith("/shares"):
        body["permission"] = "VIEW"
    url = API + path.format(id=bad_id, me=cast.me.user_id)
    problem(
        client.request(method, url, json=None if method != "POST" else body, headers=cast.me), 404
    )
    assert event_count(client) == before
