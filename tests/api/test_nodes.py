"""Node catalog routes: every built-in node type with its schemas, filters, pages, auth, and
hostile input answered with problems that change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from domain.workflows.nodes import BUILT_IN_NODES
from tests.api.helpers import API, Account, event_count, problem

Client = TestClient[Any]
ALL_NAMES = sorted(t.name for t in BUILT_IN_NODES)


def names(client: Client, user: dict[str, str], **params: Any) -> list[str]:
    """Names of the node types listed; built-in ones unless `isBuiltIn` says otherwise (other
    tests add custom nodes to the same database)."""
    query = {"limit": 500, "isBuiltIn": "true", **params}
    response = client.get(f"{API}/nodes", params=query, headers=user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nextCursor"] is None
    return [item["name"] for item in body["items"]]


def test_the_catalog_lists_every_built_in_node_type_by_name(
    client: Client, user: dict[str, str]
) -> None:
    response = client.get(f"{API}/nodes", params={"limit": 500, "isBuiltIn": "true"}, headers=user)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["name"] for item in items] == ALL_NAMES
    http = next(item for item in items if item["name"] == "http_request")
    assert {k: http[k] for k in ("id", "displayName", "type", "category", "isBuiltIn")} == {
        "id": "http_request",
        "displayName": "HTTP Request",
        "type": "ACTION",
        "category": "http",
        "isBuiltIn": True,
    }
    assert (http["isActive"], http["isPublic"], http["createdBy"]) == (True, True, None)
    assert http["metadata"] == {
        "handles": {"inputs": ["input"], "outputs": ["output"]},
        "isTrigger": False,
    }
    assert "settingsSchema" not in http  # schemas come with one node


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"type": "TRIGGER"},
            ["event_trigger", "manual_trigger", "schedule_trigger", "webhook_trigger"],
        ),
        ({"category": "http"}, ["http_request", "respond_to_webhook"]),
        ({"q": "HTTP"}, ["http_request", "respond_to_webhook", "webhook_trigger"]),
        ({"q": "merge", "type": "FLOW"}, ["merge"]),
        ({"q": "merge", "type": "ACTION"}, []),
        ({"q": "100%_"}, []),
        ({"isBuiltIn": "true", "type": "TRANSFORM"}, ["code", "set"]),
        ({"isBuiltIn": "false", "type": "TRIGGER"}, []),  # custom nodes never start runs
    ],
)
def test_filters(
    client: Client, user: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    assert names(client, user, **params) == expected


def test_pages_follow_the_cursor_to_the_end(client: Client, user: dict[str, str]) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 4, "isBuiltIn": "true"}
    while True:
        response = client.get(f"{API}/nodes", params=params, headers=user)
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 4
        seen += [item["name"] for item in body["items"]]
        if body["nextCursor"] is None:
            break
        params["cursor"] = body["nextCursor"]
    assert seen == ALL_NAMES


def test_one_node_carries_its_schemas_and_handles(client: Client, user: dict[str, str]) -> None:
    for node_type in BUILT_IN_NODES:
        response = client.get(f"{API}/nodes/{node_type.name}", headers=user)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["settingsSchema"] == node_type.config_schema
        assert body["inputSchema"] == node_type.input_schema
        assert body["outputSchema"] == node_type.output_schema
        assert body["type"] == node_type.kind.value
        assert body["metadata"]["isTrigger"] is node_type.is_trigger
    switch = client.get(f"{API}/nodes/switch", headers=user).json()
    assert switch["metadata"]["handles"] == {
        "inputs": ["input"],
        "outputs": [],
        "caseOutputs": {"perEntryOf": "rules", "plus": {"fallback": "fallback"}},
    }
    assert switch["implementation"] == {"runtime": "BUILT_IN", "handler": "switch"}
    http = client.get(f"{API}/nodes/http_request", headers=user).json()
    assert (http["timeout"], http["executionMode"]) == (30000, "SYNC")
    assert http["credentials"] == {"required": False, "types": ["API_KEY", "OAUTH", "BASIC_AUTH"]}


def test_the_catalog_needs_a_caller_with_read_scope(client: Client, user: Account) -> None:
    problem(client.get(f"{API}/nodes"), 401)
    problem(client.get(f"{API}/nodes/noop"), 401)
    reader = client.post(
        f"{API}/me/api-keys", headers=user, json={"name": "r", "scopes": ["workflows:read"]}
    ).json()
    assert client.get(f"{API}/nodes/noop", headers={"X-API-Key": reader["key"]}).status_code == 200
    runner = client.post(
        f"{API}/me/api-keys", headers=user, json={"name": "x", "scopes": ["executions:run"]}
    ).json()
    problem(client.get(f"{API}/nodes", headers={"X-API-Key": runner["key"]}), 403)


@pytest.fixture
def unchanged(client: Client, user: dict[str, str]) -> Any:
    """Hostile requests must leave the catalog and the event store as they were."""
    before = (
        client.get(f"{API}/nodes", params={"limit": 500}, headers=user).json(),
        event_count(client),
    )
    yield
    after = (
        client.get(f"{API}/nodes", params={"limit": 500}, headers=user).json(),
        event_count(client),
    )
    assert after == before


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "bad_id",
    [
        "nope",
        "HTTP_REQUEST",
        "..%2F..%2Fetc%2Fpasswd",
        "a%00b",
        "x" * 5000,
        "00000000-0000-7000-8000-000000000000",
    ],
    ids=["unknown", "uppercase", "traversal", "nul", "huge", "unknown-uuid"],
)
def test_unknown_or_hostile_ids_are_404(client: Client, user: dict[str, str], bad_id: str) -> None:
    problem(client.get(f"{API}/nodes/{bad_id}", headers=user), 404)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"type": "GADGET"}, "type"),
        ({"type": "trigger"}, "type"),
        ({"isBuiltIn": "maybe"}, "isBuiltIn"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "x" * 600}, "cursor"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "line\nbreak"}, "q"),
        ({"category": "c" * 101}, "category"),
        ({"category": "\x7f"}, "category"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(
    client: Client, user: dict[str, str], params: dict[str, str], parameter: str
) -> None:
    body = problem(client.get(f"{API}/nodes", params=params, headers=user), 400)
    assert [e["parameter"] for e in body["errors"]] == [parameter]
