"""OpenAPI: every error response documented as what is sent, an RFC 9457 problem.

Litestar documents the errors it knows of (400 for parameters and bodies, `raises=`) as
`application/json` with its own exception shape, while every A2N error is a `Problem` sent as
`application/problem+json`. `ProblemResponses` gives each operation, as its route is registered, a
problem response for every error status the route can answer with, read from what the route is:
its middleware, options, path parameters and body. A response a handler declares itself in
`responses=` is kept as declared.
"""

from __future__ import annotations

from http import HTTPStatus

from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from api.auth import AuthenticationMiddleware
from api.context import check_command_body
from api.problems import PROBLEM_JSON, Problem
from api.ratelimit import RATE_LIMIT_OPT, RateLimitMiddleware

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

DESCRIPTIONS = {
    400: "The request cannot be read: a malformed parameter, header or body.",
    401: "Not signed in: send Authorization: Bearer <access token> or an API key.",
    403: "Signed in, but without the role, scope or share this needs.",
    404: "No such resource, or you may not see it.",
    409: "The resource changed meanwhile, or its state refuses this command.",
    413: "The request body is larger than this server accepts.",
    415: "The body is not JSON.",
    422: "The body breaks the rules listed in `errors` (JSON pointers into the body).",
    429: "Rate limit reached: retry after Retry-After seconds.",
    500: "Unexpected failure, logged with the request id.",
    503: "The read model has not reached A2N-Min-Position in time: retry after Retry-After.",
}


def problem_response(status: int, description: str | None = None) -> ResponseSpec:
    """The OpenAPI response of an error `status`: a Problem as application/problem+json."""
    return ResponseSpec(
        data_container=Problem,
        media_type=PROBLEM_JSON,
        description=description or DESCRIPTIONS.get(status) or HTTPStatus(status).description,
        generate_examples=False,
    )


def error_statuses(route: HTTPRoute, handler: HTTPRouteHandler) -> set[int]:
    """The error statuses `handler` on `route` can answer with."""
    stack = handler.resolve_middleware()
    in_api = any(isinstance(m, AuthenticationMiddleware) for m in stack)
    statuses = {400, 500}
    if in_api and not handler.opt.get("public"):
        statuses |= {401, 403}
    if route.path_parameters:
        statuses.add(404)
    takes_body = "data" in handler.parsed_fn_signature.parameters
    if takes_body or check_command_body in _before_request_hooks(handler):
        statuses |= {413, 415}
    if takes_body:
        statuses.add(422)
    if in_api and handler.http_methods - SAFE_METHODS:
        statuses.add(409)  # commands save events: a concurrent write or a refusing state
    limited = any(isinstance(m, RateLimitMiddleware) for m in stack)
    if limited and handler.opt.get(RATE_LIMIT_OPT, "") is not None:
        statuses.add(429)
    if handler.opt.get("reads"):
        statuses.add(503)
    statuses |= {exc.status_code for exc in handler.raises or ()}
    return statuses


class ProblemResponses(ReceiveRoutePlugin):
    """Documents every operation's error responses as problems (see the module docstring)."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler in route.route_handlers:
            derived = {s: problem_response(s) for s in sorted(error_statuses(route, handler))}
            handler.responses = {**derived, **(handler.responses or {})}


def _before_request_hooks(handler: HTTPRouteHandler) -> list[object]:
    return [getattr(layer, "before_request", None) for layer in handler.ownership_layers]
