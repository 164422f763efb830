"""Export and import over HTTP: A2N round trips, n8n exports, and bad documents refused with
problem+json and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, N8N_WORKFLOW, create, event_count, problem, read, sign_up
from tests.api.test_credentials import create_credential

Client = TestClient[Any]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "n8n"
CREDENTIAL_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
RICH_DEFINITION: dict[str, Any] = {
    "nodes": [
        {
            "id": "hook",
            "name": "Orders in",
            "type": "webhook_trigger",
            "position": {"x": 0, "y": 100},
            "config": {"path": "transfer/orders", "method": "POST", "responseMode": "respondNode"},
        },
        {
            "id": "big",
            "name": "Big?",
            "type": "if",
            "position": {"x": 200, "y": 100},
            "config": {"condition": "{{ $json.body.total > 100 }}"},
            "notes": "Orders over 100 need a look",
        },
        {
            "id": "route",
            "name": "Route",
            "type": "switch",
            "config": {"rules": ['{{ $json.body.kind == "a" }}'], "fallback": True},
        },
        {"id": "mark", "name": "Mark", "type": "set", "config": {"fields": {"big": True}}},
        {
            "id": "notify",
            "name": "Notify",
            "type": "http_request",
            "config": {
                "url": "https://example.com/notify",
                "method": "POST",
                "body": "{{ $json }}",
            },
            "disabled": True,
        },
        {"id": "join", "name": "Join", "type": "merge", "config": {"mode": "append"}},
        {
            "id": "answer",
            "name": "Answer",
            "type": "respond_to_webhook",
            "config": {"statusCode": 201},
        },
    ],
    "connections": [
        {"source": "hook", "target": "big"},
        {"source": "big", "target": "mark", "sourceHandle": "true"},
        {"source": "big", "target": "route", "sourceHandle": "false"},
        {"source": "route", "target": "notify", "sourceHandle": "fallback"},
        {"source": "route", "target": "join", "sourceHandle": "0", "targetHandle": "input2"},
        {"source": "mark", "target": "join", "targetHandle": "input1"},
        {"source": "join", "target": "answer"},
    ],
    "variables": {"workflow": {"threshold": 100}},
    "settings": {"timeout": 60000, "retryPolicy": {"enabled": True, "maxRetries": 2}},
}


def export(client: Client, user: dict[str, str], workflow: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = read(
        client, user, f"/workflows/{workflow['id']}/export", workflow["position"]
    )
    return document


def import_(client: Client, user: dict[str, str], document: Any, **params: str) -> dict[str, Any]:
    response = client.post(f"{API}/workflows/import", json=document, params=params, headers=user)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    body: dict[str, Any] = response.json()
    return body


def stored(client: Client, user: dict[str, str], imported: dict[str, Any]) -> dict[str, Any]:
    """The imported workflow as the read model shows it."""
    found: dict[str, Any] = read(client, user, f"/workflows/{imported['id']}", imported["position"])
    return found


def resolve(document: Any, pointer: str) -> Any:
    """The value a JSON pointer (RFC 6901) names in `document`; KeyError if none."""
    value = document
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def credential_named(client: Client, user: dict[str, str], name: str) -> str:
    """A new bearer token credential of `user` called `name`, once imports can see it."""
    made = create_credential(client, user, name=name, type="BEARER_TOKEN", data={"token": "t"})
    read(client, user, f"/credentials/{made['id']}", made["position"])
    credential_id: str = made["id"]
    return credential_id


# -- export -----------------------------------------------------------------------------------


def test_export_is_a_standalone_a2n_document(client: Client, user: dict[str, str]) -> None:
    workflow = create(
        client,
        user,
        name="Orders",
        description="Takes orders",
        tags=["sales", "eu"],
        category="ops",
        definition=RICH_DEFINITION,
    )
    document = export(client, user, workflow)
    shown = read(client, user, f"/workflows/{workflow['id']}", workflow["position"])
    assert document == {
        "format": "a2n.workflow",
        "formatVersion": 1,
        "name": "Orders",
        "description": "Takes orders",
        "tags": ["sales", "eu"],
        "category": "ops",
        "definition": shown["definition"],
    }
    text = json.dumps(document)
    assert user.user_id not in text  # type: ignore[attr-defined]
    assert workflow["id"] not in text


def test_exporting_a_missing_workflow_is_404(client: Client, user: dict[str, str]) -> None:
    for workflow_id in ("not-an-id", "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"):
        response = client.get(f"{API}/workflows/{workflow_id}/export", headers=user)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"


# -- A2N round trip ---------------------------------------------------------------------------


def test_export_then_import_gives_the_identical_definition(
    client: Client, user: dict[str, str]
) -> None:
    original = create(
        client, user, name="Orders", tags=["sales"], category="ops", definition=RICH_DEFINITION
    )
    activated = client.post(f"{API}/workflows/{original['id']}/activate", headers=user)
    assert activated.status_code == 200, activated.text
    document = export(client, user, activated.json())
    imported = import_(client, user, document)  # the format is recognised by its marker
    assert imported["id"] != original["id"]
    assert imported["definition"] == original["definition"]
    assert imported["isActive"] is False
    assert imported["version"] == 1
    assert (imported["name"], imported["tags"], imported["category"]) == (
        "Orders",
        ["sales"],
        "ops",
    )
    assert imported["report"] == {"format": "a2n", "issues": []}
    assert stored(client, user, imported)["definition"] == original["definition"]
    assert export(client, user, imported) == document


def test_an_a2n_credential_without_a_match_is_reported_missing(
    client: Client, user: dict[str, str]
) -> None:
    definition = {
        "nodes": [
            {
                "id": "call",
                "name": "Call",
                "type": "http_request",
                "config": {"url": "https://example.com", "credentials": CREDENTIAL_ID},
            }
        ]
    }
    document = export(client, user, create(client, user, definition=definition))
    # The id names no credential of the user's: it stays an id.
    assert document["definition"]["nodes"][0]["config"]["credentials"] == CREDENTIAL_ID
    imported = import_(client, user, document, format="a2n")
    assert "credentials" not in imported["definition"]["nodes"][0]["config"]
    assert imported["report"]["issues"] == [
        {
            "kind": "missingCredential",
            "message": f"no credential of yours is named {CREDENTIAL_ID!r}; the node was "
            "imported without it",
            "pointer": "/definition/nodes/0",
            "node": "Call",
            "nodeId": "call",
        }
    ]


# -- n8n --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_n8n_exports_are_imported_with_a_report(
    client: Client, user: dict[str, str], path: Path
) -> None:
    document = json.loads(path.read_text())
    imported = import_(client, user, document, format="n8n")
    assert imported["name"] == document["name"]
    assert imported["isActive"] is False
    assert imported["report"]["format"] == "n8n"
    assert stored(client, user, imported)["definition"] == imported["definition"]
    nodes = [n for n in document["nodes"] if n["type"] != "n8n-nodes-base.stickyNote"]
    assert {n["name"] for n in nodes} <= {n["name"] for n in imported["definition"]["nodes"]}
    for issue in imported["report"]["issues"]:
        assert issue["message"]
        if "pointer" in issue:
            resolve(document, issue["pointer"])  # every pointer names a part of the upload


def test_an_n8n_export_is_recognised_without_format(client: Client, user: dict[str, str]) -> None:
    document = json.loads((FIXTURES / "webhook_if_respond.json").read_text())
    imported = import_(client, user, document)
    assert imported["report"]["format"] == "n8n"
    kinds = {issue["kind"] for issue in imported["report"]["issues"]}
    assert {"skippedNode", "pinnedData", "inactive", "unmappedSetting"} == kinds
    webhook = imported["definition"]["nodes"][0]
    assert webhook["config"] == {"path": "orders", "method": "POST", "responseMode": "respondNode"}


def test_n8n_credentials_are_reported_missing(client: Client, user: dict[str, str]) -> None:
    document = json.loads((FIXTURES / "schedule_http_fanout.json").read_text())
    imported = import_(client, user, document, format="n8n")
    missing = [i for i in imported["report"]["issues"] if i["kind"] == "missingCredential"]
    assert {(i["node"], i["nodeId"]) for i in missing} == {
        ("Get customers", "get-customers"),
        ("Get orders", "get-orders"),
    }
    nodes = {n["id"]: n for n in imported["definition"]["nodes"]}
    assert nodes["get-orders"]["type"] == "http_request"
    assert "credentials" not in nodes["get-orders"]["config"]


def test_n8n_credentials_resolve_by_name_to_the_importers_own(client: Client) -> None:
    me = sign_up(client)
    token = credential_named(client, me, "Example API token")
    document = json.loads((FIXTURES / "schedule_http_fanout.json").read_text())
    imported = import_(client, me, document, format="n8n")
    assert "missingCredential" not in {i["kind"] for i in imported["report"]["issues"]}
    nodes = {n["id"]: n for n in imported["definition"]["nodes"]}
    assert nodes["get-orders"]["config"]["credentials"] == token
    # A placeholder (its query is Luxon, which A2N cannot run) keeps it for the rewrite.
    assert nodes["get-customers"]["credentials"] == [token]


def test_credentials_travel_by_name_between_users(client: Client) -> None:
    author, importer = sign_up(client), sign_up(client)
    theirs = credential_named(client, author, "Billing API")
    definition = {
        "nodes": [
            {
                "id": "call",
                "type": "http_request",
                "config": {"url": "https://example.com", "credentials": theirs},
            }
        ]
    }
    document = export(client, author, create(client, author, definition=definition))
    assert document["definition"]["nodes"][0]["config"]["credentials"] == "Billing API"
    mine = credential_named(client, importer, "Billing API")
    imported = import_(client, importer, document)
    assert imported["definition"]["nodes"][0]["config"]["credentials"] == mine
    assert imported["report"]["issues"] == []


def test_an_imported_n8n_workflow_can_be_activated(client: Client, user: dict[str, str]) -> None:
    imported = import_(client, user, N8N_WORKFLOW)
    response = client.post(f"{API}/workflows/{imported['id']}/activate", headers=user)
    assert response.status_code == 200, response.text


# -- bad input --------------------------------------------------------------------------------


@pytest.fixture
def unchanged(client: Client, user: dict[str, str]) -> Iterator[None]:
    """The test's requests must not store a single event."""
    before = event_count(client)
    yield
    assert event_count(client) == before


def post_raw(
    client: Client,
    user: dict[str, str],
    content: bytes,
    media_type: str = "application/json",
    **params: str,
) -> Any:
    return client.post(
        f"{API}/workflows/import",
        content=content,
        params=params,
        headers={**user, "content-type": media_type},
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("content", [b"[1, 2]", b'"n8n"', b"42", b"null"])
def test_a_body_that_is_not_a_json_object_is_422(
    client: Client, user: dict[str, str], content: bytes
) -> None:
    body = problem(post_raw(client, user, content), 422)
    assert body["errors"][0]["pointer"] == ""


@pytest.mark.usefixtures("unchanged")
def test_malformed_json_is_400(client: Client, user: dict[str, str]) -> None:
    assert problem(post_raw(client, user, b'{"nodes": ['), 400)["type"].endswith("/malformed")


@pytest.mark.usefixtures("unchanged")
def test_a_missing_body_is_422(client: Client, user: dict[str, str]) -> None:
    response = client.post(f"{API}/workflows/import", headers=user)
    problem(response, 422)


@pytest.mark.usefixtures("unchanged")
def test_a_document_beyond_the_body_limit_is_413(client: Client, user: dict[str, str]) -> None:
    huge = {**N8N_WORKFLOW, "padding": "x" * (300 * 1024)}
    problem(post_raw(client, user, json.dumps(huge).encode()), 413)


@pytest.mark.usefixtures("unchanged")
def test_a_non_json_content_type_is_415(client: Client, user: dict[str, str]) -> None:
    problem(post_raw(client, user, json.dumps(N8N_WORKFLOW).encode(), "text/plain"), 415)


@pytest.mark.usefixtures("unchanged")
def test_more_nodes_than_a_definition_may_have_is_422(client: Client, user: dict[str, str]) -> None:
    limit = client.app.state.services.workflows.limits.max_nodes
    nodes = [{"name": f"n{i}", "type": "n8n-nodes-base.noOp"} for i in range(limit + 1)]
    body = problem(post_raw(client, user, json.dumps({"nodes": nodes}).encode()), 422)
    assert body["errors"] == [
        {"pointer": "/nodes", "message": f"has {limit + 1} nodes; the limit is {limit}"}
    ]


@pytest.mark.usefixtures("unchanged")
def test_hostile_nesting_is_problem(client: Client, user: dict[str, str]) -> None:
    deep = b'{"nodes": [], "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    response = post_raw(client, user, deep)
    problem(response, response.status_code)
    assert response.status_code in (400, 422)
    nested = {"nodes": [], "x": json.loads("[" * 60 + "]" * 60)}
    body = problem(post_raw(client, user, json.dumps(nested).encode()), 422)
    assert "nests deeper than" in body["errors"][0]["message"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("document", "params", "pointer"),
    [
        ({"name": "neither"}, {}, ""),
        ({"nodes": [], "connections": []}, {}, ""),
        ({"format": "a2n.workflow", "formatVersion": 1, "name": "x"}, {"format": "n8n"}, "/nodes"),
        (N8N_WORKFLOW, {"format": "a2n"}, "/format"),
        ({"format": "a2n.workflow", "formatVersion": 2, "name": "x"}, {}, "/formatVersion"),
        ({"format": "a2n.workflow", "formatVersion": 1, "name": "x", "userId": "u"}, {}, "/userId"),
        (
            {
                "format": "a2n.workflow",
                "formatVersion": 1,
                "name": "x",
                "definition": {"nodes": [{"id": "a", "type": "teleport"}]},
            },
            {},
            "/definition/nodes/0/type",
        ),
        ({"format": "a2n.workflow", "formatVersion": 1, "name": " "}, {}, "/name"),
        ({"nodes": [{"name": "a"}], "connections": {}}, {}, "/nodes/0/type"),
    ],
)
def test_documents_in_the_wrong_format_are_422_with_pointers(
    client: Client, user: dict[str, str], document: Any, params: dict[str, str], pointer: str
) -> None:
    body = problem(post_raw(client, user, json.dumps(document).encode(), **params), 422)
    assert pointer in [error["pointer"] for error in body["errors"]]


@pytest.mark.usefixtures("unchanged")
def test_an_unknown_format_parameter_is_400(client: Client, user: dict[str, str]) -> None:
    body = problem(post_raw(client, user, json.dumps(N8N_WORKFLOW).encode(), format="zapier"), 400)
    assert body["errors"][0]["parameter"] == "format"
