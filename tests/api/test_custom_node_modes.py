"""Execution modes of WEBHOOK custom nodes through the API: an ASYNC service answers 202 with a
job id and the node polls for the job's items; modes a runtime cannot honour are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from tests.api.helpers import API, Account, create, live_events, problem, run
from tests.api.test_custom_node_runs import graph, published_node, ran
from tests.api.test_custom_nodes import refused_creation
from tests.http_doubles import JSONHandler

Client = TestClient[Any]


@dataclass
class JobService:
    """A node service on 127.0.0.1 that takes each call as a job: POST answers `accepted`
    (202 and a job id by default); polls answer 202 `pending` times, then `done`."""

    accepted: tuple[int, Any] = (202, {"jobId": "job-1"})
    pending: int = 2
    done: tuple[int, Any] = (200, {"items": [{"finished": True}]})
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(JSONHandler):
            def _record(self, body: bytes) -> None:
                service.requests.append((self.command, self.path, self.lower_headers(), body))

            def do_POST(self) -> None:
                self._record(self.body())
                self.answer(*service.accepted)

            def do_GET(self) -> None:
                self._record(b"")
                polls = sum(1 for method, *_ in service.requests if method == "GET")
                if polls <= service.pending:
                    self.answer(202, {"status": "RUNNING"})
                else:
                    self.answer(*service.done)

        return Handler


def async_node(
    client: Client, author: Account, url: str, mode: str = "ASYNC", **body: Any
) -> dict[str, Any]:
    """A published WEBHOOK node of `mode` calling `url`, without retries."""
    return published_node(
        client,
        author,
        implementation={"runtime": "WEBHOOK", "url": url, "retries": 0},
        settingsSchema={},
        executionMode=mode,
        **body,
    )


def test_an_async_node_waits_for_its_job_by_polling(
    client: Client, user: Account, serve: Any
) -> None:
    service = JobService()
    node = async_node(client, user, serve(service))
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{"n": 1}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"finished": True}]
    methods = [(method, path) for method, path, *_ in service.requests]
    assert methods == [("POST", "/run")] + [("GET", "/run/jobs/job-1")] * 3
    assert json.loads(service.requests[0][3])["mode"] == "ASYNC"
    secret = node["signingSecret"].encode()
    for _, _, headers, _ in service.requests[1:]:
        signed = headers["x-a2n-timestamp"].encode() + b".job-1"
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        assert headers["x-a2n-signature"] == f"sha256={expected}"


def test_an_async_service_may_answer_at_once(client: Client, user: Account, serve: Any) -> None:
    service = JobService(accepted=(200, [{"quick": True}]))
    node = async_node(client, user, serve(service))
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{}])
    assert done["outputItems"] == [{"quick": True}]
    assert len(service.requests) == 1


def signed_callback(client: Client, url: str, secret: str, result: Any, **headers: str) -> Any:
    body = json.dumps(result).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return client.post(
        urlsplit(url).path,
        content=body,
        headers={
            "content-type": "application/json",
            "x-a2n-timestamp": timestamp,
            "x-a2n-signature": f"sha256={digest.hexdigest()}",
            **headers,
        },
    )


def eventually(check: Any, seconds: float = 30) -> Any:
    """What `check` answers once it answers something, waiting at most `seconds`."""
    deadline = time.monotonic() + seconds
    while (found := check()) is None:
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.1)
    return found


def test_an_async_node_takes_its_result_from_a_signed_callback(
    client: Client, user: Account, serve: Any
) -> None:
    service = JobService(accepted=(202, {}))
    node = async_node(client, user, serve(service))
    workflow = create(client, user, definition=graph(f"{node['name']}@1.0.0", {}))
    started = run(client, user, workflow["id"], [{"n": 1}], test="true")
    sent = eventually(lambda: service.requests[0][3] if service.requests else None)
    url = json.loads(sent)["callbackUrl"]
    assert url.startswith("http://127.0.0.1:8000/api/v1/node-jobs/")
    secret = node["signingSecret"]

    unsigned = client.post(urlsplit(url).path, json=[{"x": 1}])
    assert problem(unsigned, 401)["detail"].startswith("the callback must be signed")
    forged = signed_callback(client, url, "0" * 64, [{"x": 1}])
    assert problem(forged, 401)["detail"] == "the callback's signature does not match"
    stale = signed_callback(client, url, secret, [{"x": 1}], **{"x-a2n-timestamp": "1"})
    problem(stale, 401)
    not_json = client.post(
        urlsplit(url).path, content=b"{", headers={"content-type": "application/json"}
    )
    problem(not_json, 400)
    unknown = signed_callback(client, f"{API}/node-jobs/{uuid.uuid4()}", secret, [])
    problem(unknown, 404)

    answered = signed_callback(client, url, secret, {"items": [{"called": "back"}]})
    assert (answered.status_code, answered.json()) == (202, {"accepted": True})
    problem(signed_callback(client, url, secret, [{"again": True}]), 409)

    def ended() -> Any:
        found = client.get(f"{API}/executions/{started['id']}", headers=user).json()
        return found if found["status"] not in ("QUEUED", "RUNNING") else None

    done = eventually(ended)
    assert done["status"] == "SUCCESS", done
    assert [len(r) for r in service.requests] == [4]  # no poll: the 202 named no job
    nodes = client.get(f"{API}/executions/{started['id']}/nodes", headers=user).json()
    assert nodes["items"][1]["outputData"] == {"output": [{"called": "back"}]}


@dataclass
class StreamService:
    """A node service on 127.0.0.1 that answers with `lines` (NDJSON), one at a time."""

    lines: list[str]
    status: int = 200

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                self.body()
                self.send_response(service.status)
                self.send_header("content-type", "application/x-ndjson")
                self.send_header("connection", "close")
                self.end_headers()
                for line in service.lines:
                    self.wfile.write(line.encode() + b"\n")
                    self.wfile.flush()
                    time.sleep(0.05)
                self.close_connection = True

        return Handler


def stream_node(client: Client, author: Account, url: str) -> dict[str, Any]:
    return async_node(client, author, url, "STREAM", outputs=["rows"])


def test_a_stream_node_shows_its_items_in_live_progress_as_they_come(
    client: Client, user: Account, serve: Any
) -> None:
    service = StreamService(['{"n": 1}', "", '{"n": 2}', '{"n": 3}'])
    node = stream_node(client, user, serve(service))
    mark = {"id": "mark", "type": "set", "name": "Mark", "config": {"fields": {"seen": True}}}
    wired = graph(
        f"{node['name']}@1.0.0",
        {},
        nodes=[mark],
        connections=[{"source": "custom", "target": "mark", "sourceHandle": "rows"}],
    )
    done = ran(client, user, wired, [{}])
    assert done["status"] == "SUCCESS", done
    assert done["outputItems"] == [{"n": n, "seen": True} for n in (1, 2, 3)]
    events = live_events(client, user, done["id"])
    custom = [
        e.event for e in events if isinstance(e.data, dict) and e.data.get("nodeId") == "custom"
    ]
    assert custom == ["NodeStarted"] + ["NodeItemsEmitted"] * 3 + ["NodeSucceeded"]
    emitted = [e.data for e in events if e.event == "NodeItemsEmitted"]
    assert [(e["nodeId"], e["items"]) for e in emitted] == [
        ("custom", [{"n": 1}]),
        ("custom", [{"n": 2}]),
        ("custom", [{"n": 3}]),
    ]


@pytest.mark.parametrize(
    ("lines", "status", "message"),
    [
        (['{"n": 1}', "[1"], 200, "did not answer JSON"),
        (['{"n": 1}', "7"], 200, "must return a list of objects"),
        ([], 503, "the node service answered 503"),
    ],
    ids=["broken-line", "not-an-item", "server-error"],
)
def test_a_broken_stream_fails_the_node(
    client: Client, user: Account, serve: Any, lines: list[str], status: int, message: str
) -> None:
    node = stream_node(client, user, serve(StreamService(lines, status)))
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{}])
    assert done["status"] == "FAILED", done
    assert message in done["errorMessage"]


@pytest.mark.parametrize(
    ("service", "body", "message"),
    [
        (JobService(accepted=(202, {"jobId": 1})), {}, "answered 202 without a usable jobId"),
        (JobService(accepted=(202, {"jobId": "../x"})), {}, "without a usable jobId"),
        (JobService(done=(404, {})), {}, "GET "),
        (JobService(pending=1000), {"timeout": 1200}, "job job-1 did not finish within 1.2"),
    ],
    ids=["no-job-id", "bad-job-id", "job-gone", "never-done"],
)
def test_async_jobs_that_go_wrong_fail_the_node(
    client: Client,
    user: Account,
    serve: Any,
    service: JobService,
    body: dict[str, Any],
    message: str,
) -> None:
    node = async_node(client, user, serve(service), **body)
    done = ran(client, user, graph(f"{node['name']}@1.0.0", {}), [{}])
    assert done["status"] == "FAILED", done
    assert message in done["errorMessage"]


@pytest.mark.parametrize(
    ("implementation", "mode", "message"),
    [
        ({"runtime": "PYTHON", "entryPoint": "example.shout"}, "ASYNC", "for the WEBHOOK runtime"),
        ({"runtime": "NODE", "source": "module.exports = (i) => i;"}, "ASYNC", "WEBHOOK runtime"),
        ({"runtime": "NODE", "source": "module.exports = (i) => i;"}, "STREAM", "WEBHOOK runtime"),
    ],
    ids=["python-async", "node-async", "node-stream"],
)
def test_modes_a_runtime_cannot_honour_are_422_and_record_nothing(
    client: Client, user: Account, implementation: dict[str, Any], mode: str, message: str
) -> None:
    body = {"implementation": implementation, "executionMode": mode}
    [error] = refused_creation(client, user, body)
    assert error["pointer"] == "/executionMode"
    assert message in error["message"]
