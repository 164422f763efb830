"""Malformed or hostile input to every workflow route: a problem+json answer with the right
status, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from application.pagination import encode_cursor
from tests.api.helpers import API, GRAPH, create, event_count, problem

Client = TestClient[Any]
Route = tuple[str, str]

BODY_ROUTES: list[Route] = [
    ("POST", "/workflows"),
    ("PATCH", "/workflows/{id}"),
    ("PUT", "/workflows/{id}/definition"),
    ("POST", "/workflows/{id}/duplicate"),
    ("POST", "/workflows/{id}/versions/1/revert"),
]
STATE_ROUTES: list[Route] = [
    ("POST", "/workflows/{id}/activate"),
    ("POST", "/workflows/{id}/deactivate"),
    ("POST", "/workflows/{id}/archive"),
    ("POST", "/workflows/{id}/versions/1/publish"),
]
ID_COMMAND_ROUTES = [r for r in BODY_ROUTES + STATE_ROUTES if "{id}" in r[1]]
ID_QUERY_ROUTES: list[Route] = [
    ("GET", "/workflows/{id}"),
    ("GET", "/audit/aggregates/{id}/events"),
    ("GET", "/workflows/{id}/versions"),
    ("GET", "/workflows/{id}/versions/1"),
    ("GET", "/workflows/{id}/versions/1/diff?against=1"),
]
VALID_BODY: dict[Route, Any] = {
    ("POST", "/workflows"): {"name": "ok"},
    ("PATCH", "/workflows/{id}"): {"name": "ok"},
    ("PUT", "/workflows/{id}/definition"): GRAPH,
    ("POST", "/workflows/{id}/duplicate"): {"name": "ok"},
    ("POST", "/workflows/{id}/versions/1/revert"): {"changeMessage": "ok"},
}


@pytest.fixture
def workflow(client: Client, user: dict[str, str]) -> dict[str, Any]:
    return create(client, user, definition=GRAPH)


@pytest.fixture
def unchanged(client: Client, workflow: dict[str, Any]) -> Iterator[None]:
    """The test's requests must not store a single event (counted after `workflow` exists)."""
    before = event_count(client)
    yield
    assert event_count(client) == before


def send(
    client: Client,
    route: Route,
    workflow_id: str,
    user: dict[str, str],
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    method, path = route
    return client.request(
        method,
        API + path.replace("{id}", workflow_id),
        content=content,
        headers={**user, "content-type": "application/json", **(headers or {})},
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
class TestBodies:
    def test_malformed_json_is_400(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        body = problem(send(client, route, workflow["id"], user, content=b'{"name": "x",'), 400)
        assert body["type"].endswith("/malformed")

    def test_a_json_array_is_422(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        body = problem(send(client, route, workflow["id"], user, content=b"[1, 2]"), 422)
        [error] = body["errors"]
        assert error["pointer"] == ""
        assert error["message"].endswith("got `array`")

    def test_unknown_fields_are_422_with_a_pointer(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        content = json.dumps({**VALID_BODY[route], "ownerId": "someone-else"}).encode()
        body = problem(send(client, route, workflow["id"], user, content=content), 422)
        assert body["errors"] == [{"message": "is not a known field", "pointer": "/ownerId"}]

    def test_an_oversized_body_is_413(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        big = json.dumps({"name": "x" * (300 * 1024)}).encode()
        problem(send(client, route, workflow["id"], user, content=big), 413)

    def test_a_non_json_content_type_is_415(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        content = json.dumps(VALID_BODY[route]).encode()
        for media_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            response = send(
                client,
                route,
                workflow["id"],
                user,
                content=content,
                headers={"content-type": media_type},
            )
            assert media_type in problem(response, 415)["detail"]

    def test_hostile_nesting_is_rejected_not_a_crash(
        self, client: Client, user: dict[str, str], workflow: Any, route: Route
    ) -> None:
        deep = b'{"name": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001
        response = send(client, route, workflow["id"], user, content=deep)
        assert response.status_code in (400, 422), response.text
        problem(response, response.status_code)


WRONG_TYPES: list[tuple[Route, dict[str, Any], str]] = [
    (("POST", "/workflows"), {"name": 5}, "/name"),
    (("POST", "/workflows"), {"name": "x", "tags": "sales"}, "/tags"),
    (("POST", "/workflows"), {"name": "x", "visibility": "SECRET"}, "/visibility"),
    (
        ("POST", "/workflows"),
        {"name": "x", "definition": {"nodes": [{"id": 1, "type": "t"}]}},
        "/definition/nodes/0/id",
    ),
    (("POST", "/workflows"), {"description": "no name"}, "/name"),
    (("PATCH", "/workflows/{id}"), {"tags": [1]}, "/tags/0"),
    (("PATCH", "/workflows/{id}"), {"variables": []}, "/variables"),
    (
        ("PUT", "/workflows/{id}/definition"),
        {"nodes": [{"id": "a", "type": "t", "position": {"x": "1", "y": 0}}]},
        "/nodes/0/position/x",
    ),
    (
        ("PUT", "/workflows/{id}/definition"),
        {"connections": [{"source": "a"}]},
        "/connections/0/target",
    ),
    (("POST", "/workflows/{id}/duplicate"), {"name": ["x"]}, "/name"),
    (("POST", "/workflows/{id}/versions/1/revert"), {"changeMessage": 5}, "/changeMessage"),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("route", "body", "pointer"), WRONG_TYPES)
def test_wrong_types_are_422_pointing_at_the_field(
    client: Client, user: dict[str, str], workflow: Any, route: Route, body: Any, pointer: str
) -> None:
    response = send(client, route, workflow["id"], user, content=json.dumps(body).encode())
    errors = problem(response, 422)["errors"]
    assert [e["pointer"] for e in errors] == [pointer]


RULE_BREAKERS: list[tuple[Route, dict[str, Any], set[str]]] = [
    (("POST", "/workflows"), {"name": "  "}, {"/name"}),
    (("POST", "/workflows"), {"name": "x\u0000y", "tags": ["a" * 65]}, {"/name"}),
    (("POST", "/workflows"), {"name": "x", "tags": ["a" * 65, ""]}, {"/tags/0", "/tags/1"}),
    (
        ("POST", "/workflows"),
        {
            "name": "cycle",
            "definition": {
                "nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}],
                "connections": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
            },
        },
        {"/definition/connections/1"},
    ),
    (
        ("PUT", "/workflows/{id}/definition"),
        {
            "nodes": [
                {"id": "a", "type": "noop"},
                {"id": "a", "type": "noop", "config": {"k": "\u0000"}},
            ],
            "connections": [{"source": "a", "target": "ghost"}],
        },
        {"/nodes/1/config/k"},
    ),
    (
        ("PUT", "/workflows/{id}/definition"),
        {
            "nodes": [{"id": "a", "type": "noop"}, {"id": "a", "type": "noop"}],
            "connections": [{"source": "a", "target": "ghost"}],
        },
        {"/nodes/1/id", "/connections/0/target"},
    ),
    (("PATCH", "/workflows/{id}"), {"name": "", "category": ""}, {"/name", "/category"}),
    (
        ("POST", "/workflows"),
        {
            "name": "registry",
            "definition": {
                "nodes": [
                    {"id": "a", "type": "webhook"},
                    {"id": "b", "type": "http_request", "config": {"url": "ftp://x"}},
                ]
            },
        },
        {"/definition/nodes/0/type", "/definition/nodes/1/config/url"},
    ),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("route", "body", "pointers"), RULE_BREAKERS)
def test_broken_rules_are_422_listing_every_violation(
    client: Client, user: dict[str, str], workflow: Any, route: Route, body: Any, pointers: set[str]
) -> None:
    response = send(client, route, workflow["id"], user, content=json.dumps(body).encode())
    body = problem(response, 422)
    assert body["type"].endswith("/validation")
    assert {e["pointer"] for e in body["errors"]} == pointers


BAD_IDS = [
    "not-an-id",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "..%2F..%2Fetc%2Fpasswd",
    "00000000-0000-7000-8000-000000000000",
    "x" * 5000,
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "route", ID_COMMAND_ROUTES + ID_QUERY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}"
)
@pytest.mark.parametrize(
    "bad_id", BAD_IDS, ids=["word", "ulid", "traversal", "unknown-uuid", "huge"]
)
def test_bad_ids_are_404(client: Client, user: dict[str, str], route: Route, bad_id: str) -> None:
    content = json.dumps(VALID_BODY[route]).encode() if route in VALID_BODY else None
    problem(send(client, route, bad_id, user, content=content), 404)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("route", ID_COMMAND_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_an_uppercase_id_of_a_real_workflow_is_not_it(
    client: Client, user: dict[str, str], workflow: Any, route: Route
) -> None:
    content = json.dumps(VALID_BODY[route]).encode() if route in VALID_BODY else None
    problem(send(client, route, workflow["id"].upper(), user, content=content), 404)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "route", [r for r in ID_COMMAND_ROUTES if r[1] != "/workflows/{id}/duplicate"]
)
def test_a_stale_if_match_is_412_and_a_malformed_one_400(
    client: Client, user: dict[str, str], workflow: Any, route: Route
) -> None:
    content = json.dumps(VALID_BODY[route]).encode() if route in VALID_BODY else None
    stale = problem(
        send(client, route, workflow["id"], user, content=content, headers={"If-Match": '"7"'}), 412
    )
    assert stale["currentRevision"] == 1
    for malformed in ("7", '"seven"', 'W/"x"'):
        response = send(
            client, route, workflow["id"], user, content=content, headers={"If-Match": malformed}
        )
        assert problem(response, 400)["errors"] == [
            {"message": 'must be an ETag this API returned, such as "3"', "parameter": "If-Match"}
        ]


BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/workflows", {"limit": "0"}, "limit"),
    ("/workflows", {"limit": "501"}, "limit"),
    ("/workflows", {"limit": "ten"}, "limit"),
    ("/workflows", {"isActive": "maybe"}, "isActive"),
    ("/workflows", {"visibility": "SECRET"}, "visibility"),
    ("/workflows", {"cursor": "not-a-cursor"}, "cursor"),
    ("/workflows", {"q": "x" * 201}, "q"),
    ("/workflows/{id}", {"version": "0"}, "version"),
    ("/workflows/{id}", {"version": "latest"}, "version"),
    ("/workflows/{id}", {"asOf": "yesterday"}, "asOf"),
    ("/workflows/{id}", {"asOf": "2026-01-01T00:00:00"}, "asOf"),
    ("/workflows/{id}", {"asOf": "2026-01-01T00:00:00Z", "version": "1"}, "asOf"),
    ("/audit/aggregates/{id}/events", {"cursor": "!!"}, "cursor"),
    ("/audit/aggregates/{id}/events", {"limit": "-1"}, "limit"),
    ("/workflows/{id}/versions", {"limit": "0"}, "limit"),
    ("/workflows/{id}/versions", {"cursor": "not-a-cursor"}, "cursor"),
    ("/workflows/{id}/versions", {"cursor": encode_cursor({"version": "one"})}, "cursor"),
    ("/workflows/{id}/versions", {"cursor": encode_cursor({"id": "1"})}, "cursor"),
    ("/workflows/{id}/versions/0", {}, "version"),
    ("/workflows/{id}/versions/2147483648", {}, "version"),
    ("/workflows/{id}/versions/99999999999999999999", {}, "version"),
    ("/workflows/{id}/versions/1/diff", {}, "against"),
    ("/workflows/{id}/versions/1/diff", {"against": "0"}, "against"),
    ("/workflows/{id}/versions/1/diff", {"against": "two"}, "against"),
    ("/workflows/{id}/versions/1/diff", {"against": "2147483648"}, "against"),
    ("/workflows/{id}/versions/0/diff", {"against": "1"}, "version"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_QUERIES)
def test_bad_query_parameters_are_400_naming_the_parameter(
    client: Client,
    user: dict[str, str],
    workflow: Any,
    path: str,
    params: dict[str, str],
    parameter: str,
) -> None:
    response = client.get(API + path.replace("{id}", workflow["id"]), params=params, headers=user)
    body = problem(response, 400)
    assert [e["parameter"] for e in body["errors"]] == [parameter]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("action", ["publish", "revert"])
@pytest.mark.parametrize("number", ["0", "-1", "2147483648", "99999999999999999999"])
def test_version_numbers_out_of_range_are_400_and_change_nothing(
    client: Client, user: dict[str, str], workflow: Any, action: str, number: str
) -> None:
    response = client.post(
        f"{API}/workflows/{workflow['id']}/versions/{number}/{action}", headers=user
    )
    assert problem(response, 400)["errors"][0]["parameter"] == "version"


def test_a_malformed_min_position_is_400(client: Client, user: dict[str, str]) -> None:
    for value in ("soon", "-1", "1" * 30):
        response = client.get(f"{API}/workflows", headers={**user, "A2N-Min-Position": value})
        assert problem(response, 400)["errors"][0]["parameter"] == "A2N-Min-Position"


def test_a_position_the_projections_do_not_reach_in_time_is_503(
    client: Client, user: dict[str, str]
) -> None:
    far = event_count(client) + 1_000_000
    response = client.get(f"{API}/workflows", headers={**user, "A2N-Min-Position": str(far)})
    problem(response, 503)
    assert response.headers["retry-after"] == "1"


def test_unknown_routes_and_methods_are_problems(client: Client, user: dict[str, str]) -> None:
    problem(client.get(f"{API}/nothing-here", headers=user), 404)
    response = client.delete(f"{API}/workflows", headers=user)
    problem(response, 405)
    assert "GET" in response.headers["allow"]


@pytest.mark.usefixtures("unchanged")
def test_definition_errors_name_the_node_and_point_into_it(
    client: Client, user: dict[str, str], workflow: Any
) -> None:
    definition = {
        "nodes": [
            {"id": "hook", "type": "webhook_trigger", "config": {"path": "in", "method": "TRACE"}},
            {"id": "check", "type": "if", "config": {"condition": "{{ $json.ok }}"}},
            {
                "id": "tick",
                "type": "schedule_trigger",
                "config": {"cron": "@daily", "timezone": "Nowhere"},
            },
        ],
        "connections": [
            {"source": "hook", "target": "check"},
            {"source": "check", "target": "tick", "sourceHandle": "maybe"},
        ],
    }
    response = send(
        client,
        ("PUT", "/workflows/{id}/definition"),
        workflow["id"],
        user,
        content=json.dumps(definition).encode(),
    )
    assert problem(response, 422)["errors"] == [
        {
            "message": "must be one of: GET, POST, PUT, PATCH, DELETE",
            "pointer": "/nodes/0/config/method",
            "nodeId": "hook",
        },
        {
            "message": "must be an IANA time zone such as Europe/Berlin or UTC",
            "pointer": "/nodes/2/config/timezone",
            "nodeId": "tick",
        },
        {
            "message": "is not an output of node 'check' (if); its outputs are: true, false",
            "pointer": "/connections/1/sourceHandle",
            "nodeId": "check",
        },
        {
            "message": "node 'tick' (schedule_trigger) takes no input",
            "pointer": "/connections/1/targetHandle",
            "nodeId": "tick",
        },
    ]


@pytest.mark.usefixtures("unchanged")
def test_an_expression_that_does_not_parse_is_422_at_its_string_and_node(
    client: Client, user: dict[str, str], workflow: Any
) -> None:
    definition = {
        "nodes": [
            {"id": "hook", "type": "webhook_trigger", "config": {"path": "in"}},
            {"id": "check", "type": "if", "config": {"condition": "{{ $json.total === 100 }}"}},
            {
                "id": "label",
                "type": "set",
                "config": {"fields": {"who": "{{ lower($json.name) }}", "tags": ["{{ 1 + }}"]}},
            },
            {"id": "py", "type": "code", "config": {"code": "return [{'t': '{{ x'}]"}},
        ],
        "connections": [
            {"source": "hook", "target": "check"},
            {"source": "check", "target": "label", "sourceHandle": "true"},
            {"source": "label", "target": "py"},
        ],
    }
    path = f"{API}/workflows/{workflow['id']}/definition"
    response = client.put(path, json=definition, headers=user)
    assert problem(response, 422)["errors"] == [
        {
            "message": "does not parse as an expression: `===` is JavaScript: write == "
            "(at offset 15)",
            "pointer": "/nodes/1/config/condition",
            "nodeId": "check",
        },
        {
            "message": "does not parse as an expression: unexpected `}}`, expected a value "
            "(at offset 7)",
            "pointer": "/nodes/2/config/fields/tags/0",
            "nodeId": "label",
        },
    ]
