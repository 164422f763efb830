"""Execution queries: runs, their nodes, log lines and metrics; schedules; daily and per-workflow
statistics.

Runs are read from the executions projector's tables, which follow the Executions event log: a
plain `A2N-Min-Position` is a position in that log (a run's commands answer one). Who may see a
run also depends on workflows and their shares, so `workflows:N` may be named as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import needs
from api.context import (
    cached_read,
    current_actor,
    read_models,
    readers,
    services,
    wait_for_min_position,
)
from api.paging import Cursor, Limit
from api.schemas.execution_events import HEARTBEAT, progress_message
from api.schemas.executions import (
    DailyStatsPage,
    DailyStatsRead,
    ExecutionPage,
    ExecutionRead,
    ExecutionSummary,
    LogPage,
    LogRead,
    MetricPage,
    MetricRead,
    NodeStatePage,
    NodeStateRead,
    SchedulePage,
    ScheduleRead,
    WorkflowStatsRead,
)
from application.caller import Caller
from application.errors import InvalidParameter, NotFound
from application.executions.live import FollowTiming, RunEvent, ended_at, follow, queued_at
from application.executions.queries import (
    ExecutionFilter,
    ScheduleFilter,
    execution_visible,
    get_execution,
    get_schedule,
    list_daily_stats,
    list_executions,
    list_logs,
    list_metrics,
    list_node_states,
    list_schedules,
    workflow_stats,
)
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, Page
from domain.executions.execution import ExecutionStatus
from domain.executions.logs import LogLevel
from domain.executions.schedule import ScheduleStatus

AnyRequest = Request[Any, Any, Any]
READS_EXECUTIONS = readers(("executions", "executions"), ("workflows", "workflows"))
READS_SCHEDULES = readers(("schedules", "executions"), ("workflows", "workflows"))
READS_COUNTERS = readers(("workflows", "executions"), ("workflows", "workflows"))
"""Workflow counters: kept by the workflows projector from the Executions log."""


class ExecutionQueries(Controller):
    path = "/executions"
    tags = ["executions"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/",
        summary="Runs you started and runs of the workflows you own or that are shared with "
        "you, newest first",
        opt=READS_EXECUTIONS,
    )
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        workflow_id: Annotated[str | None, QueryParameter(name="workflowId", max_length=64)] = None,
        status: FromQuery[ExecutionStatus | None] = None,
        since: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Runs queued at or after this time"),
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="Runs queued before this time")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[ExecutionPage]:
        if workflow_id is not None and not is_id(workflow_id):
            raise InvalidParameter("workflowId", "is not a workflow id")
        for name, value in (("from", since), ("to", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidParameter(name, "needs a time zone, e.g. 2026-01-31T12:00:00Z")
        if since is not None and until is not None and until < since:
            raise InvalidParameter("to", "is before from")
        where = ExecutionFilter(
            viewer_id=caller.user_id,
            workflow_id=workflow_id,
            status=None if status is None else str(status),
            since=since,
            until=until,
        )

        async def load() -> ExecutionPage:
            async with read_models(request) as conn:
                page = await list_executions(conn, where, limit=limit, cursor=cursor)
            return ExecutionPage(
                items=[ExecutionSummary.of_row(row) for row in page.items],
                next_cursor=page.next_cursor,
            )

        return await cached_read(request, ("executions", where, limit, cursor), load)

    @get("/{execution_id:str}", summary="One run, with its input and output", opt=READS_EXECUTIONS)
    async def show(
        self, request: AnyRequest, execution_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> Response[ExecutionRead]:
        if not is_id(execution_id):
            raise NotFound(execution_id)

        async def load() -> ExecutionRead:
            async with read_models(request) as conn:
                row = await get_execution(conn, caller.user_id, execution_id)
            if row is None:
                raise NotFound(execution_id)
            return ExecutionRead.of_row(row)

        return await cached_read(request, ("execution", execution_id), load)

    @get(
        "/{execution_id:str}/events",
        summary="The run's events as Server-Sent Events, live until it ends",
        description="Every stored event of the run, oldest first, then each new one as it is "
        "recorded: `event:` its type (Queued, Started, NodeStarted, NodeItemsEmitted, "
        "NodeSucceeded, ..., "
        "Succeeded, Failed, Cancelled, TimedOut; a node that ended before its start was saved "
        "has no NodeStarted: its NodeSucceeded has `inputCount`, and began `durationMs` before "
        "it), `id:` the run's version after it, `data:` JSON "
        "with its fields in camelCase, `executionId`, `version`, `position` and `timestamp` "
        "(fields that would make a message larger than A2N_LIVE_MESSAGE_BYTES are listed in "
        "`omitted` instead). The stream ends after the final event; a comment every "
        "A2N_LIVE_HEARTBEAT seconds of silence keeps it open, and it closes after "
        "A2N_EXECUTION_TIMEOUT seconds at most. Reconnect with `Last-Event-ID` to get only what "
        "followed; 204 when nothing can follow (the run ended at or before it).",
        opt=READS_EXECUTIONS,
        media_type="text/event-stream",
    )
    async def events(
        self, request: AnyRequest, execution_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> Response[Any]:
        after = _last_event_id(request)
        await _require_visible_run(request, caller, execution_id)
        found = services(request)
        async with found.pool.connection() as conn:
            ended = await ended_at(conn, execution_id)
        if ended is not None and after >= ended:
            return Response(None, status_code=204)
        settings = found.settings
        timing = FollowTiming(
            poll_seconds=settings.live_poll_interval,
            heartbeat_seconds=settings.live_heartbeat,
            lifetime_seconds=settings.execution_timeout,
        )
        followed = follow(found.pool, found.progress, execution_id, after, timing)
        return ServerSentEvent(_messages(followed, execution_id, settings.live_message_bytes))

    @get(
        "/{execution_id:str}/nodes",
        summary="The nodes the run may reach, in definition order, with how far each got",
        opt=READS_EXECUTIONS,
    )
    async def nodes(
        self,
        request: AnyRequest,
        execution_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> NodeStatePage:
        page = await _page_of_run(
            request, caller, execution_id, list_node_states, limit=limit, cursor=cursor
        )
        return NodeStatePage(
            items=[NodeStateRead.of_row(row) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{execution_id:str}/logs",
        summary="The run's log lines, oldest first",
        opt=READS_EXECUTIONS,
    )
    async def logs(
        self,
        request: AnyRequest,
        execution_id: FromPath[str],
        caller: NamedDependency[Caller],
        level: Annotated[
            LogLevel | None,
            QueryParameter(description="Lines of this level or worse (DEBUG < ... < FATAL)"),
        ] = None,
        node_id: Annotated[str | None, QueryParameter(name="nodeId", max_length=255)] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> LogPage:
        page = await _page_of_run(
            request,
            caller,
            execution_id,
            list_logs,
            min_level=level,
            node_id=node_id,
            limit=limit,
            cursor=cursor,
        )
        return LogPage(
            items=[LogRead.of_row(row) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{execution_id:str}/metrics",
        summary="The run's measurements: per node attempt duration_ms, items_in, items_out; "
        "the run's duration_ms",
        opt=READS_EXECUTIONS,
    )
    async def metrics(
        self,
        request: AnyRequest,
        execution_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> MetricPage:
        page = await _page_of_run(
            request, caller, execution_id, list_metrics, limit=limit, cursor=cursor
        )
        return MetricPage(
            items=[MetricRead.of_row(row) for row in page.items], next_cursor=page.next_cursor
        )


def _last_event_id(request: AnyRequest) -> int:
    """The version a reconnecting client got last (Last-Event-ID), 0 for a first connection."""
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return 0
    if not raw.strip().isdigit() or len(raw.strip()) > 18:
        raise InvalidParameter("Last-Event-ID", "must be the id of an event this stream sent")
    return int(raw)


async def _require_visible_run(request: AnyRequest, caller: Caller, execution_id: str) -> None:
    """404 unless the caller may see the run. A run queued a moment ago may not be projected
    yet: then wait (as A2N-Min-Position would) for the executions projector to reach it."""
    if not is_id(execution_id):
        raise NotFound(execution_id)
    async with read_models(request) as conn:
        if await execution_visible(conn, caller.user_id, execution_id):
            return
    found = services(request)
    async with found.pool.connection() as conn:
        position = await queued_at(conn, execution_id)
    if position is None:
        raise NotFound(execution_id)
    readers = READS_EXECUTIONS["reads"][:1]
    if await found.positions.wait_for(readers, position, found.live.value("min_position_timeout")):
        async with read_models(request) as conn:
            if await execution_visible(conn, caller.user_id, execution_id):
                return
    raise NotFound(execution_id)


async def _messages(
    followed: AsyncIterator[RunEvent | None], execution_id: str, limit: int
) -> AsyncIterator[ServerSentEventMessage]:
    async for stored in followed:
        yield HEARTBEAT if stored is None else progress_message(execution_id, stored, limit)


async def _page_of_run(
    request: AnyRequest,
    caller: Caller,
    execution_id: str,
    query: Callable[..., Awaitable[Page[dict[str, Any]]]],
    **options: Any,
) -> Page[dict[str, Any]]:
    """A page of one run's rows (`query`: list_node_states, list_logs...); 404 unless the caller
    may see the run."""
    if not is_id(execution_id):
        raise NotFound(execution_id)
    async with read_models(request) as conn:
        return await query(conn, caller.user_id, execution_id, **options)


class ScheduleQueries(Controller):
    path = "/schedules"
    tags = ["executions"]
    opt = needs("workflows:read", **READS_SCHEDULES)
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/",
        summary="Schedules of the workflows you own or that are shared with you: when each "
        "runs next and how its firings went",
    )
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        workflow_id: Annotated[str | None, QueryParameter(name="workflowId", max_length=64)] = None,
        status: FromQuery[ScheduleStatus | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> SchedulePage:
        if workflow_id is not None and not is_id(workflow_id):
            raise InvalidParameter("workflowId", "is not a workflow id")
        where = ScheduleFilter(
            viewer_id=caller.user_id,
            workflow_id=workflow_id,
            status=None if status is None else str(status),
        )
        async with read_models(request) as conn:
            page = await list_schedules(conn, where, limit=limit, cursor=cursor)
        return SchedulePage(
            items=[ScheduleRead.of_row(row) for row in page.items], next_cursor=page.next_cursor
        )

    @get("/{schedule_id:str}", summary="One schedule")
    async def show(
        self, request: AnyRequest, schedule_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> ScheduleRead:
        if not is_id(schedule_id):
            raise NotFound(schedule_id)
        async with read_models(request) as conn:
            row = await get_schedule(conn, caller.user_id, schedule_id)
        if row is None:
            raise NotFound(schedule_id)
        return ScheduleRead.of_row(row)


class StatsQueries(Controller):
    path = "/stats"
    tags = ["stats"]
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/daily",
        summary="Runs per start day over the last 90 days, newest first (ADMIN and OWNER: the "
        "figures cover every user). Recomputed by refresh_daily_stats(), not on every run",
        opt=needs("admin", **readers(("executions", "executions"))),
    )
    async def daily(
        self, request: AnyRequest, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> DailyStatsPage:
        async with read_models(request) as conn:
            page = await list_daily_stats(conn, limit=limit, cursor=cursor)
        return DailyStatsPage(
            items=[DailyStatsRead.of_row(row) for row in page.items],
            next_cursor=page.next_cursor,
        )

    @get(
        "/workflows/{workflow_id:str}",
        summary="A workflow's run counters (anyone who may view the workflow)",
        opt=needs("workflows:read", **READS_COUNTERS),
    )
    async def workflow(
        self, request: AnyRequest, workflow_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> WorkflowStatsRead:
        if not is_id(workflow_id):
            raise NotFound(workflow_id)
        async with read_models(request) as conn:
            row = await workflow_stats(conn, caller.user_id, workflow_id)
        return WorkflowStatsRead.of_row(row)
