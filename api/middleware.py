"""Per-request plumbing: request ids, structured access logs and HTTP metrics (pure ASGI).

`request_context` wraps the whole Litestar application (see `api.app.create_app`), not its route
middleware: routing errors (404, 405) and errors raised by route middleware (401 from
authentication, 429 from rate limiting) are answered by Litestar's outermost exception handler,
beyond the `send` of any route middleware, so only from outside it is every status sent seen.
"""

from __future__ import annotations

import re
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import Metrics
from application.ids import new_id

log = structlog.get_logger("a2n.http")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "unmatched"
"""Route label of requests no route matched (404, 405): the path itself would be unbounded."""


def request_context(metrics_of: Any) -> Any:
    """ASGI wrapper factory; `metrics_of(scope)` finds the app's Metrics at request time."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"")
            request_id = given.decode() if _VALID_REQUEST_ID.match(given) else new_id()
            scope.setdefault("state", {})["request_id"] = request_id
            started = time.perf_counter()
            # What the server answers when the app raises before sending anything.
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (REQUEST_ID_HEADER, request_id.encode()),
                    ]
                await send(message)

            # Tokens rather than `bound_contextvars`, which copies the whole context twice
            # (~7 us a request against ~2).
            bound = structlog.contextvars.bind_contextvars(request_id=request_id)
            try:
                await app(scope, receive, send_with_id)
            finally:
                try:
                    elapsed = time.perf_counter() - started
                    # The router sets the template once a route matches.
                    route = scope.get("path_template") or UNMATCHED_ROUTE
                    metrics: Metrics = metrics_of(scope)
                    metrics.requests.labels(scope["method"], route, str(status)).inc()
                    metrics.latency.labels(scope["method"], route).observe(elapsed)
                    log.info(
                        "request",
                        method=scope["method"],
                        route=route,
                        status=status,
                        duration_ms=round(elapsed * 1000, 2),
                    )
                finally:
                    structlog.contextvars.reset_contextvars(**bound)

        return handle

    return middleware
