"""Node runtimes that reach outside the process: http_request against a real local HTTP server,
and the code node's sandboxed Python and JavaScript child processes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psutil
import pytest
import uvloop

from application.executions.nodes import (
    RUNTIMES,
    LogLine,
    NodeFailure,
    NodeResult,
    RuntimeLimits,
    http_client,
)
from tests.loopback import LOOPBACK_EGRESS
from tests.node_calls import Services, node_call, run_node
from tests.processes import all_gone, processes, sleep_marker, worker_process

SECRET = "hunter2-" + uuid.uuid4().hex
NOT_JSON = "the code returned items that are not JSON: "


class Handler(BaseHTTPRequestHandler):
    """A small HTTP service with one path per behaviour the http_request node must handle."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        self._route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        first, _, rest = url.path.strip("/").partition("/")
        if first == "echo":
            self._send(
                200,
                {"content-type": "application/json"},
                json.dumps(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": query,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(body) if body else None,
                    }
                ).encode(),
            )
        elif first == "text":
            self._send(
                200,
                {"content-type": "text/plain; charset=utf-8", "x-kind": "text"},
                "grüße".encode(),
            )
        elif first == "status":
            status = int(rest)
            self._send(
                status,
                {"content-type": "application/problem+json", "retry-after": "7"},
                json.dumps({"title": f"status {status}"}).encode(),
            )
        elif first == "slow":
            time.sleep(float(query.get("seconds", "2")))
            self._send(200, {"content-type": "text/plain"}, b"late")
        elif first == "redirect":
            self._send(int(query.get("code", "302")), {"location": query["to"]}, b"")
        elif first == "cookie":
            self._send(200, {"set-cookie": "session=abc; Path=/"}, b"set")
        elif first == "big":
            size = int(query["bytes"])
            if query.get("declared") == "yes":
                self._send(200, {"content-type": "text/plain"}, b"x" * size)
            else:  # no length: the body ends when the connection closes
                self.send_response(200)
                self.send_header("connection", "close")
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the node may stop reading early
                    self.wfile.write(b"x" * size)
                self.close_connection = True
        elif first == "json":  # answers the JSON given in ?v=
            self._send(200, {"content-type": "application/json"}, query["v"].encode())
        elif first == "badjson":
            self._send(200, {"content-type": "application/json"}, b"{not json")
        else:
            self._send(404, {"content-type": "text/plain"}, b"no such path")

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def http(config: dict[str, Any], items: list[Any] | None = None, **kw: Any) -> NodeResult:
    result, _ = run_node("http_request", config, items if items is not None else [{}], **kw)
    return result


def http_failure(config: dict[str, Any], items: list[Any] | None = None, **kw: Any) -> NodeFailure:
    with pytest.raises(NodeFailure) as caught:
        http(config, items, **kw)
    return caught.value


# -- http_request ---------------------------------------------------------------------------


def test_http_request_sends_one_request_per_item_with_evaluated_config(server: str) -> None:
    config = {
        "url": server + "/echo/{{ $json.id }}",
        "method": "POST",
        "headers": {"X-Order": "{{ $json.id }}", "X-Static": "yes"},
        "query": {"page": "{{ $json.id * 10 }}", "draft": False, "q": "a b&c"},
        "body": {"order": "{{ $json }}", "run": "{{ $execution.id }}"},
    }
    result = http(config, [{"id": 1}, {"id": 2}])
    answers = [item["response"] for item in result.outputs["output"]]
    assert [a["path"] for a in answers] == ["/echo/1", "/echo/2"]
    assert answers[1]["method"] == "POST"
    assert answers[1]["query"] == {"page": "20", "draft": "false", "q": "a b&c"}
    assert answers[1]["headers"]["x-order"] == "2"
    assert answers[1]["headers"]["x-static"] == "yes"
    assert answers[1]["headers"]["content-type"] == "application/json"
    assert answers[1]["body"] == {"order": {"id": 2}, "run": "exec-1"}
    first = result.outputs["output"][0]
    assert first["statusCode"] == 200
    assert first["headers"]["content-type"] == "application/json"


def test_http_request_gives_text_unless_the_response_is_json(server: str) -> None:
    [item] = http({"url": server + "/text"}).outputs["output"]
    assert item["statusCode"] == 200
    assert item["response"] == "grüße"
    assert item["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert item["headers"]["x-kind"] == "text"


def test_http_request_keeps_a_json_response_that_does_not_parse_as_text(server: str) -> None:
    result = http({"url": server + "/badjson"})
    assert result.outputs["output"][0]["response"] == "{not json"
    assert [line.level for line in result.logs] == ["WARN"]


def test_http_request_head_has_an_empty_response(server: str) -> None:
    [item] = http({"url": server + "/echo", "method": "HEAD"}).outputs["output"]
    assert (item["statusCode"], item["response"]) == (200, "")


@pytest.mark.parametrize(
    ("path", "items"),
    [
        ('/json?v=[{"id": 1}, {"id": 2}, 3]', [{"id": 1}, {"id": 2}, {"data": 3}]),
        ('/json?v={"id": 1}', [{"id": 1}]),
        ("/json?v=[]", []),
        ("/text", [{"data": "grüße"}]),
        ("/cookie", [{"data": "set"}]),
    ],
)
def test_http_request_emits_the_body_as_items(server: str, path: str, items: list[Any]) -> None:
    result = http({"url": server + path, "emit": "body"}, [{"n": 1}, {"n": 2}])
    assert result.outputs == {"output": items * 2}  # the bodies of both requests, in order


def test_http_request_emits_an_empty_body_as_one_empty_item(server: str) -> None:
    result = http({"url": server + "/echo", "method": "HEAD", "emit": "body"})
    assert result.outputs == {"output": [{}]}


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False), (422, False)],
)
def test_http_request_fails_on_an_error_status(server: str, status: int, retryable: bool) -> None:
    error = http_failure({"url": server + f"/status/{status}?token=secret"})
    assert error.message.startswith(f"GET {server}/status/{status} answered {status}")
    assert "secret" not in error.message
    assert error.retryable is retryable
    assert error.details["statusCode"] == status
    assert error.details["response"] == {"title": f"status {status}"}
    assert error.details["retryAfter"] == "7"


def test_http_request_timeout_is_retryable(server: str) -> None:
    error = http_failure({"url": server + "/slow?seconds=2", "timeout": 200})
    assert error.message == f"GET {server}/slow: no complete answer within 0.2 s"
    assert error.retryable is True


def test_http_request_connection_refused_is_retryable() -> None:
    port = _closed_port()
    error = http_failure({"url": f"http://127.0.0.1:{port}/x"})
    assert error.message.startswith(f"GET http://127.0.0.1:{port}/x: ")
    assert error.retryable is True


def test_http_request_follows_redirects_to_http(server: str) -> None:
    target = server + "/echo/after"
    [item] = http(
        {"url": f"{server}/redirect?code=303&to={target}", "method": "POST", "body": {"a": 1}}
    ).outputs["output"]
    assert item["response"]["path"] == "/echo/after"
    assert item["response"]["method"] == "GET"  # 303 turns the request into a GET


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://h/x"])
def test_http_request_never_follows_a_redirect_to_another_scheme(server: str, target: str) -> None:
    error = http_failure({"url": f"{server}/redirect?to={target}"})
    assert error.message == f"GET {server}/redirect redirected to a non-http(s) URL; not followed"
    assert error.retryable is False


def test_http_request_stops_after_too_many_redirects(server: str) -> None:
    loop = f"{server}/redirect?to=/redirect%3Fto%3D/echo"  # two hops
    error = http_failure({"url": loop}, limits=RuntimeLimits(http_max_redirects=1))
    assert error.message == f"GET {server}/redirect: more than 1 redirects"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x", "{{ $json.where }}", "http://", "not a url"],
)
def test_http_request_refuses_urls_that_are_not_http(url: str) -> None:
    error = http_failure({"url": url}, [{"where": "javascript:alert(1)"}])
    assert error.message == "config /url: must be an http:// or https:// URL"
    assert error.retryable is False


@pytest.mark.parametrize("declared", ["yes", "no"])
def test_http_request_caps_the_response_size(server: str, declared: str) -> None:
    limits = RuntimeLimits(http_max_response_bytes=1000)
    at_limit = http({"url": f"{server}/big?bytes=1000&declared={declared}"}, limits=limits)
    assert at_limit.outputs["output"][0]["response"] == "x" * 1000
    error = http_failure({"url": f"{server}/big?bytes=5000&declared={declared}"}, limits=limits)
    assert error.message == f"GET {server}/big: the response is larger than 1000 bytes"


@pytest.mark.parametrize("shared_client", ["http_client", "plain AsyncClient"])
def test_cookies_of_one_run_never_reach_another(server: str, shared_client: str) -> None:
    """The worker shares one client between all runs (of all users)."""

    async def main() -> Any:
        client = (
            http_client(LOOPBACK_EGRESS) if shared_client == "http_client" else httpx.AsyncClient()
        )
        async with client:
            services = Services(client)
            for url in (f"{server}/cookie", f"{server}/redirect?to=/echo"):
                call = node_call("http_request", {"url": url}, [{}], services=services)
                result = await RUNTIMES["http_request"].run(call)
            return result.outputs["output"][0]["response"]

    assert "cookie" not in asyncio.run(main())["headers"]


CREDENTIAL_ID = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e0c01"


def credential(kind: str, data: dict[str, str], **configuration: str) -> dict[str, Any]:
    return {
        CREDENTIAL_ID: {
            "id": CREDENTIAL_ID,
            "name": "Service",
            "type": kind,
            "configuration": configuration,
            "data": data,
        }
    }


@pytest.mark.parametrize(
    ("kind", "data", "configuration", "header", "expected"),
    [
        ("API_KEY", {"apiKey": SECRET}, {}, "x-api-key", SECRET),
        ("API_KEY", {"apiKey": SECRET}, {"name": "X-Token"}, "x-token", SECRET),
        ("BEARER_TOKEN", {"token": SECRET}, {}, "authorization", f"Bearer {SECRET}"),
        (
            "OAUTH",
            {"clientId": "c", "clientSecret": "s", "accessToken": SECRET},
            {},
            "authorization",
            f"Bearer {SECRET}",
        ),
        (
            "BASIC_AUTH",
            {"username": "ada", "password": SECRET},
            {},
            "authorization",
            "Basic " + base64.b64encode(f"ada:{SECRET}".encode()).decode(),
        ),
    ],
    # Ids without the random secret: parallel workers must collect the same test names.
    ids=["api-key", "api-key-named-header", "bearer", "oauth", "basic"],
)
def test_http_request_sends_the_credential_as_its_type_says(
    server: str,
    kind: str,
    data: dict[str, str],
    configuration: dict[str, str],
    header: str,
    expected: str,
) -> None:
    result, services = run_node(
        "http_request",
        {"url": server + "/echo", "credentials": CREDENTIAL_ID},
        [{}, {}],
        credentials=credential(kind, data, **configuration),
    )
    for answer in result.outputs["output"]:
        assert answer["response"]["headers"][header] == expected
    assert services.used == [(CREDENTIAL_ID, "n1")]  # opened (and its use recorded) once


def test_an_api_key_may_travel_as_a_query_parameter(server: str) -> None:
    result, _ = run_node(
        "http_request",
        {"url": server + "/echo", "credentials": CREDENTIAL_ID},
        [{}],
        credentials=credential("API_KEY", {"apiKey": SECRET}, **{"in": "query", "name": "key"}),
    )
    assert result.outputs["output"][0]["response"]["query"] == {"key": SECRET}


def test_a_credential_goes_only_under_its_base_url(server: str) -> None:
    with pytest.raises(NodeFailure) as refused:
        run_node(
            "http_request",
            {"url": server + "/echo", "credentials": CREDENTIAL_ID},
            [{}],
            credentials=credential(
                "BEARER_TOKEN", {"token": SECRET}, baseUrl="https://api.example.com/v1"
            ),
        )
    assert "may only be sent to URLs under https://api.example.com/v1" in refused.value.message
    assert SECRET not in refused.value.message
    allowed, _ = run_node(
        "http_request",
        {"url": server + "/echo/x", "credentials": CREDENTIAL_ID},
        [{}],
        credentials=credential("BEARER_TOKEN", {"token": SECRET}, baseUrl=server + "/echo"),
    )
    assert allowed.outputs["output"][0]["response"]["headers"]["authorization"].endswith(SECRET)


def test_a_credential_does_not_follow_a_redirect_to_another_host(server: str) -> None:
    elsewhere = server.replace("127.0.0.1", "localhost") + "/echo"
    result, _ = run_node(
        "http_request",
        {"url": f"{server}/redirect?to={elsewhere}", "credentials": CREDENTIAL_ID},
        [{}],
        credentials=credential("API_KEY", {"apiKey": SECRET}, name="X-Token"),
    )
    headers = result.outputs["output"][0]["response"]["headers"]
    assert headers["host"].startswith("localhost:")  # it did reach the other host
    assert "x-token" not in headers


def test_a_credential_the_run_may_not_use_fails_the_node(server: str) -> None:
    error = http_failure({"url": server + "/echo", "credentials": str(uuid.uuid4())})
    assert "may not be used" in error.message


# -- code: Python ---------------------------------------------------------------------------


def code(source: str, items: list[Any] | None = None, **kw: Any) -> NodeResult:
    result, _ = run_node("code", {"code": source, **kw.pop("config", {})}, items or [], **kw)
    return result


def code_failure(source: str, items: list[Any] | None = None, **kw: Any) -> NodeFailure:
    with pytest.raises(NodeFailure) as caught:
        code(source, items, **kw)
    return caught.value


def test_python_code_transforms_items_and_logs_its_prints() -> None:
    source = """
import sys
total = sum(item["n"] for item in items)
print("summing", len(items), "items")
print("careful", file=sys.stderr)
return [{**item, "share": item["n"] / total} for item in items]
"""
    result = code(source, [{"n": 1}, {"n": 3}])
    assert result.outputs == {"output": [{"n": 1, "share": 0.25}, {"n": 3, "share": 0.75}]}
    assert [(line.level, line.message) for line in result.logs] == [
        ("INFO", "summing 2 items"),
        ("WARN", "careful"),
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\nraise ValueError('bad total: ' + str(x))", "ValueError: bad total: 1 (line 2)"),
        (
            "return [{'a': 1}, {'b': undefined_name}]",
            "NameError: name 'undefined_name' is not defined (line 1)",
        ),
        ("if True\n    return items", "SyntaxError: expected ':' (line 1)"),
        ("import sys\nsys.exit(3)", "SystemExit: 3 (line 2)"),
        ("return 42", "the code must return a list of objects, not a number"),
        ("return [{'a': 1}, 'b']", "the code must return a list of objects; item 1 is a string"),
        ("items.append({})", "the code returned nothing; it must return a list of objects"),
        (
            "import datetime\nreturn [{'at': datetime.date.today()}]",
            NOT_JSON + "Object of type date is not JSON serializable",
        ),
        (
            "return [{'x': float('nan')}]",
            NOT_JSON + "Out of range float values are not JSON compliant",
        ),
    ],
)
def test_python_code_errors_are_the_node_failure(source: str, message: str) -> None:
    error = code_failure(source, [{}])
    assert error.message == message
    assert error.retryable is False


def test_python_code_runs_in_an_empty_directory_with_the_standard_library_only() -> None:
    source = """
import os, sys
try:
    import httpx
    found = True
except ImportError:
    found = False
return [{"cwd": os.getcwd(), "files": os.listdir("."), "httpx": found}]
"""
    [item] = code(source).outputs["output"]
    assert item == {"cwd": "/tmp", "files": [], "httpx": False}  # a /tmp of its own


def test_python_code_cannot_read_the_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A2N_FAKE_SECRET", SECRET)
    result = code(READ_ENVIRONMENT)
    assert SECRET not in json.dumps(result.outputs)
    [item] = result.outputs["output"]
    assert "A2N_FAKE_SECRET" not in item["environ"]
    assert item["proc"] == "PermissionError"


READ_ENVIRONMENT = """
import os
try:
    with open(f"/proc/{os.getppid()}/environ", "rb") as f:
        proc = f.read().decode(errors="replace")
except OSError as error:
    proc = type(error).__name__
return [{"environ": dict(os.environ), "proc": proc}]
"""


def test_a_worker_that_is_not_root_hides_its_environment_from_the_code() -> None:
    """Production workers run as an ordinary user, the same the code runs as: the worker must
    make itself unreadable through /proc. A fresh worker process is started with the secret in
    its environment (as nobody when the tests run as root)."""
    worker = worker_process(
        f"""
import json
from tests.node_calls import run_node
result, _ = run_node("code", {{"code": {READ_ENVIRONMENT!r}}})
print(json.dumps(result.outputs))
""",
        env={"A2N_FAKE_SECRET": SECRET},
    )
    stdout, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert SECRET not in stdout
    [item] = json.loads(stdout)["output"]
    assert item["proc"] == "PermissionError"


def test_python_code_is_stopped_at_the_timeout_with_what_it_started() -> None:
    marker = sleep_marker()
    source = f"""
import subprocess
subprocess.Popen(["/bin/sleep", "{marker}"])
while True:
    pass
"""
    error = code_failure(source, limits=RuntimeLimits(code_timeout_seconds=1))
    assert error.message == "the code did not finish within 1 s and was stopped"
    assert all_gone(lambda: psutil.Process().children(recursive=True))
    assert all_gone(lambda: processes(["/bin/sleep", marker]))


def test_python_code_that_leaves_a_process_behind_still_ends_when_it_returns() -> None:
    """A process in its own session escapes the kill of the code's process group and holds
    the code's output pipes open; the node must not wait for it."""
    marker = sleep_marker()
    source = f"""
import subprocess
subprocess.Popen(["/bin/sleep", "{marker}"], start_new_session=True)
print("started")
return [{{"done": True}}]
"""
    try:
        result = code(source, limits=RuntimeLimits(code_timeout_seconds=20))
        assert result.outputs == {"output": [{"done": True}]}
        assert [line.message for line in result.logs] == ["started"]
    finally:
        for process in processes(["/bin/sleep", marker]):
            process.kill()


def test_code_runs_on_uvloop_too() -> None:
    """The API server's event loop: `a2n up` runs the worker on it."""

    async def main() -> list[Any]:
        async with httpx.AsyncClient() as client:
            services = Services(client, RuntimeLimits(code_timeout_seconds=1))
            ran = []
            for source in ("print('hi')\nreturn [{'n': len(items)}]", "while True:\n    pass"):
                call = node_call("code", {"code": source}, [{}, {}], services=services)
                try:
                    result = await RUNTIMES["code"].run(call)
                    ran.append((result.outputs, [line.message for line in result.logs]))
                except NodeFailure as failed:
                    ran.append(failed.message)
            return ran

    assert uvloop.run(main()) == [
        ({"output": [{"n": 2}]}, ["hi"]),
        "the code did not finish within 1 s and was stopped",
    ]


def test_python_code_is_limited_in_memory() -> None:
    error = code_failure(
        "block = bytearray(512 * 1024 * 1024)\nreturn [{}]",
        limits=RuntimeLimits(code_memory_mb=128),
    )
    assert error.message == "the code ran out of memory (limit 128 MB) (line 1)"


def test_python_code_output_and_prints_are_capped() -> None:
    limits = RuntimeLimits(max_output_bytes=10_000, max_log_bytes=100)
    error = code_failure("return [{'x': 'y' * 20_000}]", limits=limits)
    assert error.message == "the code returned more than 10000 bytes of items"
    result = code("for i in range(1000):\n    print('line', i)\nreturn []", limits=limits)
    assert result.outputs == {"output": []}
    assert result.logs[0].message == "line 0"
    assert result.logs[-1] == LogLine(
        "WARN", "the code printed more than 100 bytes; the rest is not kept"
    )
    assert len(result.logs) < 20


# -- code: JavaScript -----------------------------------------------------------------------


def test_javascript_code_transforms_items_and_logs_its_prints() -> None:
    assert shutil.which("node"), "these tests need Node.js (node) on the machine"
    source = """
console.log("doubling", items.length);
console.error("careful");
await new Promise((resolve) => setTimeout(resolve, 10));
return items.map((item) => ({ ...item, n: item.n * 2, env: Object.keys(process.env) }));
"""
    result = code(source, [{"n": 1}, {"n": 4}], config={"language": "javascript"})
    assert result.outputs == {"output": [{"n": 2, "env": []}, {"n": 8, "env": []}]}
    assert [(line.level, line.message) for line in result.logs] == [
        ("INFO", "doubling 2"),
        ("WARN", "careful"),
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("const a = 1;\nthrow new TypeError('bad total ' + a);", "TypeError: bad total 1 (line 2)"),
        ("return 'x';", "the code must return a list of objects, not a string"),
        ("items.push({});", "the code returned nothing; it must return a list of objects"),
        ("return [{a: 1n}];", "TypeError: Do not know how to serialize a BigInt"),
        ("while (true) {}", "the code did not finish within 1 s and was stopped"),
    ],
)
def test_javascript_code_failures(source: str, message: str) -> None:
    # Only the endless loop has the short timeout: on a busy machine Node.js alone may take a
    # second to start.
    limits = RuntimeLimits(code_timeout_seconds=1 if "while" in source else 30)
    error = code_failure(source, [{}], config={"language": "javascript"}, limits=limits)
    assert error.message == message


def test_javascript_code_is_limited_in_memory() -> None:
    error = code_failure(
        "const a = []; while (true) a.push({ i: a.length });",
        config={"language": "javascript"},
        limits=RuntimeLimits(code_memory_mb=64),
    )
    assert error.message == "the code ran out of memory (limit 64 MB)"


def test_javascript_code_may_use_webassembly_within_its_memory_limit() -> None:
    """V8 would reserve 10 GiB of address space per WebAssembly memory, which the memory limit
    forbids; Node's fetch needs one (undici parses HTTP in WebAssembly)."""
    source = """
const memory = new WebAssembly.Memory({ initial: 2 });
new Uint8Array(memory.buffer)[0] = 7;
return [{ bytes: memory.buffer.byteLength, first: new Uint8Array(memory.buffer)[0] }];
"""
    result = code(source, [{}], config={"language": "javascript"})
    assert result.outputs == {"output": [{"bytes": 2 * 65536, "first": 7}]}


def test_javascript_without_node_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    error = code_failure("return items;", config={"language": "javascript"})
    assert error.message.startswith("JavaScript code needs Node.js installed on the worker")
    assert error.retryable is False


# -- code written for n8n --------------------------------------------------------------------

N8N = {"itemFormat": "n8n"}
N8N_JS = {"language": "javascript", **N8N}


@pytest.mark.parametrize(
    ("source", "config"),
    [
        (  # n8n's Python: item.json reads by key and by attribute
            "out = []\n"
            "for item in _input.all():\n"
            "    ticket = item.json\n"
            "    ticket['subject'] = ticket.get('subject', '').strip()\n"
            "    ticket.seen = item.json.customer.get('tier') == 'gold'\n"
            "    out.append({'json': ticket})\n"
            "return out",
            N8N,
        ),
        (  # n8n's Code node JavaScript
            "const items = $input.all();\n"
            "for (const item of items) {\n"
            "  item.json.subject = item.json.subject.trim();\n"
            "  item.json.seen = item.json.customer.tier === 'gold';\n"
            "}\n"
            "return items;",
            N8N_JS,
        ),
        (  # n8n's legacy Function node: `items`, returning plain objects
            "return items.map(i => ({ ...i.json, subject: i.json.subject.trim(),"
            " seen: i.json.customer.tier === 'gold' }));",
            N8N_JS,
        ),
    ],
)
def test_n8n_code_sees_and_returns_n8n_items(source: str, config: dict[str, Any]) -> None:
    items = [{"subject": " Hi ", "customer": {"tier": "gold"}}, {"subject": "x", "customer": {}}]
    result = code(source, items, config=config)
    assert result.outputs == {
        "output": [
            {"subject": "Hi", "customer": {"tier": "gold"}, "seen": True},
            {"subject": "x", "customer": {}, "seen": False},
        ]
    }


@pytest.mark.parametrize(
    ("source", "config"),
    [
        ("return {'json': {'first': _input.first().json.n, 'last': _input.last().json.n}}", N8N),
        ("return { json: { first: $input.first().json.n, last: $input.last().json.n } };", N8N_JS),
    ],
)
def test_n8n_code_may_return_one_item(source: str, config: dict[str, Any]) -> None:
    result = code(source, [{"n": 1}, {"n": 2}], config=config)
    assert result.outputs == {"output": [{"first": 1, "last": 2}]}


def test_n8n_code_keeps_an_object_with_more_than_json_as_it_is() -> None:
    source = "return [{json: {a: 1}, extra: true}, {json: 5}];"
    result = code(source, [{}], config=N8N_JS)
    assert result.outputs == {"output": [{"json": {"a": 1}, "extra": True}, {"json": 5}]}


@pytest.mark.parametrize(
    ("source", "config", "message"),
    [
        ("x = 1\nreturn [_input.first().json.missing]", N8N, "AttributeError: missing (line 2)"),
        (
            "const a = 1;\nreturn $('Other').all();",
            N8N_JS,
            "ReferenceError: $ is not defined (line 2)",
        ),
    ],
)
def test_n8n_code_errors_keep_their_line(source: str, config: dict[str, Any], message: str) -> None:
    assert code_failure(source, [{}], config=config).message == message


def test_a2n_javascript_may_declare_what_n8n_code_is_given() -> None:
    source = "const $input = items.length;\nreturn [{ n: $input }];"
    result = code(source, [{}, {}], config={"language": "javascript"})
    assert result.outputs == {"output": [{"n": 2}]}


# -- helpers --------------------------------------------------------------------------------


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
