"""A protocol double of the Docker Engine API on a unix socket, or on TCP with TLS (a client
certificate required, as `dockerd --tlsverify`). It is NOT Docker: it runs no
container and isolates nothing. It answers the subset of the Engine API that
application/nodes/docker.py uses, in the wire format a Docker 20.10 engine was seen to answer
it (status codes, `{"message": ...}` errors, `201 {"Id", "Warnings"}` on create, `101 UPGRADED`
on attach followed by the raw stream: stdin in, stdout and stderr out as frames with an 8-byte
header `[stream, 0, 0, 0, big-endian uint32 size]`), so A2N's client can be tested on any machine.

Each image it knows is a Python function playing the container's program: it gets the bytes
the container read on stdin and returns an `Exit` (stdout, stderr, status), or `HANG` to run
until killed. An image may declare volumes (its VOLUME lines, answered in `Config.Volumes` of
the image's inspection): as Docker does, a container gets an anonymous volume (on the engine's
disk) for each declared path that its create body does not mount something on (a `Tmpfs` entry
or one of its `Mounts`). The double records each container's create body, anonymous volumes,
stdin, kill and removal. It keeps a clock of its own, which a test moves on (`advance`): the
containers' `Created` and every answer's `Date` come from it.
"""

from __future__ import annotations

import json
import posixpath
import re
import secrets
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.http_doubles import JSONHandler, serving

FRAME_BYTES = 7
"""The double cuts its output into frames this small, so the client must put them together."""
API_VERSION = "1.41"
"""The API version the double says it speaks (Docker 20.10's)."""
SETTLE_SECONDS = 30.0
"""The longest the double waits for a client's next step before it gives up on a container."""


@dataclass(frozen=True)
class Exit:
    """How a played program ends: what it printed and its exit status."""

    stdout: bytes = b""
    stderr: bytes = b""
    status: int = 0
    out_of_memory: bool = False


Program = Callable[[bytes], Exit]


def hang(stdin: bytes) -> Exit:
    """The image whose program runs until it is killed, never reading its stdin (the double
    never calls this: it waits for the kill or the removal instead)."""
    raise AssertionError("a hanging program never ends by itself")


@dataclass
class Container:
    id: str
    name: str
    config: dict[str, Any]
    stdin: bytes = b""
    status: int | None = None
    out_of_memory: bool = False
    killed: bool = False
    removed: bool = False
    anonymous_volumes: list[str] = field(default_factory=list)
    created: int = 0
    """When the engine made it (its clock, seconds since the epoch)."""
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class DockerEngineDouble:
    """The double's state: the images it plays, the containers it made, the requests it had."""

    images: dict[str, Program]
    volumes: dict[str, list[str]] = field(default_factory=dict)
    """The paths each image declares as volumes (none when not named)."""
    containers: dict[str, Container] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ahead: float = 0.0
    """Seconds the engine's clock is ahead of this machine's."""
    clients: list[str] = field(default_factory=list)
    """Over TLS: the common name of the client certificate of each request."""
    refused: list[str] = field(default_factory=list)
    """Over TLS: why each connection that failed did (a handshake refused, mostly)."""

    def created(self) -> list[Container]:
        with self.lock:
            return list(self.containers.values())

    def now(self) -> float:
        return time.time() + self.ahead

    def advance(self, seconds: float) -> None:
        """Time passes on the engine (its clock only: nothing it runs notices)."""
        self.ahead += seconds

    def handler(self) -> type[JSONHandler]:
        engine = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:
                self.route("GET")

            def do_POST(self) -> None:
                self.route("POST")

            def do_DELETE(self) -> None:
                self.route("DELETE")

            def route(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self.body()
                with engine.lock:
                    engine.requests.append((method, parts.path))
                    if isinstance(self.connection, ssl.SSLSocket):
                        engine.clients.append(_common_name(self.connection.getpeercert()))
                if method == "GET" and (found := re.fullmatch(r"/images/(.+)/json", parts.path)):
                    return self.image(found.group(1))
                if method == "POST" and parts.path == "/containers/create":
                    return self.create(query.get("name", ""))
                if method == "GET" and parts.path == "/containers/json":
                    return self.listing(query)
                if method == "GET" and parts.path == "/_ping":
                    return self.pong()
                found = re.fullmatch(r"/containers/([0-9a-f]{64})(/[a-z]+)?", parts.path)
                container = engine.containers.get(found.group(1)) if found else None
                if container is None or container.removed:
                    return self.answer(404, {"message": "No such container: " + parts.path})
                action = (method, found.group(2) if found else None)
                if action == ("POST", "/attach"):
                    return self.attach(container)
                if action == ("POST", "/start"):
                    container.started.set()
                    return self.no_content()
                if action == ("POST", "/wait"):
                    container.ended.wait(SETTLE_SECONDS)
                    return self.answer(200, {"Error": None, "StatusCode": container.status})
                if action == ("GET", "/json"):
                    state = {"ExitCode": container.status, "OOMKilled": container.out_of_memory}
                    return self.answer(200, {"Id": container.id, "State": state})
                if action == ("POST", "/kill"):
                    if container.ended.is_set():
                        return self.answer(409, {"message": "is not running"})
                    container.killed, container.status = True, 137
                    container.ended.set()
                    return self.no_content()
                if action == ("DELETE", None):
                    container.removed = True
                    if not container.ended.is_set():
                        container.status = 137
                        container.ended.set()
                    return self.no_content()
                return self.answer(404, {"message": "page not found"})

            def image(self, name: str) -> None:
                if name not in engine.images:
                    message = f"no such image: {name}: No such image: {name}"
                    return self.answer(404, {"message": message})
                declared = engine.volumes.get(name)
                volumes = {path: {} for path in declared or ()} or None  # Docker's shape
                config = {"User": "", "Volumes": volumes, "WorkingDir": ""}
                image = {"Id": "sha256:" + "0" * 64, "RepoTags": [name], "Config": config}
                return self.answer(200, image)

            def listing(self, query: dict[str, str]) -> None:
                """`GET /containers/json`: running ones, or all with `all=1`; `filters` as
                `{"label": ["key" or "key=value", ...]}`."""
                wanted = json.loads(query.get("filters") or "{}").get("label", [])
                found = []
                for container in engine.created():
                    labels = container.config.get("Labels") or {}
                    state = (
                        "exited"
                        if container.ended.is_set()
                        else "running"
                        if container.started.is_set()
                        else "created"
                    )
                    if container.removed or (state != "running" and query.get("all") != "1"):
                        continue
                    if not all(_labelled(labels, rule) for rule in wanted):
                        continue
                    found.append(
                        {
                            "Id": container.id,
                            "Names": ["/" + container.name],
                            "Image": container.config.get("Image"),
                            "Created": container.created,
                            "Labels": labels,
                            "State": state,
                        }
                    )
                return self.answer(200, found)

            def pong(self) -> None:
                """`GET /_ping`: `OK` as text, the API version in a header."""
                self.send_response(200)
                self.send_header("Api-Version", API_VERSION)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def date_time_string(self, timestamp: float | None = None) -> str:
                return super().date_time_string(engine.now() if timestamp is None else timestamp)

            def create(self, name: str) -> None:
                config = self.json_body
                if config.get("Image") not in engine.images:
                    return self.answer(404, {"message": f"No such image: {config.get('Image')}"})
                container = Container(secrets.token_hex(32), name, config)
                container.created = int(engine.now())
                host = config.get("HostConfig") or {}
                mounted = set(host.get("Tmpfs") or {}) | {
                    mount.get("Target") for mount in host.get("Mounts") or []
                }
                container.anonymous_volumes = [
                    path
                    for path in engine.volumes.get(config["Image"], [])
                    if posixpath.normpath(path) not in mounted
                ]
                with engine.lock:
                    engine.containers[container.id] = container
                return self.answer(201, {"Id": container.id, "Warnings": []})

            def attach(self, container: Container) -> None:
                """The hijacked connection: stdin in, the program's output out as frames."""
                self.send_response(101, "UPGRADED")
                self.send_header("Content-Type", "application/vnd.docker.raw-stream")
                self.send_header("Connection", "Upgrade")
                self.send_header("Upgrade", "tcp")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                if not container.started.wait(SETTLE_SECONDS):
                    return
                program = engine.images[container.config["Image"]]
                if program is hang:
                    container.ended.wait(SETTLE_SECONDS)
                    return
                container.stdin = self.rfile.read()  # to end of file: the client half-closes
                ended = program(container.stdin)
                # stderr's first byte before stdout: the streams arrive interleaved
                out = ((2, ended.stderr[:1]), (1, ended.stdout), (2, ended.stderr[1:]))
                try:
                    for stream, data in out:
                        for start in range(0, len(data), FRAME_BYTES):
                            chunk = data[start : start + FRAME_BYTES]
                            header = bytes([stream, 0, 0, 0]) + len(chunk).to_bytes(4, "big")
                            self.wfile.write(header + chunk)
                    self.wfile.flush()
                except OSError:
                    pass  # the client stopped reading (too much output) and hung up
                if not container.ended.is_set():
                    container.status, container.out_of_memory = ended.status, ended.out_of_memory
                    container.ended.set()

            def no_content(self) -> None:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            @property
            def json_body(self) -> dict[str, Any]:
                return dict(json.loads(self._body or b"{}"))

            def body(self) -> bytes:
                self._body = super().body()
                return self._body

        return Handler


def _common_name(certificate: Any) -> str:
    subject = dict(pair[0] for pair in (certificate or {}).get("subject", ()))
    return str(subject.get("commonName", ""))


def _labelled(labels: dict[str, str], rule: str) -> bool:
    key, equals, value = rule.partition("=")
    return key in labels and (not equals or labels[key] == value)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def running_engine(
    path: Path, images: dict[str, Program], volumes: dict[str, list[str]] | None = None
) -> Iterator[DockerEngineDouble]:
    """The double listening on the unix socket `path` until the block ends; `volumes` are the
    paths images declare as volumes."""
    engine = DockerEngineDouble(images, dict(volumes or {}))
    try:
        with serving(_Server(str(path), engine.handler())):
            yield engine
    finally:
        path.unlink(missing_ok=True)


class _TLSServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True

    def __init__(
        self, handler: type[JSONHandler], context: ssl.SSLContext, engine: DockerEngineDouble
    ) -> None:
        self.context = context
        self.engine = engine
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        # The handshake happens in the request's own thread, at its first read.
        wrapped = self.context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.engine.refused.append(repr(sys.exc_info()[1]))


@contextmanager
def running_tls_engine(
    images: dict[str, Program], certificate: Path, key: Path, client_ca: Path
) -> Iterator[tuple[DockerEngineDouble, int]]:
    """The double on 127.0.0.1 over TLS (`certificate` and `key` its own, a client certificate
    signed by `client_ca` required) until the block ends, and its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    engine = DockerEngineDouble(images)
    server = _TLSServer(engine.handler(), context, engine)
    with serving(server):
        yield engine, server.server_address[1]
