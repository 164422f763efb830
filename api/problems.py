"""RFC 9457 problem details for every error the API returns.

Body errors point into the request document with JSON pointers (`{"pointer": "/nodes/0/id"}`);
errors in query parameters or headers name the parameter (`{"parameter": "limit"}`). Unexpected
exceptions are logged with the request id and answered with a 500 that reveals nothing else.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException

from api.context import MIN_POSITION_HEADER, ProjectionBehind
from application.errors import (
    ConcurrentWrite,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotAuthenticated,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
)
from application.workflows.webhook_routes import RoutesBusy
from domain.errors import InvalidState, NotAllowed, UnknownPart, ValidationFailed

log = structlog.get_logger("a2n.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://a2n.dev/problems/"

_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?) - at `\$(?P<path>[^`]*)`$", re.DOTALL)
_FIELD_NAME = re.compile(r"field `(?P<name>[^`]+)`")
# Litestar reports a missing required query parameter or header only in its message.
_MISSING_PARAMETER = re.compile(r"^Missing required \w+ parameter '(?P<name>[^']+)'")


class ProblemError(msgspec.Struct, omit_defaults=True, rename="camel"):
    message: str
    pointer: str | None = None
    parameter: str | None = None
    node_id: str | None = None


class Problem(msgspec.Struct, omit_defaults=True, rename="camel"):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None
    current_revision: int | None = None
    execution_id: str | None = None


def problem(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: list[ProblemError] | None = None,
    headers: dict[str, str] | None = None,
    current_revision: int | None = None,
    execution_id: str | None = None,
) -> Response[Problem]:
    """A problem+json response; `kind` names an A2N problem type, else the status is the type."""
    body = Problem(
        type=TYPE_BASE + kind if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        request_id=_request_id(request),
        errors=errors,
        current_revision=current_revision,
        execution_id=execution_id,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _request_id(request: Request[Any, Any, Any] | None) -> str | None:
    if request is None:
        return None
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def on_domain_validation(request: Request[Any, Any, Any], exc: ValidationFailed) -> Response[Any]:
    errors = [
        ProblemError(message=v.message, pointer=v.pointer, node_id=v.node_id)
        for v in exc.violations
    ]
    return problem(
        request,
        422,
        "The request breaks the rules listed in errors.",
        kind="validation",
        errors=errors,
    )


def on_decode_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """Litestar's parameter and body validation, reshaped into problem errors."""
    items = [i for i in exc.extra if isinstance(i, dict)] if isinstance(exc.extra, list) else []
    parameters = [
        ProblemError(
            message=str(i.get("message", "is not valid")),
            parameter=_public_name(request, str(i.get("key"))),
        )
        for i in items
        if str(i.get("source", "body")) not in ("body", "ParamType.BODY")
    ]
    missing = _MISSING_PARAMETER.match(str(exc.detail))
    if missing:
        parameters.append(ProblemError(message="is required", parameter=missing["name"]))
    if parameters:
        return problem(
            request,
            400,
            "A query parameter, path parameter or header is not valid.",
            kind="invalid-parameter",
            errors=parameters,
        )
    cause = exc.__cause__
    text = str(cause) if isinstance(cause, msgspec.ValidationError) else ""
    if not text or text == "Object missing required field `data`":
        return problem(
            request,
            422,
            "This route needs a JSON body.",
            kind="validation",
            errors=[ProblemError(message="a JSON body is required", pointer="")],
        )
    return problem(
        request,
        422,
        "The request body does not have the expected shape.",
        kind="validation",
        errors=[_body_error(text)],
    )


def _public_name(request: Request[Any, Any, Any], key: str) -> str:
    """The name a client uses for a parameter (`isActive`), not the handler's (`is_active`)."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    alias = getattr(getattr(parameter, "kwarg_definition", None), "name", None)
    return str(alias or key)


def _body_error(text: str) -> ProblemError:
    """msgspec says `Expected str, got int - at $.data.nodes[0].id`; make it a JSON pointer."""
    match = _MSGSPEC_PATH.match(text)
    message, path = (match["message"], match["path"]) if match else (text, "")
    path = re.sub(r"^\.data", "", path)
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    field = _FIELD_NAME.search(message)
    if field and message.startswith(
        ("Object missing required field", "Object contains unknown field")
    ):
        parts.append(field["name"])
        message = "is required" if "missing" in message else "is not a known field"
    pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
    return ProblemError(message=message, pointer=pointer)


def on_strict_body(request: Request[Any, Any, Any], exc: msgspec.ValidationError) -> Response[Any]:
    return problem(
        request,
        422,
        "The request body does not have the expected shape.",
        kind="validation",
        errors=[_body_error(str(exc))],
    )


def on_malformed_body(request: Request[Any, Any, Any], exc: msgspec.DecodeError) -> Response[Any]:
    return problem(request, 400, f"The request body is not valid JSON: {exc}.", kind="malformed")


def on_invalid_parameter(request: Request[Any, Any, Any], exc: InvalidParameter) -> Response[Any]:
    return problem(
        request,
        400,
        str(exc),
        kind="invalid-parameter",
        errors=[ProblemError(message=exc.message, parameter=exc.parameter)],
    )


def on_not_found(request: Request[Any, Any, Any], exc: NotFound | UnknownPart) -> Response[Any]:
    return problem(request, 404, "No such resource, or you may not see it.", kind="not-found")


def on_not_authenticated(request: Request[Any, Any, Any], exc: NotAuthenticated) -> Response[Any]:
    return problem(
        request,
        401,
        f"Sign in first: {exc}. Send Authorization: Bearer <access token> or an API key.",
        kind="unauthenticated",
        headers={"WWW-Authenticate": 'Bearer realm="a2n"'},
    )


def on_forbidden(request: Request[Any, Any, Any], exc: Forbidden | NotAllowed) -> Response[Any]:
    return problem(request, 403, str(exc), kind="forbidden")


def on_conflict(request: Request[Any, Any, Any], exc: Conflict) -> Response[Any]:
    return problem(request, 409, str(exc), kind="conflict")


def on_invalid_state(request: Request[Any, Any, Any], exc: InvalidState) -> Response[Any]:
    return problem(request, 409, str(exc), kind="conflict")


def on_precondition_failed(
    request: Request[Any, Any, Any], exc: PreconditionFailed
) -> Response[Any]:
    return problem(
        request,
        412,
        f"If-Match does not match: the resource is at revision {exc.current_revision}. "
        "Read it again and reapply your change.",
        kind="stale-revision",
        headers={"ETag": f'"{exc.current_revision}"'},
        current_revision=exc.current_revision,
    )


def on_too_many_attempts(request: Request[Any, Any, Any], exc: TooManyAttempts) -> Response[Any]:
    return problem(
        request,
        429,
        f"Too many failed sign-in attempts for this account or from this address. "
        f"Retry after {exc.retry_after} seconds.",
        kind="login-locked",
        headers={"Retry-After": str(exc.retry_after)},
    )


def on_concurrent_write(request: Request[Any, Any, Any], exc: ConcurrentWrite) -> Response[Any]:
    return problem(
        request,
        409,
        "The resource kept changing while this command ran; try again.",
        kind="conflict",
    )


def on_projection_behind(request: Request[Any, Any, Any], exc: ProjectionBehind) -> Response[Any]:
    return problem(
        request,
        503,
        f"The read model has not reached {MIN_POSITION_HEADER} {exc} yet; retry shortly.",
        kind="projection-behind",
        headers={"Retry-After": "1"},
    )


def on_routes_busy(request: Request[Any, Any, Any], exc: RoutesBusy) -> Response[Any]:
    return problem(
        request, 503, f"{exc}; retry shortly.", kind="busy", headers={"Retry-After": "1"}
    )


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        return on_decode_validation(request, exc)
    status = exc.status_code
    detail = exc.detail if exc.detail and exc.detail != HTTPStatus(status).phrase else None
    if status == 400 and isinstance(exc.__cause__, SerializationException):
        return problem(
            request, 400, f"The request body is not valid JSON: {exc.__cause__}.", kind="malformed"
        )
    if status == 413:
        detail = "The request body is larger than this server accepts."
    headers = {
        k: v
        for k, v in (exc.headers or {}).items()
        if k.lower() in ("allow", "retry-after", "www-authenticate")
    }
    return problem(
        request, status, detail or HTTPStatus(status).description, headers=headers or None
    )


def on_too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    return problem(request, 400, "The request body nests too deeply to parse.", kind="malformed")


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return problem(
        request,
        500,
        "The server failed to answer this request; it has been logged with the request id.",
    )


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    ValidationFailed: on_domain_validation,
    InvalidParameter: on_invalid_parameter,
    NotFound: on_not_found,
    UnknownPart: on_not_found,
    NotAuthenticated: on_not_authenticated,
    Forbidden: on_forbidden,
    Conflict: on_conflict,
    InvalidState: on_invalid_state,
    NotAllowed: on_forbidden,
    PreconditionFailed: on_precondition_failed,
    ConcurrentWrite: on_concurrent_write,
    TooManyAttempts: on_too_many_attempts,
    ProjectionBehind: on_projection_behind,
    RoutesBusy: on_routes_busy,
    HTTPException: on_http_exception,
    RecursionError: on_too_deep,
    msgspec.ValidationError: on_strict_body,
    msgspec.DecodeError: on_malformed_body,
    Exception: on_unexpected,
}
