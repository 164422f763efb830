"""Workflow versions over HTTP: list, show, publish, revert, diff, and history that replays."""

from __future__ import annotations

import copy
import random
from typing import Any

import jsonpatch
from litestar.testing import TestClient

from tests.api.helpers import API, GRAPH, Account, create, event_count, read, sign_up

Client = TestClient[Any]

SMALLER = {"nodes": [GRAPH["nodes"][0]], "connections": []}
SUMMARY_FIELDS = {
    "id",
    "workflowId",
    "version",
    "changeLog",
    "isPublished",
    "publishedAt",
    "createdAt",
    "createdBy",
}


def with_versions(client: Client, user: Account, count: int) -> tuple[str, int]:
    """A workflow with versions 1..count (alternating GRAPH and SMALLER); its id and the
    position of its last change."""
    made = create(client, user, definition=GRAPH)
    position = made["position"]
    for number in range(2, count + 1):
        body = {**(SMALLER if number % 2 == 0 else GRAPH), "changeMessage": f"edit {number}"}
        response = client.put(f"{API}/workflows/{made['id']}/definition", json=body, headers=user)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == number
        position = response.json()["position"]
    return made["id"], position


def command(client: Client, user: Account, path: str, **kwargs: Any) -> dict[str, Any]:
    response = client.post(f"{API}{path}", headers={**user, **kwargs.pop("headers", {})}, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == f'"{body["revision"]}"'
    return body


def test_every_version_replays_as_the_version_list_shows_it(client: Client, user: Account) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    changes: list[tuple[str, str, Any]] = [
        ("PUT", "/definition", {**SMALLER, "changeMessage": "drop set"}),
        ("PATCH", "", {"variables": {"region": "eu"}}),
        ("PUT", "/definition", {**GRAPH, "variables": {"region": "us"}}),
        ("POST", "/versions/1/revert", None),
        ("PATCH", "", {"settings": {"timeout": 30}, "name": "Renamed"}),
    ]
    position = 0
    for method, suffix, body in changes:
        response = client.request(method, f"{API}/workflows/{wid}{suffix}", json=body, headers=user)
        assert response.status_code == 200, response.text
        position = response.json()["position"]
    assert response.json()["version"] == 6

    listed = read(client, user, f"/workflows/{wid}/versions", position)["items"]
    assert [v["version"] for v in listed] == [6, 5, 4, 3, 2, 1]
    for number in range(1, 7):
        replayed = read(client, user, f"/workflows/{wid}", position, version=number)
        shown = read(client, user, f"/workflows/{wid}/versions/{number}", position)
        assert replayed["version"] == shown["version"] == number
        assert replayed["definition"] == shown["definition"]
    assert shown["definition"]["settings"] == {"timeout": 30}
    assert listed[1]["changeLog"] == "Reverted to version 1"
    assert (
        read(client, user, f"/workflows/{wid}/versions/5", position)["definition"]
        == read(client, user, f"/workflows/{wid}/versions/1", position)["definition"]
    )


def test_the_list_is_newest_first_paginated_and_without_definitions(
    client: Client, user: Account
) -> None:
    wid, position = with_versions(client, user, 5)
    pages = [read(client, user, f"/workflows/{wid}/versions", position, limit=2)]
    while pages[-1]["nextCursor"]:
        cursor = pages[-1]["nextCursor"]
        pages.append(
            read(client, user, f"/workflows/{wid}/versions", position, limit=2, cursor=cursor)
        )
    assert [[v["version"] for v in page["items"]] for page in pages] == [[5, 4], [3, 2], [1]]
    items = [v for page in pages for v in page["items"]]
    assert all(set(v) == SUMMARY_FIELDS for v in items)
    assert [v["changeLog"] for v in items] == ["edit 5", "edit 4", "edit 3", "edit 2", None]
    assert {(v["workflowId"], v["createdBy"], v["isPublished"]) for v in items} == {
        (wid, user.user_id, False)
    }

    one = read(client, user, f"/workflows/{wid}/versions/2", position)
    assert set(one) == SUMMARY_FIELDS | {"definition"}
    assert one["changeLog"] == "edit 2"
    assert [n["id"] for n in one["definition"]["nodes"]] == ["hook"]


def test_publishing_marks_one_version_and_republishing_changes_nothing(
    client: Client, user: Account
) -> None:
    wid, _ = with_versions(client, user, 3)
    first = command(
        client, user, f"/workflows/{wid}/versions/2/publish", headers={"If-Match": '"3"'}
    )
    assert (first["publishedVersion"], first["version"], first["revision"]) == (2, 3, 4)
    assert first["publishedAt"] is not None
    shown = read(client, user, f"/workflows/{wid}", first["position"])
    assert (shown["publishedVersion"], shown["publishedAt"]) == (2, first["publishedAt"])

    second = command(client, user, f"/workflows/{wid}/versions/3/publish")
    listed = read(client, user, f"/workflows/{wid}/versions", second["position"])["items"]
    assert [(v["version"], v["isPublished"]) for v in listed] == [(3, True), (2, False), (1, False)]
    assert [v["publishedAt"] for v in listed] == [second["publishedAt"], None, None]

    before = event_count(client)
    again = command(client, user, f"/workflows/{wid}/versions/3/publish")
    assert (again["revision"], again["publishedAt"]) == (second["revision"], second["publishedAt"])
    assert event_count(client) == before


def test_a_stale_if_match_on_publish_or_revert_is_412_and_changes_nothing(
    client: Client, user: Account
) -> None:
    wid, _ = with_versions(client, user, 2)
    before = event_count(client)
    for action in ("publish", "revert"):
        response = client.post(
            f"{API}/workflows/{wid}/versions/1/{action}", headers={**user, "If-Match": '"1"'}
        )
        assert response.status_code == 412, response.text
        assert response.json()["currentRevision"] == 2
    assert event_count(client) == before


def test_an_archived_workflow_refuses_publish_and_revert(client: Client, user: Account) -> None:
    wid, _ = with_versions(client, user, 2)
    command(client, user, f"/workflows/{wid}/archive")
    before = event_count(client)
    for action in ("publish", "revert"):
        response = client.post(f"{API}/workflows/{wid}/versions/1/{action}", headers=user)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert event_count(client) == before


def test_reverting_saves_the_old_definition_as_the_newest_version(
    client: Client, user: Account
) -> None:
    wid, _ = with_versions(client, user, 2)
    reverted = command(
        client, user, f"/workflows/{wid}/versions/1/revert", headers={"If-Match": '"2"'}
    )
    assert reverted["version"] == 3
    again = command(
        client, user, f"/workflows/{wid}/versions/2/revert", json={"changeMessage": "undo revert"}
    )
    assert again["version"] == 4
    listed = read(client, user, f"/workflows/{wid}/versions", again["position"])["items"]
    assert [v["changeLog"] for v in listed[:2]] == ["undo revert", "Reverted to version 1"]

    def definition(number: int) -> Any:
        return read(client, user, f"/workflows/{wid}/versions/{number}", again["position"])[
            "definition"
        ]

    assert definition(3) == definition(1) == reverted["definition"]
    assert definition(4) == definition(2) == again["definition"]

    # Reverting to what the workflow already is records nothing.
    same = command(client, user, f"/workflows/{wid}/versions/2/revert")
    assert (same["version"], same["revision"]) == (4, again["revision"])


def test_the_diff_is_a_json_patch_from_the_other_version(client: Client, user: Account) -> None:
    wid, position = with_versions(client, user, 2)
    diff = read(client, user, f"/workflows/{wid}/versions/2/diff", position, against=1)
    assert (diff["version"], diff["against"]) == (2, 1)
    v1 = read(client, user, f"/workflows/{wid}/versions/1", position)["definition"]
    v2 = read(client, user, f"/workflows/{wid}/versions/2", position)["definition"]
    assert jsonpatch.apply_patch(v1, diff["patch"]) == v2
    assert {op["op"] for op in diff["patch"]} == {"remove"}
    back = read(client, user, f"/workflows/{wid}/versions/1/diff", position, against=2)["patch"]
    assert jsonpatch.apply_patch(v2, back) == v1
    assert (
        read(client, user, f"/workflows/{wid}/versions/2/diff", position, against=2)["patch"] == []
    )


def test_diffs_between_any_two_of_many_random_edits_apply(client: Client, user: Account) -> None:
    """Property-style: random edits of every kind, then every pair of versions (m, n): applying
    the diff of n against m to m's definition gives n's."""
    rng = random.Random(20261130)
    wid = create(client, user, definition=START)["id"]
    current = copy.deepcopy(START)
    position = 0
    for _ in range(14):
        current = random_edit(current, rng)
        response = client.put(f"{API}/workflows/{wid}/definition", json=current, headers=user)
        assert response.status_code == 200, response.text
        position = response.json()["position"]
    latest = response.json()["version"]
    assert latest == 15

    definitions = {
        n: read(client, user, f"/workflows/{wid}/versions/{n}", position)["definition"]
        for n in range(1, latest + 1)
    }
    operations: set[str] = set()
    for m, source in definitions.items():
        for n, target in definitions.items():
            patch = read(client, user, f"/workflows/{wid}/versions/{n}/diff", position, against=m)
            assert jsonpatch.apply_patch(source, patch["patch"]) == target, (m, n)
            operations |= {op["op"] for op in patch["patch"]}
    assert operations >= {"add", "remove", "replace", "move"}


START: dict[str, Any] = {
    "nodes": [
        {"id": "n1", "type": "noop"},
        {"id": "n2", "type": "set", "config": {"fields": {"a": 1, "list": [1, 2, 3]}}},
        {"id": "n3", "type": "set", "name": "Three", "config": {"fields": {"x/y": "~0"}}},
    ],
    "connections": [{"source": "n1", "target": "n2"}],
    "variables": {"env": "test"},
}


EDITS = ("add",) * 3 + ("connect",) * 3 + ("config", "shuffle") * 2
EDITS += ("remove", "rename", "disconnect", "vars")
"""Edit kinds, weighted so the graph grows while it changes."""


def random_edit(definition: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`definition` changed by one random edit (never a no-op) that keeps it valid: names end in
    the node's id, and connections go from a smaller id to a larger one (so never in a cycle)."""
    while True:
        edited = copy.deepcopy(definition)
        nodes, connections = edited["nodes"], edited.setdefault("connections", [])
        kind = rng.choice(EDITS)
        if kind == "add":
            nodes.insert(
                rng.randrange(len(nodes) + 1),
                {
                    "id": f"n{rng.randrange(10, 99)}",
                    "type": "set",
                    "config": {"fields": {"k": rng.random()}},
                },
            )
        elif kind == "remove" and len(nodes) > 1:
            gone = nodes.pop(rng.randrange(len(nodes)))["id"]
            edited["connections"] = [
                c for c in connections if gone not in (c["source"], c["target"])
            ]
        elif kind == "config":
            setters = [n for n in nodes if n["type"] == "set"]
            if setters:
                fields = rng.choice(setters)["config"]["fields"]
                key = rng.choice(["a", "b/c", "d~e", "list", "nested"])
                fields[key] = rng.choice(
                    [None, rng.randrange(100), "text", [1, {"z": 2}], {"q": [3]}]
                )
        elif kind == "rename":
            node = rng.choice(nodes)
            node["name"] = f"{rng.choice(['First', 'Second', 'Ünïcode ✓'])} {node['id']}"
        elif kind == "connect" and len(nodes) > 1:
            source, target = sorted(rng.sample([n["id"] for n in nodes], 2))
            link = {"source": source, "target": target}
            if link not in connections:
                connections.append(link)
        elif kind == "disconnect" and connections:
            connections.pop(rng.randrange(len(connections)))
        elif kind == "shuffle":
            rng.shuffle(nodes)
        elif kind == "vars":
            edited["variables"] = {"env": rng.choice(["test", "prod"]), "n": rng.randrange(5)}
        if len({n["id"] for n in nodes}) == len(nodes) and edited != definition:
            return edited


def test_unknown_versions_and_other_users_workflows_are_404_and_change_nothing(
    client: Client, user: Account
) -> None:
    wid, position = with_versions(client, user, 2)
    read(client, user, f"/workflows/{wid}/versions", position)
    stranger = sign_up(client)
    before = event_count(client)
    for caller, method, path in [
        (user, "GET", "/versions/3"),
        (user, "GET", "/versions/2147483647"),
        (user, "GET", "/versions/3/diff?against=1"),
        (user, "GET", "/versions/1/diff?against=3"),
        (user, "POST", "/versions/3/publish"),
        (user, "POST", "/versions/3/revert"),
        (stranger, "GET", "/versions"),
        (stranger, "GET", "/versions/1"),
        (stranger, "GET", "/versions/2/diff?against=1"),
        (stranger, "POST", "/versions/1/publish"),
        (stranger, "POST", "/versions/1/revert"),
    ]:
        response = client.request(method, f"{API}/workflows/{wid}{path}", headers=caller)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert event_count(client) == before
