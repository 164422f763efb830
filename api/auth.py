"""Authentication and authorization for every /api/v1 route.

A router-level middleware resolves the caller from `Authorization: Bearer <access token>`,
`Authorization: Bearer a2n_<api key>` or `X-API-Key`; the router's guard then checks the route's
declared scope. Authentication is a middleware, not part of the guard, so that the rate limiter
(the next middleware) counts each caller by user or API key rather than by address, and refuses
over-limit requests before any handler work. Routes opt out with `opt=PUBLIC` (sign-in and
friends); routes declare what they need with `opt=needs("workflows:write")`. The resolved
principal lives in the request state for `current_actor`, the rate limiter and the handlers.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import structlog
from anyio import to_thread
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from api.context import services
from application.errors import Forbidden, NotAuthenticated
from application.identity.commands import API_KEY_PREFIX
from application.identity.principal import Principal

PUBLIC: dict[str, Any] = {"public": True}
PRINCIPAL = "principal"
log = structlog.get_logger("a2n.auth")


def needs(scope: str, **opt: Any) -> dict[str, Any]:
    """Route `opt` declaring the scope a caller needs (API keys are limited to their scopes)."""
    return {"scope": scope, **opt}


SESSION_ONLY: dict[str, Any] = {"session": True}
"""Route `opt` for account management (password, keys, sessions): a signed-in person only.
A leaked API key must not be able to mint more keys, end its owner's sessions or change the
password."""


class AuthenticationMiddleware(ASGIMiddleware):
    """Every non-public route needs a live principal; without one the answer is 401."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        if handler is not None and not handler.opt.get("public"):
            await _authenticate(ASGIConnection(scope, receive, send))
        await next_app(scope, receive, send)


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    found = services(connection)
    credential = _credential(connection)
    if credential is None:
        raise NotAuthenticated("no credentials were sent")
    client = connection.client.host if connection.client else None
    if credential.startswith(API_KEY_PREFIX):
        result = await found.authenticator.api_key(credential, client)
    else:
        result = await found.authenticator.bearer(credential)
    principal = result.principal
    connection.state[PRINCIPAL] = principal
    connection.scope.setdefault("state", {})["actor"] = principal
    if result.record_use and principal.api_key_id:
        await _record_use(found.identity.api_key_used, principal.api_key_id)


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the authenticated principal must hold the route's declared scope (async, so that
    Litestar runs it on the event loop rather than handing it to a worker thread)."""
    if handler.opt.get("public"):
        return
    principal = principal_of(connection)
    scope = handler.opt.get("scope")
    if scope is not None and not principal.may(scope):
        raise Forbidden(f"this needs the {scope} scope")
    if handler.opt.get("session") and principal.session_id is None:
        raise Forbidden("manage your account from a signed-in session; API keys cannot")


async def authorize_metrics(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard of /metrics (outside the API router, at the root): `Authorization: Bearer
    <A2N_METRICS_TOKEN>` (compared in constant time), else an A2N caller with the `admin`
    scope (an ADMIN's or OWNER's access token, or their API key granted `admin`). Anonymous
    callers get 401, other callers 403: the series name workflows of every account."""
    credential = _credential(connection)
    if credential is None:
        raise NotAuthenticated("no credentials were sent")
    token = services(connection).settings.metrics_token
    if token is not None and _same_secret(credential, token):
        return
    await _authenticate(connection)
    if not principal_of(connection).may("admin"):
        raise Forbidden("this needs the admin scope, or the metrics token")


def _same_secret(sent: str, expected: str) -> bool:
    """Constant time, whatever the lengths: the digests are compared, not the texts."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(sent.encode()).digest(), digest(expected.encode()).digest())


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    found: Principal = connection.state[PRINCIPAL]
    return found


def _credential(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization")
    if header is not None:
        kind, _, value = header.strip().partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    key = connection.headers.get("x-api-key")
    return key.strip() if key else None


async def _record_use(record: Any, key_id: str) -> None:
    try:
        await to_thread.run_sync(record, key_id)
    except Exception:
        # Recording last use must never fail the request it belongs to.
        log.warning("api_key_use_not_recorded", api_key_id=key_id, exc_info=True)
