"""Webhook calls: find the trigger a request is for, check who sent it, start the run, answer.

`/webhook/{path}` reaches the webhook triggers of active workflows, running their published
version; `/webhook-test/{path}` reaches the latest draft of a workflow whose editor asked it to
listen (`listen`), for one request within `LISTEN_SECONDS`. Routes are looked up in the
workflow_trigger read model (kept in memory, see application/workflows/webhook_routes.py), then
confirmed against the event store (a workflow deactivated a moment ago no longer answers, even if
the read model, or the copy of it in memory, has not caught up).

The run is the workflow owner's (the trigger acts for them), in mode `webhook`, with one item
`{method, path, headers, query, body, params}`. Headers that carry secrets (Authorization, Cookie,
the trigger's auth header) are left out of it, and `trigger_data` holds only the method, path,
client address, request id and whether it was a test call, so no secret reaches an event.

The Queued event is saved before anything is answered, so a 2xx means the run was recorded. The
answer follows the trigger's `responseMode`: `immediately` 202 with the execution id;
`lastNode` the run's output items once it ends; `respondNode` what a respond_to_webhook node
chose. Waiting is bounded (`wait_seconds`). When this process runs a worker with a free slot,
the run skips the queue and runs here at once (`Worker.start_here`), and a lastNode answer comes
from the run's own aggregate, with no read of its events; with no slot free and no Redis, the
run waits its turn in the queue, and is still neither read back to run nor to answer (with
Redis, it waits here a while, then goes to the queue for any worker with room). Such a
lastNode run is not saved before it runs: its Queued event goes with the run's first save (its
end, or its first checkpoint), or is saved alone once the run has waited 1 s for a slot
(`Worker.unsaved_wait_seconds`); the caller, still waiting for its answer, sees the connection
fail if the server dies sooner.

Calls are counted per webhook path (all senders and methods together) against the workflow's
`settings.webhookRateLimit`, else the installation's `default_limit`, else not at all; the
count comes first, so a flood is refused before its authentication costs anything.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from anyio import to_thread

from application.caller import Caller
from application.errors import Conflict, NotFound
from application.executions.commands import ExecutionService
from application.executions.webhook_auth import Signed, WebhookAuth
from application.executions.webhook_state import TestListeners
from application.executions.worker import Worker
from application.ratelimit import Limit, Verdict
from application.workflows.cache import WorkflowHead
from application.workflows.commands import WorkflowService
from application.workflows.webhook_routes import WebhookRouteTable
from domain.errors import InvalidState
from domain.executions.execution import Execution, ExecutionMode, ExecutionStatus, Item
from domain.text import clean_json
from domain.workflows.definition import webhook_rate_limit
from domain.workflows.triggers import WebhookRoute, trigger_id, webhook_routes
from domain.workflows.webhook_paths import Candidate, request_segments, resolve
from domain.workflows.workflow import RunnableVersion

log = structlog.get_logger("a2n.webhooks")

LISTEN_SECONDS = 120
"""How long a test URL listens for its one request."""
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Request headers never passed to the run (besides the trigger's own auth header)."""
REFUSED_RESPONSE_HEADERS = frozenset(
    {
        # hop-by-hop (RFC 9110 7.6.1): they describe this connection, which A2N owns
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        # framing is the server's to compute
        "content-length",
        # cookies would be set on A2N's own origin, next to its users' sessions
        "set-cookie",
        "set-cookie2",
        # A2N's own
        "x-request-id",
    }
)
"""Headers a respond_to_webhook node may not set; they are dropped (and logged)."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
JSON_TYPES = ("application/json", "application/problem+json")


class UnknownWebhook(Exception):
    """No trigger answers this request. `allowed`: the methods its path answers (405), or none
    (404)."""

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        super().__init__("no webhook answers this path and method")
        self.allowed = allowed


class BadWebhookBody(ValueError):
    """The request cannot become a trigger item (malformed JSON, NaN); 400."""


class RunUnanswered(Exception):
    """The run failed, or ended without the answer its trigger promised; 500."""

    def __init__(self, execution_id: str, message: str) -> None:
        super().__init__(message)
        self.execution_id = execution_id


class WebhookRateLimited(Exception):
    """The webhook's path had all the calls its limit allows; 429."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"too many calls of this webhook: the limit is {verdict.limit.requests}")
        self.verdict = verdict


Admit = Callable[[str, Limit], Verdict | None]
"""Counts one call of the webhook path `identifier` against `limit`, from the thread `accept`
runs in: the verdict, or None when the count cannot be kept (its store is away: let it in)."""


class RunDropped(Exception):
    """The worker stopped under a run saved with its first checkpoint, before that: nothing of
    it is stored; 503."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(
            "the server stopped before the run ended and nothing of it was kept: send the "
            "request again"
        )
        self.execution_id = execution_id


class RunStillGoing(Exception):
    """The run had not answered when the wait ended; 504."""

    def __init__(self, execution_id: str, waited: float) -> None:
        super().__init__(f"the run did not answer within {waited:g} seconds; it goes on")
        self.execution_id = execution_id


@dataclass(frozen=True)
class WebhookCall:
    """One HTTP request to a webhook URL, as the API received it."""

    method: str
    path: str
    """What follows /webhook/ or /webhook-test/."""
    headers: Mapping[str, str]
    """Names lower-cased; repeated headers joined with ", "."""
    query: Mapping[str, Any]
    body: bytes
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    test: bool = False


@dataclass(frozen=True)
class Accepted:
    """A run recorded for a webhook call, and how its caller is to be answered."""

    execution: Execution
    response_mode: str
    limited: Verdict | None = None
    """How the call was counted, when a rate limit applies to its path."""
    submitted: bool = True
    """Whether the run went to the queue; if not, `answer` runs it in this process's worker."""
    definition: dict[str, Any] | None = None
    """The definition the run executes (for a run started here)."""
    saved: bool = True
    """Whether its Queued event is stored; if not, the run's first checkpoint saves it (a
    lastNode run this process starts at once: one save instead of two)."""


@dataclass(frozen=True)
class WebhookAnswer:
    """What to send back: `body` is JSON unless it is a string (text) or None (empty)."""

    status: int
    body: Any
    execution_id: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Listening:
    workflow_id: str
    version: int
    routes: list[WebhookRoute]
    expires_at: datetime
    position: int


@dataclass(frozen=True)
class _Target:
    """The trigger a call reaches, in the version that will run."""

    workflow_id: str
    head: WorkflowHead
    runnable: RunnableVersion
    config: Mapping[str, Any]
    route: WebhookRoute
    params: dict[str, str]


@dataclass
class WebhookService:
    workflows: WorkflowService
    executions: ExecutionService
    routes: WebhookRouteTable
    auth: WebhookAuth
    listeners: TestListeners
    wait_seconds: float = 30.0
    default_limit: Limit | None = None
    """Calls allowed per webhook path unless a workflow sets its own (A2N_RATE_LIMITS)."""
    worker: Worker | None = None
    """This process's worker, if it runs one: a run it has room for skips the queue."""

    # -- listening ------------------------------------------------------------------------------

    def listen(self, caller: Caller, workflow_id: str) -> Listening:
        """Make the test URLs of the workflow's latest draft answer one request within
        LISTEN_SECONDS (EDIT needed, as for any test run of a draft). 409 when another
        workflow is listening for one of the same paths and methods."""
        draft = self.workflows.definition_to_run(caller, workflow_id, test=True)
        routes = webhook_routes(draft.definition)
        if not routes:
            raise InvalidState("the latest draft has no enabled webhook trigger to listen with")
        mine = {claim: route for route in routes for claim in route.claims()}
        for other in self.listeners.armed():
            if other == workflow_id or (theirs := self._draft(other)) is None:
                continue
            claimed = {c for route in webhook_routes(theirs[1].definition) for c in route.claims()}
            taken = sorted(mine.keys() & claimed)
            if taken:
                raise Conflict(
                    f"workflow {other} is listening for {taken[0][0]} /webhook-test/"
                    f"{mine[taken[0]].path.text}; try again once it got its call, or in at "
                    f"most {LISTEN_SECONDS} seconds"
                )
        self.listeners.arm(workflow_id, LISTEN_SECONDS)
        return Listening(
            workflow_id=workflow_id,
            version=draft.version,
            routes=routes,
            expires_at=datetime.now(UTC) + timedelta(seconds=LISTEN_SECONDS),
            position=self.workflows.app.head_position(),
        )

    # -- a call ---------------------------------------------------------------------------------

    def accept(self, call: WebhookCall, admit: Admit | None = None) -> Accepted:
        """Find the trigger, count the call against its path's rate limit (with `admit`, when
        one applies), authenticate it, record the run (Queued) and submit it."""
        segments = request_segments(call.path)
        if segments is None:
            raise UnknownWebhook()
        target = (self._test_target if call.test else self._target)(call.method, segments)
        limited = None
        limit = self._limit_of(target)
        if limit is not None and admit is not None:
            where = "/webhook-test/" if call.test else "/webhook/"
            limited = admit(f"path:{where}{target.route.path.text}", limit)
            if limited is not None and not limited.decision.allowed:
                raise WebhookRateLimited(limited)
        auth: Mapping[str, Any] = target.config.get("auth") or {"mode": "none"}
        scope = trigger_id(target.workflow_id, target.route.node_id)
        self.auth.check(auth, target.head.owner_id, scope, Signed(call.headers, call.body))
        # A sender cannot be asked to send again: what it sent is kept, made storable.
        item = clean_json(_item(call, target, auth))
        trigger_data = clean_json(
            {
                "method": call.method,
                "path": call.path,
                "ip": call.client_ip,
                "requestId": call.request_id,
                "test": call.test,
            }
        )
        if call.test and not self.listeners.take(target.workflow_id):
            raise UnknownWebhook()  # another call took the one the test URL was waiting for
        owner = Caller(
            target.head.owner_id,
            correlation_id=call.request_id,
            ip=call.client_ip,
            user_agent=call.user_agent,
        )
        submit = self.worker is None or not self.worker.takes_here()
        response_mode = str(target.config.get("responseMode", "immediately"))
        # Answered once the run ended, by this process: saved with the run (one save instead of
        # two), or by the worker once it has waited a while for a slot (`Worker.start_here`).
        # A respondNode answer is read from the store.
        deferred = not submit and response_mode == "lastNode"
        queued = self.executions.start(
            owner,
            target.workflow_id,
            [item],
            test=call.test,
            mode=ExecutionMode.WEBHOOK,
            trigger=(target.route.node_id, scope),
            trigger_data=trigger_data,
            runnable=target.runnable,
            submit=submit,
            deferred=deferred,
        )
        definition = target.runnable.definition
        return Accepted(
            queued.aggregate, response_mode, limited, submit, definition, saved=not deferred
        )

    async def answer(self, accepted: Accepted) -> WebhookAnswer:
        """The answer the trigger's response mode asks for, once the run gave it. A run this
        process runs itself answers lastNode from the run's own aggregate, not read again."""
        execution_id = accepted.execution.id
        running = None if accepted.submitted else await self._run_here(accepted)
        if accepted.response_mode == "immediately":
            return WebhookAnswer(202, {"executionId": execution_id}, execution_id)
        respond = accepted.response_mode == "respondNode"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        current: Execution | str = accepted.execution if running is None else execution_id
        if running is not None and not respond:
            await asyncio.wait({running}, timeout=self.wait_seconds)
            if running.done() and not running.cancelled():
                current = running.result()
            elif running.cancelled() and accepted.execution.never_saved:
                raise RunDropped(execution_id)
        execution = await self.executions.wait_until(
            current,
            lambda e: e.is_final or (respond and e.response is not None),
            max(0.0, deadline - loop.time()),
        )
        if respond and execution.response is not None:
            return _responded(execution)
        if not execution.is_final:
            raise RunStillGoing(execution_id, self.wait_seconds)
        if execution.status is not ExecutionStatus.SUCCESS:
            raise RunUnanswered(execution_id, f"the workflow run ended {execution.status}")
        if respond:
            raise RunUnanswered(
                execution_id, "the workflow run ended without a respond_to_webhook answer"
            )
        return WebhookAnswer(200, execution.output_items, execution_id)

    async def _run_here(self, accepted: Accepted) -> asyncio.Future[Execution] | None:
        """Start the run in this process's worker; to the queue instead once the worker
        stopped (None then)."""
        execution = accepted.execution
        running = None
        if self.worker is not None:
            running = self.worker.start_here(execution, accepted.definition)
        if running is None:  # the worker stopped: the queue's next reader loads the run
            if not accepted.saved:
                await to_thread.run_sync(self.executions.save_deferred, execution)
            await to_thread.run_sync(self.executions.queue.submit, execution.id, execution.priority)
        return running

    def _limit_of(self, target: _Target) -> Limit | None:
        """The workflow's own limit on its webhook paths, else the installation's default."""
        own = webhook_rate_limit(target.runnable.definition.get("settings"))
        if own == "off":
            return None
        if own == "default":
            return self.default_limit
        return Limit(own.requests, own.seconds)

    # -- finding the trigger --------------------------------------------------------------------

    def _target(self, method: str, segments: tuple[str, ...]) -> _Target:
        """An active workflow's trigger, found in the read model, confirmed in the events."""
        active = self.routes.starting_with(segments[0])
        found = resolve((Candidate(r, r.path, r.methods) for r in active), method, segments)
        if found.found is None:
            raise UnknownWebhook(found.allowed)
        workflow_id, node_id = found.found.workflow_id, found.found.node_id
        try:
            head, running = self.workflows.runnable(workflow_id, test=False)
        except (NotFound, InvalidState):
            raise UnknownWebhook() from None
        route = next((r for r in webhook_routes(running.definition) if r.node_id == node_id), None)
        params = route.path.match(segments) if route is not None else None
        if not head.is_active or route is None or params is None or method not in route.methods:
            raise UnknownWebhook()
        return _Target(workflow_id, head, running, _config(running, node_id), route, params)

    def _test_target(self, method: str, segments: tuple[str, ...]) -> _Target:
        """The trigger of a listening workflow's latest draft."""
        candidates: list[Candidate[tuple[str, WorkflowHead, RunnableVersion, WebhookRoute]]] = []
        for workflow_id in self.listeners.armed():
            found = self._draft(workflow_id)
            if found is not None:
                head, draft = found
                candidates += [
                    Candidate((workflow_id, head, draft, route), route.path, route.methods)
                    for route in webhook_routes(draft.definition)
                ]
        resolution = resolve(candidates, method, segments)
        if resolution.found is None:
            raise UnknownWebhook(resolution.allowed)
        workflow_id, head, draft, route = resolution.found
        config = _config(draft, route.node_id)
        return _Target(workflow_id, head, draft, config, route, resolution.params)

    def _draft(self, workflow_id: str) -> tuple[WorkflowHead, RunnableVersion] | None:
        try:
            head, draft = self.workflows.runnable(workflow_id, test=True)
        except NotFound:
            return None
        return None if head.is_archived else (head, draft)


def _config(runnable: RunnableVersion, node_id: str) -> Mapping[str, Any]:
    node = next(n for n in runnable.definition["nodes"] if n["id"] == node_id)
    config: Mapping[str, Any] = node.get("config") or {}
    return config


def _item(call: WebhookCall, target: _Target, auth: Mapping[str, Any]) -> Item:
    hidden = SECRET_HEADERS | {str(auth.get("headerName", "")).lower()}
    return {
        "method": call.method,
        "path": call.path,
        "headers": {k: v for k, v in call.headers.items() if k not in hidden},
        "query": dict(call.query),
        "body": parse_body(call.headers.get("content-type", ""), call.body),
        "params": target.params,
    }


def parse_body(content_type: str, raw: bytes) -> Any:
    """JSON for a JSON content type (None when empty), else the text (None when empty).
    Malformed JSON, and NaN or Infinity (not JSON, and not storable), are refused."""
    if not raw:
        return None
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        try:
            return json.loads(raw, parse_constant=_no_constant)
        except ValueError as exc:
            raise BadWebhookBody(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadWebhookBody("the body's JSON nests too deeply to read") from None
    return raw.decode("utf-8", errors="replace")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _responded(execution: Execution) -> WebhookAnswer:
    """What a respond_to_webhook node chose, without the headers it may not set."""
    response = execution.response or {}
    status = int(response["status"])
    if status < 200:
        raise RunUnanswered(execution.id, f"respond_to_webhook chose status {status}, not final")
    headers: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in dict(response.get("headers") or {}).items():
        fine = _TOKEN.fullmatch(name) and _FIELD_VALUE.fullmatch(str(value))
        if fine and name.lower() not in REFUSED_RESPONSE_HEADERS:
            headers[name] = str(value)
        else:
            dropped.append(name if _TOKEN.fullmatch(name) else "(invalid name)")
    if dropped:
        log.warning("webhook_response_headers_dropped", execution_id=execution.id, headers=dropped)
    body = None if status in (204, 304) else response.get("body")
    return WebhookAnswer(status, body, execution.id, headers)
