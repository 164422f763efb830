"""What every route needs from its request: the services, the caller, If-Match, consistency."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import msgspec
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.serialization import encode_json, get_serializer

from api.services import Services
from application.caller import Caller
from application.contexts import LOGS
from application.errors import InvalidParameter
from application.identity.authenticate import IDENTITY_READER
from application.identity.principal import Principal
from application.positions import Reader, log_positions
from application.read_cache import Answer
from application.row_security import reading_as

T = TypeVar("T")
MIN_POSITION_HEADER = "A2N-Min-Position"
_ETAG = re.compile(r'^(?:W/)?"(\d{1,10})"$')


class ProjectionBehind(Exception):
    """The read model did not reach the requested position in time."""


def services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    found: Services = connection.app.state.services
    return found


def current_actor(request: Request[Any, Any, Any]) -> Caller:
    """The authenticated caller of this request (see `api.auth`), with its request facts."""
    principal: Principal = request.state["principal"]
    return caller_as(request, principal.user_id)


def read_models(request: Request[Any, Any, Any]) -> AbstractAsyncContextManager[Any]:
    """A read-model connection under row-level security, acting as this request's caller: the
    database itself keeps other users' rows out, whatever the query's WHERE clause says."""
    principal: Principal = request.state["principal"]
    return reading_as(services(request).pool, principal.user_id, _row_security_role(principal))


def _row_security_role(principal: Principal) -> str:
    return principal.role.value if principal.is_admin else "USER"


async def cached_read(
    request: Request[Any, Any, Any],
    key: tuple[Hashable, ...],
    load: Callable[[], Awaitable[T]],
    headers: Callable[[T], dict[str, str]] | None = None,
) -> Response[Any]:
    """The answer to `load()` (a read-model query; it raises for what is not found), with
    `headers` of it, from the read cache while the projections the route reads (its `readers`)
    and the identity projection have not moved. The key is `key` under the caller's user id
    and row-security role, so one caller's answer is never another's. The cache keeps the
    answer as the JSON this route sends (its own type encoders), so a hit encodes nothing."""
    principal: Principal = request.state["principal"]
    role = _row_security_role(principal)
    readers: tuple[Reader, ...] = (*request.route_handler.opt.get("reads", ()), IDENTITY_READER)

    async def answer() -> Answer:  # a miss: load and encode once
        value = await load()
        encoder = get_serializer(request.route_handler.resolve_type_encoders())
        return Answer(encode_json(value, encoder), headers(value) if headers else {})

    found: Answer = await services(request).read_cache.get(
        (principal.user_id, role, *key), readers, answer
    )
    return Response(found.body, media_type=MediaType.JSON, headers=found.headers)


def anonymous_caller(request: Request[Any, Any, Any]) -> Caller:
    """The caller of a public route (sign-up, sign-in): nobody yet, from this client."""
    return caller_as(request, "anonymous")


def caller_as(request: Request[Any, Any, Any], user_id: str) -> Caller:
    return Caller(
        user_id=user_id,
        correlation_id=request.scope.get("state", {}).get("request_id"),
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def expected_revision(request: Request[Any, Any, Any]) -> int | None:
    """The revision named by If-Match (`"3"`), or None when the header is absent or `*`."""
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if not match:
        raise InvalidParameter("If-Match", 'must be an ETag this API returned, such as "3"')
    return int(match.group(1))


def etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


def readers(*pairs: Reader) -> dict[str, Any]:
    """Route `opt` naming the projections a query reads, for A2N-Min-Position: (projector,
    event log) pairs, those reading the route's main log (where its rows come from) first."""
    return {"reads": pairs}


def min_positions(raw: str, main_log: str) -> dict[str, int]:
    """The positions an A2N-Min-Position value names, per event log: a plain number is a
    position in the route's main log; `executions:12, workflows:7` names logs explicitly (a
    query whose rows depend on several contexts, such as executions visible through a share)."""
    invalid = InvalidParameter(
        MIN_POSITION_HEADER,
        "must be a position returned by a command, or log:position pairs such as "
        f"{main_log}:12 (logs: {', '.join(LOGS)})",
    )
    return log_positions(raw, main_log=main_log, invalid=invalid)


async def wait_for_min_position(request: Request[Any, Any, Any]) -> None:
    """before_request hook: hold a query until its projections reached A2N-Min-Position."""
    reads: tuple[Reader, ...] = request.route_handler.opt.get("reads", ())
    raw = request.headers.get(MIN_POSITION_HEADER) or request.query_params.get("min_position")
    if raw is None or not reads:
        return
    found = services(request)
    timeout: float = found.live.value("min_position_timeout")
    deadline = time.monotonic() + timeout
    for log, position in min_positions(raw, reads[0][1]).items():
        # A log the route does not read has nothing to wait for.
        waiting = [reader for reader in reads if reader[1] == log]
        left = max(0.0, deadline - time.monotonic())
        if waiting and not await found.positions.wait_for(waiting, position, left):
            raise ProjectionBehind(raw)


JSON_TYPES = ("application/json", "application/problem+json")


async def check_command_body(request: Request[Any, Any, Any]) -> None:
    """before_request for commands: a body must be JSON (415), within the size limit (413) and
    of exactly the declared types. Litestar itself converts leniently ("1" becomes 1), so the body
    is decoded strictly here first; msgspec errors become 400/422 problems."""
    length = request.headers.get("content-length", "")
    if not length and "transfer-encoding" not in request.headers:
        return
    if length == "0":
        return
    if length.isdigit() and int(length) > services(request).settings.max_body_bytes:
        raise HTTPException(status_code=413)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise HTTPException(
            status_code=415,
            detail=f"Send the body as application/json (got {media_type or 'no content type'}).",
        )
    declared = request.route_handler.parsed_fn_signature.parameters.get("data")
    if declared is not None:
        # Syntax first (400 for broken JSON), then types (422), as two separate steps.
        msgspec.convert(msgspec.json.decode(await request.body()), type=declared.annotation)
