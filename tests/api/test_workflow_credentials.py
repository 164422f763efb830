"""Runs that use credentials: an http_request node authenticates with a credential of the run's
user (owned or shared to them), each use is logged with its execution, and the secret stays out
of the run's events, read models and answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import Account, published, read, run, sign_up
from tests.api.test_credentials import create_credential, share_credential
from tests.integration.helpers import rows

Client = TestClient[Any]
SECRET = "sk_live_run-secret-4242"


class Echo(BaseHTTPRequestHandler):
    """Answers every request with the headers it received."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/quiet"):
            body = json.dumps({"received": sorted(k.lower() for k in self.headers)}).encode()
        else:
            body = json.dumps({"headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def calling(url: str, credential_id: str) -> dict[str, Any]:
    """A workflow whose one http_request node calls `url` with the credential."""
    return {
        "nodes": [
            {"id": "start", "type": "manual_trigger"},
            {
                "id": "call",
                "name": "Call",
                "type": "http_request",
                "config": {"url": url, "credentials": credential_id},
            },
        ],
        "connections": [{"source": "start", "target": "call"}],
    }


def test_a_run_authenticates_with_the_users_credential(
    client: Client, user: Account, echo: str, database_url: str
) -> None:
    credential = create_credential(client, user, SECRET, name="Echo key")
    ended = run(client, user, published(client, user, calling(echo, credential["id"])), wait="true")
    assert ended["status"] == "SUCCESS", ended
    # The remote end got the key; the run's output holds the response, which echoes it here,
    # so look at what A2N itself wrote: the request's own headers are not kept anywhere.
    assert ended["outputItems"][0]["response"]["headers"]["x-api-key"] == SECRET
    # The run recorded the use in the credentials log; read once that log's projection has it.
    head = client.app.state.services.credentials.app.head_position()
    usage = read(client, user, f"/credentials/{credential['id']}/usage", head)
    assert ended["id"] in {entry["executionId"] for entry in usage["items"]}
    logged = rows(
        database_url,
        "SELECT node_id FROM credential_usage_log WHERE credential_id = %s AND execution_id = %s",
        (credential["id"], ended["id"]),
    )
    assert logged == [("call",)]


def test_the_secret_is_nowhere_in_the_runs_events_or_rows(
    client: Client, user: Account, echo: str, database_url: str
) -> None:
    credential = create_credential(client, user, SECRET, name="Quiet key")
    ended = run(
        client,
        user,
        published(client, user, calling(echo + "quiet", credential["id"])),
        wait="true",
    )
    assert ended["status"] == "SUCCESS", ended
    assert "x-api-key" in ended["outputItems"][0]["response"]["received"]  # it was sent
    read(client, user, f"/executions/{ended['id']}", ended["position"])
    stored = rows(
        database_url,
        "SELECT convert_from(state, 'UTF8') FROM executions_events WHERE originator_id = %s "
        "UNION ALL SELECT to_jsonb(e)::text FROM execution e WHERE id = %s "
        "UNION ALL SELECT to_jsonb(n)::text FROM execution_node_state n WHERE execution_id = %s "
        "UNION ALL SELECT to_jsonb(l)::text FROM execution_log l WHERE execution_id = %s",
        (ended["id"],) * 4,
    )
    assert len(stored) > 4
    assert all(SECRET not in text for (text,) in stored)


def test_a_credential_shared_for_use_works_and_anothers_does_not(
    client: Client, user: Account, echo: str
) -> None:
    owner = sign_up(client)
    shared = create_credential(client, owner, SECRET, name="Shared key")
    share_credential(client, owner, shared["id"], user.user_id)
    allowed = run(client, user, published(client, user, calling(echo, shared["id"])), wait="true")
    assert allowed["status"] == "SUCCESS", allowed

    private = create_credential(client, sign_up(client), SECRET, name="Not yours")
    refused = run(client, user, published(client, user, calling(echo, private["id"])), wait="true")
    assert refused["status"] == "FAILED"
    assert "may not use it" in refused["errorMessage"]
    assert SECRET not in json.dumps(refused)
