"""Webhook URLs, and the command that makes a workflow's test URLs listen for one call.

`/webhook/{path}` and `/webhook-test/{path}` sit at the root, outside /api/v1: they are public
(no A2N credentials; a trigger's own `auth` decides who may call), counted per webhook path when
a rate limit applies to it (the workflow's `settings.webhookRateLimit`, else A2N_RATE_LIMITS
`webhook=`), and bounded by A2N_MAX_BODY_BYTES like every request. The work is in
application/executions/webhooks.py; this module turns HTTP into a `WebhookCall` and its outcome
back into HTTP (problem+json for every refusal, with the execution id when there is a run).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import msgspec
import structlog
from anyio import WouldBlock, from_thread, to_thread
from litestar import Controller, HttpMethod, Request, Response, post, route
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from api.auth import PUBLIC, needs
from api.context import check_command_body, current_actor, services
from api.openapi import problem_response
from api.problems import problem
from api.ratelimit import RATE_LIMIT_OPT, rate_limit_headers, too_many
from application.caller import Caller
from application.executions.webhook_auth import Refused
from application.executions.webhooks import (
    LISTEN_SECONDS,
    BadWebhookBody,
    RunDropped,
    RunStillGoing,
    RunUnanswered,
    UnknownWebhook,
    WebhookAnswer,
    WebhookCall,
    WebhookRateLimited,
    WebhookService,
)
from application.ratelimit import Limit, RateLimiterUnavailable, Verdict

log = structlog.get_logger("a2n.webhooks")
AnyRequest = Request[Any, Any, Any]
WEBHOOK_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
]
WEBHOOK_OPT: dict[str, Any] = {**PUBLIC, RATE_LIMIT_OPT: None}
"""Not limited by the middleware, which cannot know the path's workflow: see `_admit`."""
_ABOUT = (
    "Public: the trigger's own auth (header token, basic, HMAC) decides who may call. The item "
    "the run gets is {method, path, headers, query, body, params}. Answers: 202 "
    "{executionId} (responseMode immediately), the run's output items (lastNode) or what a "
    "respond_to_webhook node chose (respondNode); 404 or 405 when no trigger answers."
)
WEBHOOK_PROBLEMS = {
    401: problem_response(401, "The trigger's own auth (header token, basic, HMAC) refused."),
    405: problem_response(405, "The trigger at this path answers other methods (see Allow)."),
    413: problem_response(413),
    429: problem_response(
        429, "This webhook path's rate limit (settings.webhookRateLimit, A2N_RATE_LIMITS)."
    ),
    503: problem_response(
        503,
        "Webhook routes are being reloaded, this process holds A2N_WEBHOOK_MAX_CALLS calls "
        "already, or it stopped before the run ended (nothing of it kept): retry after "
        "Retry-After.",
    ),
    504: problem_response(504, "The run did not answer in time; it goes on (executionId)."),
}
"""Errors of a webhook call beyond those every public route has (see api.openapi)."""


@route(
    "/webhook/{path:path}",
    http_method=WEBHOOK_METHODS,
    opt=WEBHOOK_OPT,
    responses=WEBHOOK_PROBLEMS,
    summary="Call the webhook trigger of an active workflow",
    description=_ABOUT + " Runs the published version.",
    tags=["webhooks"],
)
async def webhook(request: AnyRequest, path: FromPath[str]) -> Response[Any]:
    return await _call(request, path, test=False)


@route(
    "/webhook-test/{path:path}",
    http_method=WEBHOOK_METHODS,
    opt=WEBHOOK_OPT,
    responses=WEBHOOK_PROBLEMS,
    summary="Call the webhook trigger of a listening workflow's latest draft, once",
    description=_ABOUT + " Runs the latest draft, once per "
    "POST /api/v1/workflows/{id}/webhook-test/listen.",
    tags=["webhooks"],
)
async def webhook_test(request: AnyRequest, path: FromPath[str]) -> Response[Any]:
    return await _call(request, path, test=True)


async def _call(request: AnyRequest, path: str, *, test: bool) -> Response[Any]:
    """Turn the call into a `WebhookCall` and its outcome into an answer, unless the process
    already holds as many calls as it may (A2N_WEBHOOK_MAX_CALLS): then 503 at once, before
    the body is read."""
    calls = services(request).webhook_calls
    try:
        calls.acquire_nowait()
    except WouldBlock:
        detail = (
            f"This server holds {int(calls.total_tokens)} webhook calls already "
            "(A2N_WEBHOOK_MAX_CALLS); retry shortly."
        )
        return problem(request, 503, detail, kind="busy", headers={"Retry-After": "1"})
    try:
        return await _held_call(request, path, test=test)
    finally:
        calls.release()


async def _held_call(request: AnyRequest, path: str, *, test: bool) -> Response[Any]:
    running = services(request)
    service = running.webhooks
    call = WebhookCall(
        method=request.method,
        path=path.strip("/"),
        headers=_headers(request),
        query={
            key: values[0] if len(values) == 1 else values
            for key in request.query_params
            if (values := request.query_params.getall(key))
        },
        body=await request.body(),
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request.scope.get("state", {}).get("request_id"),
        test=test,
    )
    try:
        accepted = await to_thread.run_sync(
            service.accept, call, partial(_admit, request), limiter=running.webhook_accepts
        )
        answered = _answered(await service.answer(accepted))
        if accepted.limited is not None:
            answered.headers.update(rate_limit_headers(accepted.limited))
        return answered
    except WebhookRateLimited as limited:
        return too_many(request, limited.verdict)
    except UnknownWebhook as unknown:
        if unknown.allowed:
            allowed = ", ".join(unknown.allowed)
            detail = f"This webhook answers {allowed}, not {call.method}."
            return problem(
                request, 405, detail, kind="method-not-allowed", headers={"Allow": allowed}
            )
        detail = (
            "No workflow is listening on this test URL: POST "
            "/api/v1/workflows/{id}/webhook-test/listen first, then call it once within "
            f"{LISTEN_SECONDS} seconds."
            if test
            else "No active workflow answers this webhook path."
        )
        return problem(request, 404, detail, kind="not-found")
    except Refused as refused:
        challenge = {"WWW-Authenticate": 'Basic realm="a2n webhook"'} if refused.basic else None
        return problem(request, 401, _sentence(refused), kind="unauthenticated", headers=challenge)
    except BadWebhookBody as bad:
        return problem(request, 400, _sentence(bad), kind="malformed")
    except RunStillGoing as going:
        return problem(request, 504, _sentence(going), execution_id=going.execution_id)
    except RunDropped as dropped:
        return problem(request, 503, _sentence(dropped), kind="busy", headers={"Retry-After": "1"})
    except RunUnanswered as failed:
        return problem(request, 500, _sentence(failed), execution_id=failed.execution_id)


def _admit(request: AnyRequest, identifier: str, limit: Limit) -> Verdict | None:
    """Count a call of a webhook path (from `accept`'s thread, on the event loop); None when
    the limiter's store is away: calls go through then, as elsewhere (fail open)."""
    limiting = services(request).rate_limiting
    try:
        return from_thread.run(limiting.count, "webhook", identifier, limit)
    except RateLimiterUnavailable as exc:
        log.warning("rate_limiter_unavailable", error=str(exc), fail_open=True)
        return None


def _sentence(error: Exception) -> str:
    text = str(error)
    return f"{text[:1].upper()}{text[1:]}."


def _headers(request: AnyRequest) -> dict[str, str]:
    """The request's headers by lower-cased name; repeated ones joined as HTTP allows."""
    found: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _answered(answer: WebhookAnswer) -> Response[Any]:
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    chosen = next((v for k, v in answer.headers.items() if k.lower() == "content-type"), None)
    if answer.body is None:
        content, media_type = b"", chosen or "text/plain; charset=utf-8"
    elif isinstance(answer.body, str):
        content, media_type = answer.body.encode(), chosen or "text/plain; charset=utf-8"
    else:
        content, media_type = msgspec.json.encode(answer.body), chosen or "application/json"
    return Response(content, status_code=answer.status, headers=headers, media_type=media_type)


class WebhookListening(msgspec.Struct, rename="camel"):
    """The test URLs that now answer one call, until `expiresAt`."""

    workflow_id: str
    version: int
    expires_at: datetime
    webhooks: list[dict[str, Any]]
    position: int


def webhook_service(request: AnyRequest) -> WebhookService:
    return services(request).webhooks


class WebhookListenCommands(Controller):
    path = "/workflows/{workflow_id:str}/webhook-test"
    tags = ["webhooks"]
    opt = needs("executions:run")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(webhook_service, sync_to_thread=False),
    }

    @post(
        "/listen",
        summary="Make the workflow's test webhook URLs answer one call",
        description=f"For {LISTEN_SECONDS} seconds, /webhook-test/{{path}} of each enabled "
        "webhook trigger of the latest draft answers one call, running that draft (a test run: "
        "needs EDIT). 409 when the draft has no webhook trigger, or another workflow is "
        "listening for the same path and method.",
        sync_to_thread=True,
        status_code=200,
    )
    def listen(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WebhookService],
    ) -> WebhookListening:
        listening = service.listen(caller, workflow_id)
        base = services(request).settings.base_url
        return WebhookListening(
            workflow_id=listening.workflow_id,
            version=listening.version,
            expires_at=listening.expires_at,
            webhooks=[
                {
                    "nodeId": route.node_id,
                    "path": route.path.text,
                    "methods": list(route.methods),
                    "testUrl": f"{base}/webhook-test/{route.path.text}",
                }
                for route in listening.routes
            ],
            position=listening.position,
        )
