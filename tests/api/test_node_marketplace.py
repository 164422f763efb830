"""Node collections and templates through the API: ordered items, private and public ones,
who may change them, templates checked against their node type, and bad input refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, problem, promote, sign_up
from tests.api.test_custom_nodes import create_node

Client = TestClient[Any]


def nodes_head(client: Client) -> int:
    return int(client.app.state.services.nodes.app.head_position())


def collection(client: Client, account: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/node-collections", json={"name": "Favourites", **body}, headers=account
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def collections(client: Client, account: dict[str, str], position: int, **params: Any) -> Any:
    response = client.get(
        f"{API}/node-collections",
        params={"limit": 500, **params},
        headers={**account, "A2N-Min-Position": str(position)},
    )
    assert response.status_code == 200, response.text
    return {row["id"]: row for row in response.json()["items"]}


def test_a_collection_keeps_its_nodes_in_order(client: Client, user: Account) -> None:
    mine = create_node(client, user)
    made = collection(client, user, items=["http_request", mine["name"], "set"])
    assert made["items"] == ["http_request", mine["id"], "set"]
    path = f"{API}/node-collections/{made['id']}/items"
    first = client.post(path, json={"nodeId": "noop", "position": 0}, headers=user)
    assert first.status_code == 200, first.text
    last = client.post(path, json={"nodeId": "code"}, headers=user).json()
    assert last["items"] == ["noop", "http_request", mine["id"], "set", "code"]
    gone = client.delete(f"{path}/{mine['name']}", headers=user).json()
    assert gone["items"] == ["noop", "http_request", "set", "code"]
    row = collections(client, user, gone["position"])[made["id"]]
    assert (row["items"], row["itemCount"], row["revision"]) == (gone["items"], 4, 4)
    assert row["visibility"] == "PRIVATE"

    problem(client.post(path, json={"nodeId": "set"}, headers=user), 409)
    problem(client.delete(f"{path}/wait", headers=user), 404)


def test_private_collections_are_their_owners(
    client: Client, owner: Account, user: Account
) -> None:
    private = collection(client, user)
    public = collection(client, user, visibility="PUBLIC", description="For all")
    other = sign_up(client)
    seen = collections(client, other, public["position"])
    assert public["id"] in seen
    assert private["id"] not in seen
    assert set(collections(client, user, public["position"], mine="true")) >= {
        private["id"],
        public["id"],
    }
    assert public["id"] not in collections(client, user, public["position"], mine="false")
    body = {"nodeId": "noop"}
    problem(
        client.post(f"{API}/node-collections/{public['id']}/items", json=body, headers=other), 403
    )
    problem(
        client.post(f"{API}/node-collections/{private['id']}/items", json=body, headers=other), 404
    )
    admin = promote(client, owner, sign_up(client))
    added = client.post(f"{API}/node-collections/{private['id']}/items", json=body, headers=admin)
    assert added.status_code == 200, added.text
    assert private["id"] in collections(client, admin, added.json()["position"])


def test_collections_hold_only_nodes_their_owner_sees(client: Client, user: Account) -> None:
    someone = sign_up(client)
    hidden = create_node(client, someone)
    before = nodes_head(client)
    response = client.post(
        f"{API}/node-collections",
        json={"name": "X", "items": ["noop", hidden["id"], "nope", "noop"]},
        headers=user,
    )
    pointers = {e["pointer"] for e in problem(response, 422)["errors"]}
    assert pointers == {"/items/1", "/items/2", "/items"}
    made = collection(client, user)
    added = client.post(
        f"{API}/node-collections/{made['id']}/items", json={"nodeId": hidden["id"]}, headers=user
    )
    assert [e["pointer"] for e in problem(added, 422)["errors"]] == ["/nodeId"]
    assert nodes_head(client) == before + 1


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": ""}, "/name"),
        ({"name": "x" * 256}, "/name"),
        ({"name": "X", "visibility": "SECRET"}, "/visibility"),
        ({"name": "X", "description": "a\x00b"}, "/description"),
    ],
)
def test_bad_collections_are_422(
    client: Client, user: Account, body: dict[str, Any], pointer: str
) -> None:
    before = nodes_head(client)
    response = client.post(f"{API}/node-collections", json=body, headers=user)
    assert pointer in [e["pointer"] for e in problem(response, 422)["errors"]]
    for malformed in ({"name": 1}, {"name": "X", "extra": 1}, {"name": "X", "items": "noop"}):
        problem(client.post(f"{API}/node-collections", json=malformed, headers=user), 422)
    made = collection(client, user)
    for item in ({"nodeId": "noop", "position": -1}, {"position": 1}, {"nodeId": 5}):
        response = client.post(
            f"{API}/node-collections/{made['id']}/items", json=item, headers=user
        )
        problem(response, 422)
    problem(
        client.post(
            f"{API}/node-collections/{uuid.uuid4()}/items", json={"nodeId": "noop"}, headers=user
        ),
        404,
    )
    # Of this account's requests only the good collection reached the log (a run of another
    # test still under way may add events of its own there meanwhile).
    app = client.app.state.services.nodes.app
    stored = app.recorder.select_notifications(before + 1, limit=1000)
    mine = [n for n in stored if user.user_id.encode() in n.state or n.originator_id == made["id"]]
    assert [str(n.originator_id) for n in mine] == [made["id"]]


def test_templates_are_checked_against_their_node_type(client: Client, user: Account) -> None:
    made = client.post(
        f"{API}/node-templates",
        json={
            "nodeType": "http_request",
            "name": "GitHub API",
            "config": {"url": "https://api.github.com/{{ $json.path }}", "method": "GET"},
            "tags": ["github"],
            "visibility": "PUBLIC",
        },
        headers=user,
    )
    assert made.status_code == 201, made.text
    template = made.json()
    assert (template["nodeDefinitionId"], template["nodeType"]) == ("http_request", "http_request")
    other = sign_up(client)
    listed = client.get(
        f"{API}/node-templates",
        params={"nodeId": "http_request", "q": "github"},
        headers={**other, "A2N-Min-Position": str(template["position"])},
    ).json()
    assert template["id"] in [row["id"] for row in listed["items"]]

    custom = create_node(client, user)
    client.post(f"{API}/nodes/{custom['id']}/publish", headers=user)
    pinned = f"{custom['name']}@1.0.0"
    own = client.post(
        f"{API}/node-templates",
        json={"nodeType": pinned, "name": "Hello", "config": {"greeting": "hi"}},
        headers=user,
    )
    assert own.status_code == 201, own.text
    assert own.json()["nodeDefinitionId"] == custom["id"]
    hidden = client.get(
        f"{API}/node-templates",
        params={"nodeId": custom["id"]},
        headers={**other, "A2N-Min-Position": str(own.json()["position"])},
    ).json()
    assert hidden["items"] == []  # a private template of a private node

    before = nodes_head(client)
    for body, pointers in (
        (
            {"nodeType": "http_request", "name": "X", "config": {"method": "FETCH"}},
            {"/config/method", "/config/url"},
        ),
        ({"nodeType": "http_request", "name": "X", "config": {"url": "{{ 1 +"}}, {"/config/url"}),
        ({"nodeType": pinned, "name": "X", "config": {}}, {"/config/greeting"}),
        ({"nodeType": custom["name"], "name": "X"}, {"/nodeType"}),
        ({"nodeType": "nope", "name": ""}, {"/nodeType", "/name"}),
        ({"nodeType": "noop", "name": "X", "tags": [""]}, {"/tags/0"}),
    ):
        response = client.post(
            f"{API}/node-templates",
            json=body,
            headers=user,
        )
        found = {e["pointer"] for e in problem(response, 422)["errors"]}
        assert found == pointers, (body, found)
    stranger = client.post(
        f"{API}/node-templates",
        json={"nodeType": pinned, "name": "X", "config": {"greeting": "hi"}},
        headers=other,
    )
    assert [e["pointer"] for e in problem(stranger, 422)["errors"]] == ["/nodeType"]
    assert nodes_head(client) == before


# -- changing and deleting ---------------------------------------------------------------------


def template(client: Client, account: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/node-templates",
        json={"nodeType": "http_request", "name": "Fetch", "config": {"url": "https://a.b/"}}
        | body,
        headers=account,
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def templates(client: Client, account: dict[str, str], position: int) -> dict[str, Any]:
    response = client.get(
        f"{API}/node-templates",
        params={"limit": 500},
        headers={**account, "A2N-Min-Position": str(position)},
    )
    assert response.status_code == 200, response.text
    return {row["id"]: row for row in response.json()["items"]}


def test_a_collection_is_renamed_reordered_and_deleted(client: Client, user: Account) -> None:
    mine = create_node(client, user)
    made = collection(client, user, items=["set", mine["name"], "code"])
    path = f"{API}/node-collections/{made['id']}"
    changed = client.patch(
        path,
        json={
            "name": "Daily tools",
            "description": None,
            "visibility": "PUBLIC",
            "items": ["code", "set", mine["name"]],
        },
        headers={**user, "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["visibility"]) == ("Daily tools", "PUBLIC")
    assert body["items"] == ["code", "set", mine["id"]]
    row = collections(client, user, body["position"])[made["id"]]
    assert (row["name"], row["items"], row["revision"]) == ("Daily tools", body["items"], 3)
    same = client.patch(path, json={"name": "Daily tools"}, headers=user).json()
    assert same["revision"] == 3  # nothing new to record

    deleted = client.delete(path, headers=user)
    assert deleted.status_code == 200, deleted.text
    assert made["id"] not in collections(client, user, deleted.json()["position"])
    problem(client.patch(path, json={"name": "Again"}, headers=user), 404)
    problem(client.delete(path, headers=user), 404)
    problem(client.post(f"{path}/items", json={"nodeId": "noop"}, headers=user), 404)


def test_only_owners_and_admins_change_or_delete_collections_and_templates(
    client: Client, user: Account, owner: Account
) -> None:
    other = sign_up(client)
    public = collection(client, user, visibility="PUBLIC")
    private = collection(client, user)
    shared = template(client, user, visibility="PUBLIC")
    before = nodes_head(client)
    for path in (
        f"{API}/node-collections/{public['id']}",
        f"{API}/node-templates/{shared['id']}",
    ):
        problem(client.patch(path, json={"name": "Mine"}, headers=other), 403)
        problem(client.delete(path, headers=other), 403)
    problem(
        client.patch(
            f"{API}/node-collections/{private['id']}", json={"name": "Mine"}, headers=other
        ),
        404,
    )
    problem(client.delete(f"{API}/node-collections/{private['id']}", headers=other), 404)
    assert nodes_head(client) == before

    admin = promote(client, owner, sign_up(client))
    renamed = client.patch(
        f"{API}/node-templates/{shared['id']}", json={"name": "Curated"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["userId"] == user.user_id
    gone = client.delete(f"{API}/node-collections/{private['id']}", headers=admin)
    assert gone.status_code == 200, gone.text


def test_a_template_is_changed_checked_and_deleted(client: Client, user: Account) -> None:
    made = template(client, user, tags=["web"])
    path = f"{API}/node-templates/{made['id']}"
    changed = client.patch(
        path,
        json={"config": {"url": "https://c.d/{{ $json.id }}"}, "tags": ["api"], "name": "Get"},
        headers=user,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["config"], body["tags"], body["name"], body["revision"]) == (
        {"url": "https://c.d/{{ $json.id }}"},
        ["api"],
        "Get",
        2,
    )
    row = templates(client, user, body["position"])[made["id"]]
    assert (row["config"], row["tags"], row["name"]) == (body["config"], ["api"], "Get")

    deleted = client.delete(path, headers=user)
    assert deleted.status_code == 200, deleted.text
    assert made["id"] not in templates(client, user, deleted.json()["position"])
    problem(client.patch(path, json={"name": "Again"}, headers=user), 404)


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"name": ""}, {"/name"}),
        ({"visibility": "SECRET"}, {"/visibility"}),
        ({"description": "a\x00b"}, {"/description"}),
        ({"items": ["set"]}, {"/items"}),
        ({"items": ["set", "set", "code"]}, {"/items"}),
        ({"items": ["set", "code", "noop"]}, {"/items"}),
    ],
)
def test_bad_collection_changes_are_422_and_record_nothing(
    client: Client, user: Account, body: dict[str, Any], pointers: set[str]
) -> None:
    made = collection(client, user, items=["set", "code"])
    before = nodes_head(client)
    response = client.patch(f"{API}/node-collections/{made['id']}", json=body, headers=user)
    assert {e["pointer"] for e in problem(response, 422)["errors"]} == pointers
    for malformed in ({"name": 1}, {"extra": 1}, {"items": "set"}, []):
        response = client.patch(
            f"{API}/node-collections/{made['id']}", json=malformed, headers=user
        )
        problem(response, 422)
    assert nodes_head(client) == before


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"config": {"method": "FETCH"}}, {"/config/method", "/config/url"}),
        ({"config": {"url": "{{ 1 +"}}, {"/config/url"}),
        ({"tags": [""]}, {"/tags/0"}),
        ({"name": "", "visibility": "x"}, {"/name", "/visibility"}),
    ],
)
def test_bad_template_changes_are_422_and_record_nothing(
    client: Client, user: Account, body: dict[str, Any], pointers: set[str]
) -> None:
    made = template(client, user)
    before = nodes_head(client)
    response = client.patch(f"{API}/node-templates/{made['id']}", json=body, headers=user)
    assert {e["pointer"] for e in problem(response, 422)["errors"]} == pointers
    for malformed in ({"nodeType": "set"}, {"config": []}, {"tags": "x"}):
        response = client.patch(f"{API}/node-templates/{made['id']}", json=malformed, headers=user)
        problem(response, 422)
    problem(client.patch(f"{API}/node-templates/{uuid.uuid4()}", json={}, headers=user), 404)
    assert nodes_head(client) == before
