"""Malformed or hostile input to every credential route: a problem+json answer with the right
status, no secret echoed back, and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from application.pagination import encode_cursor
from tests.api.helpers import API, problem
from tests.api.test_credentials import SECRET, create_credential
from tests.api.test_workflow_bad_input import send as send_request

Client = TestClient[Any]
Route = tuple[str, str]

BODY_ROUTES: list[Route] = [
    ("POST", "/credentials"),
    ("PATCH", "/credentials/{id}"),
    ("PUT", "/credentials/{id}/data"),
    ("POST", "/credentials/{id}/shares"),
]
ID_COMMAND_ROUTES: list[Route] = [
    *BODY_ROUTES[1:],
    ("DELETE", "/credentials/{id}"),
    ("POST", "/credentials/{id}/validate"),
    ("DELETE", "/credentials/{id}/shares/00000000-0000-7000-8000-000000000000"),
]
ID_QUERY_ROUTES: list[Route] = [
    ("GET", "/credentials/{id}"),
    ("GET", "/credentials/{id}/shares"),
    ("GET", "/credentials/{id}/usage"),
]
VALID_BODY: dict[Route, Any] = {
    ("POST", "/credentials"): {"name": "ok", "type": "API_KEY", "data": {"apiKey": SECRET}},
    ("PATCH", "/credentials/{id}"): {"name": "ok"},
    ("PUT", "/credentials/{id}/data"): {"data": {"apiKey": SECRET}},
    ("POST", "/credentials/{id}/shares"): {
        "userId": "00000000-0000-7000-8000-000000000000",
        "permission": "USE",
    },
}


def event_count(client: Client) -> int:
    return int(client.app.state.services.credentials.app.head_position())


@pytest.fixture
def credential(client: Client, user: dict[str, str]) -> dict[str, Any]:
    return create_credential(client, user)


@pytest.fixture
def unchanged(client: Client, credential: dict[str, Any]) -> Iterator[None]:
    """The test's requests must not store a single event (counted after `credential` exists)."""
    before = event_count(client)
    yield
    assert event_count(client) == before


def send(
    client: Client,
    route: Route,
    credential_id: str,
    user: dict[str, str],
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """The request, sent as the workflow bad-input tests send theirs; no answer shows the secret."""
    response = send_request(client, route, credential_id, user, content=content, headers=headers)
    assert SECRET not in response.text
    return response


def body_of(route: Route) -> bytes | None:
    return json.dumps(VALID_BODY[route]).encode() if route in VALID_BODY else None


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
class TestBodies:
    def test_malformed_json_is_400(
        self, client: Client, user: dict[str, str], credential: Any, route: Route
    ) -> None:
        broken = b'{"data": {"apiKey": "' + SECRET.encode() + b'"'
        body = problem(send(client, route, credential["id"], user, content=broken), 400)
        assert body["type"].endswith("/malformed")

    def test_unknown_fields_are_422_with_a_pointer(
        self, client: Client, user: dict[str, str], credential: Any, route: Route
    ) -> None:
        content = json.dumps({**VALID_BODY[route], "ownerId": SECRET}).encode()
        body = problem(send(client, route, credential["id"], user, content=content), 422)
        assert body["errors"] == [{"message": "is not a known field", "pointer": "/ownerId"}]

    def test_an_oversized_body_is_413(
        self, client: Client, user: dict[str, str], credential: Any, route: Route
    ) -> None:
        big = json.dumps({"data": {"apiKey": "x" * (300 * 1024)}}).encode()
        problem(send(client, route, credential["id"], user, content=big), 413)

    def test_a_non_json_content_type_is_415(
        self, client: Client, user: dict[str, str], credential: Any, route: Route
    ) -> None:
        response = send(
            client,
            route,
            credential["id"],
            user,
            content=body_of(route),
            headers={"content-type": "text/plain"},
        )
        problem(response, 415)

    def test_hostile_nesting_is_rejected_not_a_crash(
        self, client: Client, user: dict[str, str], credential: Any, route: Route
    ) -> None:
        deep = b'{"data": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001
        response = send(client, route, credential["id"], user, content=deep)
        problem(response, response.status_code)
        assert response.status_code in (400, 422)


BROKEN: list[tuple[Route, dict[str, Any], set[str]]] = [
    (("POST", "/credentials"), {"name": "x", "type": "PASSWORD", "data": {}}, {"/type"}),
    (("POST", "/credentials"), {"name": "x", "type": SECRET, "data": {}}, {"/type"}),
    (("POST", "/credentials"), {"name": "x", "type": "API_KEY"}, {"/data"}),
    (("POST", "/credentials"), {"name": "x", "type": "API_KEY", "data": {"apiKey": 7}}, None),
    (
        ("POST", "/credentials"),
        {"name": " ", "type": "BASIC_AUTH", "data": {"username": "u", "passwd": SECRET}},
        {"/name", "/data/password", "/data/passwd"},
    ),
    (
        ("POST", "/credentials"),
        {
            "name": "x",
            "type": "API_KEY",
            "data": {"apiKey": SECRET},
            "expiresAt": "2001-01-01T00:00:00Z",
            "configuration": {"in": "body"},
        },
        {"/expiresAt", "/configuration/in"},
    ),
    (("PATCH", "/credentials/{id}"), {"tags": [SECRET, ""]}, {"/tags/1"}),
    (("PATCH", "/credentials/{id}"), {"expiresAt": "soon"}, {"/expiresAt"}),
    (("PUT", "/credentials/{id}/data"), {"data": {"apiKey": SECRET, "extra": 1}}, {"/data/extra"}),
    (("PUT", "/credentials/{id}/data"), {"data": {"apiKey": "a\u0000b"}}, {"/data/apiKey"}),
    (
        ("POST", "/credentials/{id}/shares"),
        {"permission": "USE", "userId": "00000000-0000-7000-8000-000000000000", "usageLimit": 0},
        {"/userId", "/usageLimit"},
    ),
    (
        ("POST", "/credentials/{id}/shares"),
        {"permission": "USE", "userId": "00000000-0000-7000-8000-000000000000"},
        {"/userId"},
    ),
    (
        ("POST", "/credentials/{id}/shares"),
        {"permission": SECRET, "userId": "00000000-0000-7000-8000-000000000000"},
        {"/permission", "/userId"},
    ),
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(("route", "body", "pointers"), BROKEN)
def test_broken_input_is_422_naming_fields_never_values(
    client: Client,
    user: dict[str, str],
    credential: Any,
    route: Route,
    body: Any,
    pointers: set[str] | None,
) -> None:
    response = send(client, route, credential["id"], user, content=json.dumps(body).encode())
    errors = problem(response, 422)["errors"]
    found = {e["pointer"] for e in errors}
    assert found == (pointers if pointers is not None else {"/data/apiKey"})


BAD_IDS = [
    "not-an-id",
    "..%2F..%2Fetc%2Fpasswd",
    "00000000-0000-7000-8000-000000000000",
    "x" * 5000,
]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "route", ID_COMMAND_ROUTES + ID_QUERY_ROUTES, ids=lambda r: f"{r[0]} {r[1]}"
)
@pytest.mark.parametrize("bad_id", BAD_IDS, ids=["word", "traversal", "unknown-uuid", "huge"])
def test_bad_ids_are_404(client: Client, user: dict[str, str], route: Route, bad_id: str) -> None:
    problem(send(client, route, bad_id, user, content=body_of(route)), 404)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("route", ID_COMMAND_ROUTES[:3], ids=lambda r: f"{r[0]} {r[1]}")
def test_a_stale_if_match_is_412_and_a_malformed_one_400(
    client: Client, user: dict[str, str], credential: Any, route: Route
) -> None:
    stale = send(
        client, route, credential["id"], user, content=body_of(route), headers={"If-Match": '"7"'}
    )
    assert problem(stale, 412)["currentRevision"] == 1
    malformed = send(
        client, route, credential["id"], user, content=body_of(route), headers={"If-Match": "7"}
    )
    assert problem(malformed, 400)["errors"][0]["parameter"] == "If-Match"


BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/credentials", {"limit": "0"}, "limit"),
    ("/credentials", {"type": "PASSWORD"}, "type"),
    ("/credentials", {"q": "x" * 201}, "q"),
    ("/credentials", {"q": "a\u0001b"}, "q"),
    ("/credentials", {"sharedWithMe": "maybe"}, "sharedWithMe"),
    ("/credentials", {"cursor": "not-a-cursor"}, "cursor"),
    ("/credentials/{id}/usage", {"cursor": encode_cursor({"version": "1"})}, "cursor"),
    ("/credentials/{id}/shares", {"limit": "501"}, "limit"),
    ("/credential-templates", {"type": "PASSWORD"}, "type"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_QUERIES)
def test_bad_query_parameters_are_400_naming_the_parameter(
    client: Client,
    user: dict[str, str],
    credential: Any,
    path: str,
    params: dict[str, str],
    parameter: str,
) -> None:
    response = client.get(
        API + path.replace("{id}", credential["id"]),
        params=params,
        headers={**user, "A2N-Min-Position": str(credential["position"])},
    )
    assert [e["parameter"] for e in problem(response, 400)["errors"]] == [parameter]
