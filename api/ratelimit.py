"""Rate limiting at the HTTP edge: classify the request, check the limiter, refuse with 429.

A middleware rather than a `before_request` hook because controllers set their own
`before_request`, which would replace an app-level one, and because a refused request should cost
nothing: no body read, no dependencies, no handler. It runs after routing, so a route can name its
group in `opt={"rate_limit": "auth"}` (or `None` to be exempt) instead of relying on its path.

The caller is `scope["state"]["actor"]` when authentication has set it (an object with `user_id`
and optionally `api_key_id`), else the client address; put this middleware after the one that
authenticates, or every caller is counted by address. The limiting itself is looked up per
request (`limiting_of`), because the app builds its limiter at start-up, after the middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from application.ratelimit import RateLimiterUnavailable, RateLimiting, Verdict

log = structlog.get_logger("a2n.ratelimit")

RATE_LIMIT_OPT = "rate_limit"
"""Route `opt` key naming the route's group; `None` exempts the route."""

AUTH_PREFIX = "/api/v1/auth"
EXEMPT_PATHS = ("/health", "/ready", "/metrics", "/schema", "/webhook", "/webhook-test")
"""Probes, scrapes and API docs: limiting them would only make monitoring lie. Webhook calls are
counted per webhook path, where the path's workflow is known (api/webhooks.py)."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Classify = Callable[[Scope], str | None]
LimitingOf = Callable[[Scope], RateLimiting]


def route_group(scope: Scope) -> str | None:
    """The default classification: the route's own `opt`, else auth, read or write by path and
    method; None for operational routes and webhooks, which this middleware does not limit."""
    opt: dict[str, Any] = getattr(scope.get("route_handler"), "opt", None) or {}
    if RATE_LIMIT_OPT in opt:
        group: str | None = opt[RATE_LIMIT_OPT]
        return group
    path: str = scope["path"]
    if any(path == p or path.startswith(p + "/") for p in EXEMPT_PATHS):
        return None
    if path == AUTH_PREFIX or path.startswith(AUTH_PREFIX + "/"):
        return "auth"
    return "read" if scope.get("method", "GET") in READ_METHODS else "write"


def rate_limit_headers(verdict: Verdict) -> dict[str, str]:
    """The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers)."""
    decision = verdict.decision
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
        "RateLimit-Policy": f"{decision.limit};w={max(1, round(verdict.limit.window))}",
    }


def too_many(request: Request[Any, Any, Any], verdict: Verdict) -> Response[Any]:
    """The 429 problem+json of a refused request, with the RateLimit fields and Retry-After."""
    headers = {**rate_limit_headers(verdict), "Retry-After": str(verdict.retry_after_seconds)}
    detail = (
        f"Too many {verdict.group} requests: the limit is {verdict.limit.requests} per "
        f"{verdict.limit.window:g} seconds. Retry after {headers['Retry-After']} seconds."
    )
    return problem(request, 429, detail, kind="rate-limited", headers=headers)


class RateLimitMiddleware(ASGIMiddleware):
    """Checks every HTTP request of a limited group; refused ones get 429 problem+json.

    `fail_open` decides what an unreachable limiter store means: let requests through (default:
    an outage of Redis should not take the API down with it) or answer 503.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        limiting_of: LimitingOf,
        *,
        classify: Classify = route_group,
        fail_open: bool = True,
    ) -> None:
        self.limiting_of = limiting_of
        self.classify = classify
        self.fail_open = fail_open
        self._store_down = False  # process-wide on purpose: log an outage once, not per request

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        group = self.classify(scope)
        if group is None:
            await next_app(scope, receive, send)
            return
        actor = scope.get("state", {}).get("actor")
        client = scope.get("client")
        try:
            verdict = await self.limiting_of(scope).check(
                group,
                ip=client[0] if client else None,
                user_id=getattr(actor, "user_id", None),
                api_key_id=getattr(actor, "api_key_id", None),
            )
        except RateLimiterUnavailable as exc:
            if not self._store_down:
                self._store_down = True
                log.warning("rate_limiter_unavailable", error=str(exc), fail_open=self.fail_open)
            if self.fail_open:
                await next_app(scope, receive, send)
                return
            await self._respond(
                scope,
                receive,
                send,
                503,
                "Rate limiting is unavailable; retry shortly.",
                {"Retry-After": "1"},
            )
            return
        if self._store_down:
            self._store_down = False
            log.info("rate_limiter_recovered")
        if verdict is None:
            await next_app(scope, receive, send)
            return
        if not verdict.decision.allowed:
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            await too_many(request, verdict).to_asgi_response(None, request)(scope, receive, send)
            return
        encoded = [(k.lower().encode(), v.encode()) for k, v in rate_limit_headers(verdict).items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *encoded]
            await send(message)

        await next_app(scope, receive, send_with_headers)

    @staticmethod
    async def _respond(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        detail: str,
        headers: dict[str, str],
    ) -> None:
        request: Request[Any, Any, Any] = Request(scope, receive, send)
        response = problem(request, status, detail, headers=headers or None)
        await response.to_asgi_response(None, request)(scope, receive, send)
