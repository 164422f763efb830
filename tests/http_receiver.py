"""A real HTTP server on 127.0.0.1 that receives webhook calls (Slack, Discord, signed webhooks)
in a thread of the test process, records each request, and answers with the statuses a test
scripts (then 200).

    with running_receiver(statuses=[503]) as receiver:
        receiver.url("/services/T0/B0/token")
        receiver.requests[0].json()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.http_doubles import serving


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    port: int
    statuses: list[int]
    requests: list[ReceivedRequest] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def running_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    """Serve until the block ends; answer the n-th request with `statuses[n]` (then 200)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with lock:
                receiver.requests.append(
                    ReceivedRequest(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            answer = b"ok" if status < 400 else b"no_service"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server.server_address[1], list(statuses or []))
    with serving(server):
        yield receiver
