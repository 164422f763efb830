"""Custom node types through the API: create, versions, publish, visibility, deprecation, who may
do what, and bad input answered with problems that change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, problem, promote, sign_up

Client = TestClient[Any]
WEBHOOK = {"runtime": "WEBHOOK", "url": "http://127.0.0.1:9/greet"}
GREETING_CONFIG = {
    "type": "object",
    "properties": {"greeting": {"type": "string", "minLength": 1}},
    "required": ["greeting"],
    "additionalProperties": False,
}


def node_name(word: str = "greet") -> str:
    """A type name no other test uses (every test shares one database)."""
    return f"t{uuid.uuid4().hex[:10]}.{word}"


def post_node(client: Client, account: dict[str, str], body: dict[str, Any]) -> Any:
    """POST /nodes with `body` over a valid WEBHOOK node of a fresh name."""
    return client.post(
        f"{API}/nodes",
        json={
            "name": node_name(),
            "type": "ACTION",
            "displayName": "Greet",
            "implementation": WEBHOOK,
            "settingsSchema": GREETING_CONFIG,
            **body,
        },
        headers=account,
    )


def create_node(client: Client, account: dict[str, str], **body: Any) -> dict[str, Any]:
    response = post_node(client, account, body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def command(
    client: Client, account: dict[str, str], method: str, path: str, body: Any = None
) -> dict[str, Any]:
    response = client.request(method, f"{API}{path}", json=body, headers=account)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def seen(
    client: Client, account: dict[str, str], reference: str, position: int, **params: Any
) -> Any:
    """GET /nodes/{reference} once the nodes projection reached `position`."""
    return client.get(
        f"{API}/nodes/{reference}",
        params=params,
        headers={**account, "A2N-Min-Position": str(position)},
    )


def listed(client: Client, account: dict[str, str], position: int, **params: Any) -> list[str]:
    response = client.get(
        f"{API}/nodes",
        params={"limit": 500, "isBuiltIn": "false", **params},
        headers={**account, "A2N-Min-Position": str(position)},
    )
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def nodes_head(client: Client) -> int:
    return int(client.app.state.services.nodes.app.head_position())


def refused_creation(
    client: Client, account: dict[str, str], body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The errors of a 422 to creating a node with `body` (over defaults); nothing recorded."""
    before = nodes_head(client)
    response = post_node(client, account, body)
    errors: list[dict[str, Any]] = problem(response, 422)["errors"]
    assert nodes_head(client) == before
    return errors


def test_a_new_node_is_a_private_draft_of_its_author(client: Client, user: Account) -> None:
    made = create_node(
        client,
        user,
        description="Says hello",
        category="greetings",
        tags=["hello", "hello", " demo "],
        icon="hand",
        color="#1f77b4",
        documentation="Set `greeting`.",
    )
    assert made["type"] == "ACTION"
    assert (made["visibility"], made["isActive"], made["latestVersion"]) == (
        "PRIVATE",
        True,
        "1.0.0",
    )
    assert made["tags"] == ["hello", "demo"]
    assert made["versions"] == [
        {
            "version": "1.0.0",
            "publishedAt": None,
            "changeLog": None,
            "implementation": {**WEBHOOK, "timeoutMs": 30000, "retries": 2},
        }
    ]
    assert made["createdBy"] == user.user_id

    shown = seen(client, user, made["id"], made["position"])
    assert shown.status_code == 200, shown.text
    assert shown.headers["etag"] == f'"{made["revision"]}"'
    row = shown.json()
    assert (row["name"], row["isBuiltIn"], row["isPublic"], row["publishedAt"]) == (
        made["name"],
        False,
        False,
        None,
    )
    assert row["settingsSchema"] == GREETING_CONFIG
    assert row["inputSchema"]["type"] == "array"
    assert row["metadata"] == {
        "handles": {"inputs": ["input"], "outputs": ["output"]},
        "isTrigger": False,
    }
    assert [v["version"] for v in row["versions"]] == ["1.0.0"]
    # By type name too.
    assert seen(client, user, made["name"], made["position"]).json()["id"] == made["id"]
    assert made["name"] in listed(client, user, made["position"])

    stranger = sign_up(client)
    assert seen(client, stranger, made["id"], made["position"]).status_code == 404
    assert made["name"] not in listed(client, stranger, made["position"])


def test_everyone_sees_a_public_node_once_a_version_is_published(
    client: Client, user: Account
) -> None:
    stranger = sign_up(client)
    made = create_node(client, user, visibility="PUBLIC")
    assert seen(client, stranger, made["id"], made["position"]).status_code == 404

    published = command(client, user, "POST", f"/nodes/{made['id']}/publish")
    assert published["versions"][0]["publishedAt"] is not None
    row = seen(client, stranger, made["id"], published["position"]).json()
    assert (row["isPublic"], row["version"]) == (True, "1.0.0")
    assert row["publishedAt"] is not None
    assert made["name"] in listed(client, stranger, published["position"])

    hidden = command(client, user, "PATCH", f"/nodes/{made['id']}", {"visibility": "PRIVATE"})
    assert seen(client, stranger, made["id"], hidden["position"]).status_code == 404
    assert made["name"] not in listed(client, stranger, hidden["position"])


def test_a_new_version_leaves_the_published_one_as_it_was(client: Client, user: Account) -> None:
    made = create_node(client, user, visibility="PUBLIC")
    command(client, user, "POST", f"/nodes/{made['id']}/publish", {"version": "1.0.0"})
    wider = {**GREETING_CONFIG, "properties": {"greeting": {"type": "string"}, "loud": {}}}
    added = command(
        client,
        user,
        "PATCH",
        f"/nodes/{made['id']}",
        {"version": "1.1.0", "settingsSchema": wider, "changeLog": "Adds loud"},
    )
    assert [v["version"] for v in added["versions"]] == ["1.0.0", "1.1.0"]
    assert added["versions"][1]["implementation"] == added["versions"][0]["implementation"]
    assert added["latestVersion"] == "1.1.0"

    # The node shows its published version until 1.1.0 is published; others see only that one.
    stranger = sign_up(client)
    row = seen(client, stranger, made["id"], added["position"]).json()
    assert (row["version"], row["settingsSchema"]) == ("1.0.0", GREETING_CONFIG)
    assert [v["version"] for v in row["versions"]] == ["1.0.0"]
    mine = seen(client, user, made["id"], added["position"]).json()
    assert [(v["version"], v["changeLog"]) for v in mine["versions"]] == [
        ("1.0.0", None),
        ("1.1.0", "Adds loud"),
    ]
    draft = seen(client, user, made["id"], added["position"], version="1.1.0").json()
    assert (draft["version"], draft["settingsSchema"]) == ("1.1.0", wider)
    assert seen(client, stranger, made["id"], added["position"], version="1.1.0").status_code == 404

    published = command(client, user, "POST", f"/nodes/{made['id']}/publish")
    row = seen(client, stranger, made["id"], published["position"]).json()
    assert (row["version"], row["settingsSchema"]) == ("1.1.0", wider)
    old = seen(client, stranger, made["id"], published["position"], version="1.0.0").json()
    assert (old["version"], old["settingsSchema"]) == ("1.0.0", GREETING_CONFIG)

    for version, message in (("1.1.0", "exists already"), ("1.0.5", "must be higher")):
        refused = client.patch(
            f"{API}/nodes/{made['id']}",
            json={"version": version, "outputs": ["a", "b"]},
            headers=user,
        )
        assert message in problem(refused, 422)["errors"][0]["message"]


def test_only_the_author_and_admins_change_a_node(
    client: Client, owner: Account, user: Account
) -> None:
    made = create_node(client, user, visibility="PUBLIC")
    private = create_node(client, user)
    command(client, user, "POST", f"/nodes/{made['id']}/publish")
    stranger = sign_up(client)
    for path, body in (
        (f"/nodes/{made['id']}", {"displayName": "Mine now"}),
        (f"/nodes/{made['id']}/publish", None),
        (f"/nodes/{made['id']}/deprecate", None),
    ):
        method = "PATCH" if path.endswith(made["id"]) else "POST"
        response = client.request(method, f"{API}{path}", json=body, headers=stranger)
        problem(response, 403)
        hidden = path.replace(made["id"], private["id"])
        problem(client.request(method, f"{API}{hidden}", json=body, headers=stranger), 404)

    admin = promote(client, owner, sign_up(client))
    renamed = command(client, admin, "PATCH", f"/nodes/{private['id']}", {"displayName": "Hi"})
    assert renamed["displayName"] == "Hi"
    row = seen(client, admin, private["id"], renamed["position"])
    assert row.status_code == 200
    assert row.json()["displayName"] == "Hi"
    assert private["name"] in listed(client, admin, renamed["position"])


def test_a_deprecated_node_names_its_replacement_and_takes_no_more_versions(
    client: Client, user: Account
) -> None:
    old = create_node(client, user, visibility="PUBLIC")
    new = create_node(client, user, visibility="PUBLIC")
    command(client, user, "POST", f"/nodes/{old['id']}/publish")
    command(client, user, "POST", f"/nodes/{new['id']}/publish")
    retired = command(
        client,
        user,
        "POST",
        f"/nodes/{old['id']}/deprecate",
        {"replacement": new["name"], "reason": "Use the new one"},
    )
    assert (retired["isActive"], retired["replacedBy"]) == (False, new["name"])
    row = seen(client, user, old["id"], retired["position"]).json()
    assert (row["isActive"], row["replacedBy"], row["deprecationReason"]) == (
        False,
        new["name"],
        "Use the new one",
    )
    assert row["deprecatedAt"] is not None
    names = listed(client, user, retired["position"])
    assert old["name"] not in names
    assert new["name"] in names

    for path, body in (
        (f"/nodes/{old['id']}/publish", None),
        (f"/nodes/{old['id']}/deprecate", None),
    ):
        problem(client.post(f"{API}{path}", json=body, headers=user), 409)
    again = client.patch(
        f"{API}/nodes/{old['id']}", json={"version": "2.0.0", "outputs": ["x"]}, headers=user
    )
    problem(again, 409)
    # Details may still change (the documentation may point at the replacement).
    command(client, user, "PATCH", f"/nodes/{old['id']}", {"documentation": "Moved."})

    other = create_node(client, user)
    for replacement in (old["name"], "nobody.here", "not a type", other["name"]):
        body = {"replacement": replacement}
        refused = client.post(f"{API}/nodes/{new['id']}/deprecate", json=body, headers=user)
        if replacement == other["name"]:
            assert refused.status_code == 200  # the author's own private node will do
        else:
            assert problem(refused, 422)["errors"][0]["pointer"] == "/replacement"
    assert command(client, user, "POST", f"/nodes/{other['id']}/deprecate", {})["isActive"] is False


def test_built_in_replacements_and_unknown_versions(client: Client, user: Account) -> None:
    made = create_node(client, user)
    problem(
        client.post(f"{API}/nodes/{made['id']}/publish", json={"version": "9.9.9"}, headers=user),
        404,
    )
    done = command(client, user, "POST", f"/nodes/{made['id']}/deprecate", {"replacement": "noop"})
    assert done["replacedBy"] == "noop"


def test_a_type_name_belongs_to_one_node(client: Client, user: Account) -> None:
    name = node_name()
    create_node(client, user, name=name)
    before = nodes_head(client)
    again = client.post(
        f"{API}/nodes",
        json={"name": name, "type": "ACTION", "displayName": "Again", "implementation": WEBHOOK},
        headers=sign_up(client),
    )
    assert "exists already" in problem(again, 409)["detail"]
    assert nodes_head(client) == before


def test_stale_if_match_is_412(client: Client, user: Account) -> None:
    made = create_node(client, user)
    changed = command(client, user, "PATCH", f"/nodes/{made['id']}", {"description": "One"})
    stale = client.patch(
        f"{API}/nodes/{made['id']}",
        json={"description": "Two"},
        headers={**user, "If-Match": f'"{made["revision"]}"'},
    )
    problem(stale, 412)
    fresh = client.patch(
        f"{API}/nodes/{made['id']}",
        json={"description": "Two"},
        headers={**user, "If-Match": f'"{changed["revision"]}"'},
    )
    assert fresh.status_code == 200, fresh.text


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"name": "greet"}, "/name"),
    ({"name": "Acme.Greet"}, "/name"),
    ({"type": "TRIGGER"}, "/type"),
    ({"version": "1.0"}, "/version"),
    ({"version": "01.0.0"}, "/version"),
    ({"displayName": "  "}, "/displayName"),
    ({"visibility": "SECRET"}, "/visibility"),
    ({"color": "red"}, "/color"),
    ({"tags": [""]}, "/tags/0"),
    ({"settingsSchema": {"type": "nope"}}, "/settingsSchema/type"),
    ({"inputSchema": {"minLength": -1}}, "/inputSchema/minLength"),
    ({"outputSchema": {"$ref": "https://example.com/schema.json"}}, "/outputSchema/$ref"),
    ({"settingsSchema": {"items": {"$ref": "file:///etc/passwd"}}}, "/settingsSchema/items/$ref"),
    ({"outputs": []}, "/outputs"),
    ({"outputs": ["a", "a"]}, "/outputs"),
    ({"timeout": 0}, "/timeout"),
    ({"executionMode": "FAST"}, "/executionMode"),
    ({"implementation": {}}, "/implementation/runtime"),
    ({"implementation": {"runtime": "RUST"}}, "/implementation/runtime"),
    ({"implementation": {"runtime": "PYTHON"}}, "/implementation/entryPoint"),
    ({"implementation": {"runtime": "DOCKER", "image": "UPPER CASE"}}, "/implementation/image"),
    ({"implementation": {"runtime": "DOCKER", "image": "acme//greet"}}, "/implementation/image"),
    ({"implementation": {"runtime": "DOCKER", "image": "acme/greet:"}}, "/implementation/image"),
    ({"implementation": {"runtime": "DOCKER", "image": "-acme"}}, "/implementation/image"),
    ({"implementation": {"runtime": "DOCKER"}}, "/implementation/image"),
    (
        {"implementation": {"runtime": "DOCKER", "image": "acme/greet", "privileged": True}},
        "/implementation/privileged",
    ),
    ({"implementation": {**WEBHOOK, "url": "ftp://x/y"}}, "/implementation/url"),
    ({"implementation": {**WEBHOOK, "url": "http://u:p@host/"}}, "/implementation/url"),
    ({"implementation": {**WEBHOOK, "retries": 9}}, "/implementation/retries"),
    ({"implementation": {**WEBHOOK, "secret": "s"}}, "/implementation/secret"),
    ({"description": "a\x00b"}, "/description"),
]


@pytest.mark.parametrize(("body", "pointer"), BAD_CREATES)
def test_bad_node_definitions_are_422_and_record_nothing(
    client: Client, user: Account, body: dict[str, Any], pointer: str
) -> None:
    errors = refused_creation(client, user, body)
    assert pointer in [e["pointer"] for e in errors], errors


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": node_name(), "type": "ACTION", "displayName": "X"}, 422),  # no implementation
        ({"name": 5, "type": "ACTION", "displayName": "X", "implementation": WEBHOOK}, 422),
        ({"unknown": 1}, 422),
        ([], 422),
    ],
)
def test_malformed_bodies_are_refused(
    client: Client, user: Account, body: Any, status: int
) -> None:
    before = nodes_head(client)
    problem(client.post(f"{API}/nodes", json=body, headers=user), status)
    problem(
        client.post(
            f"{API}/nodes",
            content=b"{not json",
            headers={**user, "Content-Type": "application/json"},
        ),
        400,
    )
    assert nodes_head(client) == before


def test_bad_changes_are_422_and_record_nothing(client: Client, user: Account) -> None:
    made = create_node(client, user)
    before = nodes_head(client)
    for body, pointer in (
        ({"settingsSchema": {"type": "object"}}, "/version"),
        ({"displayName": ""}, "/displayName"),
        ({"displayName": "Fine", "version": "2.0.0", "timeout": -1}, "/timeout"),
        ({"name": "other.name"}, "/name"),
        ({"type": "FLOW"}, "/type"),
    ):
        response = client.patch(f"{API}/nodes/{made['id']}", json=body, headers=user)
        errors = problem(response, 422)["errors"]
        assert pointer in [e["pointer"] for e in errors], errors
    problem(
        client.post(f"{API}/nodes/{made['id']}/publish", json={"version": 1}, headers=user), 422
    )
    problem(
        client.post(
            f"{API}/nodes/{made['id']}/deprecate", json={"reason": "x" * 2001}, headers=user
        ),
        422,
    )
    for missing in (str(uuid.uuid4()), "no.such_node", "not-a-node"):
        problem(client.patch(f"{API}/nodes/{missing}", json={"icon": "x"}, headers=user), 404)
    assert nodes_head(client) == before
