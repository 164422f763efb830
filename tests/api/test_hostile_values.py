"""Hostile values from every source of data: NUL characters, half surrogate pairs, NaN, 10 MB
strings and deep nesting, produced by code nodes (Python, JavaScript), a Set node's expressions,
an HTTP response from a loopback server and webhook calls, and typed into the free-text routes.

What a node or a caller produced is kept, cleaned (NUL and half pairs as U+FFFD, NaN as null,
deep nesting cut); what a user typed is refused with a problem+json. Either way no projector
parks, and every run reads back through the API.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, create, problem, published, read, run
from tests.api.test_webhooks import activated, hooked, unique_path
from tests.integration.helpers import rows, wait_until

Client = TestClient[Any]
R = "\ufffd"
TEN_MB = 10 * 1024 * 1024


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_JSON = (
    b'{"nul": "x\\u0000y", "lone": "\\ud800", "key\\u0000": 1, "nan": NaN, "deep": '
    + nested(200)
    + b"}"
)
RESPONSES: dict[str, tuple[str, bytes]] = {
    "/json": ("application/json", HOSTILE_JSON),
    "/text": ("text/plain", b"raw\x00nul \xff\xfe not utf-8"),
    "/deep": ("application/json", nested(5000)),
    "/big": ("application/json", b'"' + b"x" * TEN_MB + b'"'),
}


class Hostile(BaseHTTPRequestHandler):
    """Answers each path of RESPONSES with its content type and body."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        content_type, body = RESPONSES[self.path]
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


PYTHON = r"""
deep = []
for _ in range(DEPTH):
    deep = [deep]
print("log \x00 line \ud800 " + "l" * 100_000)
return [{"nul": "x\x00y", "lone": "\ud800", "key\x00": 1, "nan": None, "deep": deep,
         "big": "b" * BIG}]
"""
JAVASCRIPT = r"""
let deep = [];
for (let i = 0; i < DEPTH; i++) deep = [deep];
console.log("log \u0000 line \ud800");
return [{nul: "x\u0000y", lone: "\ud800", ["key\u0000"]: 1, nan: NaN, deep, big: "b".repeat(BIG)}];
"""


def code(language: str, source: str, *, depth: int = 200, big: int = 10) -> dict[str, Any]:
    program = source.replace("DEPTH", str(depth)).replace("BIG", str(big))
    return {"id": "code", "type": "code", "config": {"language": language, "code": program}}


SET = {
    "id": "set",
    "type": "set",
    "config": {"fields": {"copy": "{{ $json.nul }}", "made": "{{ 'a\\u0000b' }}"}},
}


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    start = {"id": "start", "type": "manual_trigger"}
    steps = [start, *nodes]
    return {
        "nodes": steps,
        "connections": [
            {"source": a["id"], "target": b["id"]} for a, b in itertools.pairwise(steps)
        ],
    }


def executions_head(client: Client) -> int:
    return int(client.app.state.services.executions.app.head_position())


def no_projector_parked(database_url: str) -> None:
    parked = rows(
        database_url,
        "SELECT projector, position, error FROM projection_parked_event WHERE resolved_at IS NULL",
    )
    assert parked == []


def readable(client: Client, user: Account, execution_id: str) -> dict[str, Any]:
    """The run, its node states and its log, read through the API once the projectors have
    every event stored so far (and the audit log has them too)."""
    head = executions_head(client)
    execution: dict[str, Any] = read(client, user, f"/executions/{execution_id}", head)
    nodes = read(client, user, f"/executions/{execution_id}/nodes", head)["items"]
    logs = read(client, user, f"/executions/{execution_id}/logs", head, limit=500)["items"]
    execution["nodes"] = {n["nodeId"]: n for n in nodes}
    execution["logs"] = [line["message"] for line in logs]
    audited = (
        "SELECT position FROM projection_tracking "
        "WHERE projector = 'audit_log' AND application = 'executions'"
    )
    with psycopg.connect(client.app.state.services.settings.database_url, autocommit=True) as conn:
        wait_until(lambda: conn.execute(audited).fetchall()[0][0] >= head)
    return execution


def cut_depth(value: Any) -> int:
    """How deep the nested lists go before the note that replaced the rest."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    assert isinstance(value, str)
    assert value.startswith("[nested deeper than"), value
    return depth


@pytest.mark.parametrize(("language", "source"), [("python", PYTHON), ("javascript", JAVASCRIPT)])
def test_code_node_output_and_logs_are_cleaned_and_the_run_reads_back(
    client: Client, user: Account, database_url: str, language: str, source: str
) -> None:
    workflow_id = published(client, user, chain(code(language, source), SET))
    ended = run(client, user, workflow_id, wait="true")
    assert ended["status"] == "SUCCESS", ended
    [item] = ended["outputItems"]
    assert item["nul"] == item["copy"] == f"x{R}y"
    assert item["lone"] == R
    assert item[f"key{R}"] == 1
    assert item["nan"] is None
    assert item["made"] == f"a{R}b"
    assert 50 < cut_depth(item["deep"]) < 200

    got = readable(client, user, ended["id"])
    assert got["outputData"] == ended["outputItems"]
    assert got["nodes"]["code"]["outputData"]["output"][0]["nul"] == f"x{R}y"
    [printed] = [line for line in got["logs"] if line.startswith("log ")]
    assert printed.startswith(f"log {R} line ")
    assert len(printed) <= 10_000
    no_projector_parked(database_url)


@pytest.mark.parametrize(("language", "source"), [("python", PYTHON), ("javascript", JAVASCRIPT)])
@pytest.mark.parametrize(("depth", "big"), [(5000, 10), (10, TEN_MB)])
def test_too_deep_or_too_big_code_output_fails_the_node_readably(
    client: Client,
    user: Account,
    database_url: str,
    language: str,
    source: str,
    depth: int,
    big: int,
) -> None:
    workflow_id = published(client, user, chain(code(language, source, depth=depth, big=big)))
    ended = run(client, user, workflow_id, wait="true")
    assert ended["status"] == "FAILED", ended
    got = readable(client, user, ended["id"])
    assert got["nodes"]["code"]["status"] == "FAILED"
    assert got["errorMessage"]
    no_projector_parked(database_url)


def test_http_responses_are_cleaned_and_the_runs_read_back(
    client: Client, user: Account, database_url: str, hostile_server: str
) -> None:
    def call(path: str) -> dict[str, Any]:
        node = {"id": "call", "type": "http_request", "config": {"url": hostile_server + path}}
        workflow_id = published(client, user, chain(node))
        ended = run(client, user, workflow_id, wait="true")
        return {**ended, **readable(client, user, ended["id"])}

    answered = call("/json")
    assert answered["status"] == "SUCCESS", answered
    body = answered["outputData"][0]["response"]
    assert (body["nul"], body["lone"], body[f"key{R}"], body["nan"]) == (f"x{R}y", R, 1, None)
    assert 50 < cut_depth(body["deep"]) < 200

    text = call("/text")
    assert text["status"] == "SUCCESS", text
    assert text["outputData"][0]["response"] == f"raw{R}nul {R}{R} not utf-8"

    for path in ("/deep", "/big"):
        refused = call(path)
        assert refused["status"] in ("SUCCESS", "FAILED")
        assert refused["nodes"]["call"]["status"] in ("SUCCESS", "FAILED")
    no_projector_parked(database_url)


def test_webhook_bodies_headers_and_queries_are_cleaned_and_the_runs_read_back(
    client: Client, user: Account, database_url: str
) -> None:
    path = unique_path()
    activated(client, user, hooked(path, method="POST", responseMode="lastNode"))

    answered = client.post(
        f"/webhook/{path}?q=%00&half=%ED%A0%80&deep=" + "%5B" * 300,
        content=HOSTILE_JSON.replace(b'"nan": NaN, ', b""),  # NaN is not JSON: 400
        headers={"Content-Type": "application/json", "X-Odd": b"odd \x00 value"},
    )
    assert answered.status_code == 200, answered.text
    [item] = answered.json()
    assert item["body"]["nul"] == f"x{R}y"
    assert item["body"]["lone"] == R
    assert item["query"]["q"] == R
    assert item["headers"]["x-odd"] == f"odd {R} value"
    got = readable(client, user, _last_run(client, user))
    assert got["triggerData"]["path"] == path
    assert got["inputData"][0]["body"]["nul"] == f"x{R}y"

    text = client.post(
        f"/webhook/{path}", content=b"raw\x00nul \xff", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 200, text.text
    assert text.json()[0]["body"] == f"raw{R}nul {R}"
    readable(client, user, _last_run(client, user))

    too_deep = client.post(
        f"/webhook/{path}", content=nested(100_000), headers={"Content-Type": "application/json"}
    )
    assert "nests too deeply" in problem(too_deep, 400)["detail"]
    problem(client.post(f"/webhook/{path}", content=b"x" * TEN_MB), 413)
    no_projector_parked(database_url)


def _last_run(client: Client, user: Account) -> str:
    listed = read(client, user, "/executions", executions_head(client), limit=1)
    execution_id: str = listed["items"][0]["id"]
    return execution_id


NUL = "x\u0000y"
FREE_TEXT: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/workflows", {"name": NUL}),
    ("POST", "/workflows", {"name": "ok", "description": NUL}),
    ("POST", "/workflows", {"name": "ok", "tags": [NUL]}),
    ("POST", "/workflows", {"name": "ok", "category": NUL}),
    ("POST", "/workflows", {"name": "ok", "definition": {"variables": {NUL: 1}}}),
    ("POST", "/workflows", {"name": "n" * 100_000}),
    ("PATCH", "/workflows/{id}", {"name": NUL}),
    ("PATCH", "/workflows/{id}", {"settings": {"deep": json.loads(nested(200))}}),
    ("PUT", "/workflows/{id}/definition", {"nodes": [], "changeMessage": NUL}),
    ("POST", "/workflows/{id}/comments", {"content": NUL}),
    ("POST", "/credentials", {"name": NUL, "type": "API_KEY", "data": {"apiKey": "k"}}),
    (
        "POST",
        "/credentials",
        {"name": "ok", "description": NUL, "type": "API_KEY", "data": {"apiKey": "k"}},
    ),
    ("PATCH", "/me", {"name": NUL}),
    ("POST", "/me/api-keys", {"name": NUL, "scopes": []}),
]


def stored(database_url: str) -> list[Any]:
    """The head of each event log a free-text route writes to."""
    return rows(
        database_url,
        "SELECT (SELECT max(notification_id) FROM workflows_events), "
        "(SELECT max(notification_id) FROM identity_events), "
        "(SELECT max(notification_id) FROM credentials_events)",
    )


@pytest.mark.parametrize(("method", "route", "body"), FREE_TEXT)
def test_typed_free_text_that_cannot_be_stored_is_422_and_changes_nothing(
    client: Client, user: Account, database_url: str, method: str, route: str, body: Any
) -> None:
    workflow_id = create(client, user)["id"]
    before = stored(database_url)
    url = f"{API}{route.format(id=workflow_id)}"
    refused = client.request(method, url, json=body, headers=user)
    problem(refused, 422)
    half = client.request(
        method,
        url,
        content=json.dumps(body).replace("\\u0000", "\\ud800").encode(),
        headers={**user, "Content-Type": "application/json"},
    )
    assert half.status_code in (400, 422), half.text
    assert stored(database_url) == before
    no_projector_parked(database_url)


def test_a_ten_megabyte_name_is_refused_before_it_is_read(client: Client, user: Account) -> None:
    body = json.dumps({"name": "n" * TEN_MB, "requestId": str(uuid.uuid4())})
    problem(
        client.post(
            f"{API}/workflows",
            content=body.encode(),
            headers={**user, "Content-Type": "application/json"},
        ),
        413,
    )
