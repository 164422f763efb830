"""Audit queries: event histories, the stream of every event log, past states, the audit_log
table and the hash chain's verdict.

Auditors are ADMINs and OWNERs (API keys need the `admin` scope). The one exception is an
aggregate's event history, which the owner and sharees of a workflow may read too.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs, principal_of
from api.context import current_actor, read_models, readers, services, wait_for_min_position
from api.paging import Cursor, Limit
from api.schemas.audit import (
    AggregateStateRead,
    AuditEvent,
    AuditEventPage,
    AuditLogPage,
    AuditLogRead,
    AuditStreamPage,
    ChainReportRead,
)
from application.audit import (
    AuditLogFilter,
    EventFilter,
    aggregate_events,
    aggregate_state,
    event_stream,
    format_positions,
    list_audit_log,
    stream_positions,
)
from application.caller import Caller
from application.contexts import LOGS
from application.errors import InvalidParameter, NotFound
from application.event_chain import verify
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, decode_numbers, page_of, plain_text

AnyRequest = Request[Any, Any, Any]
AUDITORS = needs("admin")
READS_AUDIT_LOG = needs("admin", **readers(*(("audit_log", log) for log in LOGS)))


class AuditQueries(Controller):
    path = "/audit"
    tags = ["audit"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/aggregates/{aggregate_id:str}/events",
        summary="Every event of one aggregate, oldest first (admins: any aggregate; others: "
        "their own and shared workflows)",
    )
    async def aggregate_history(
        self,
        request: AnyRequest,
        aggregate_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AuditEventPage:
        if not is_id(aggregate_id):
            raise NotFound(aggregate_id)
        found = services(request)
        if not principal_of(request).is_admin:
            # Others may read the history of their own and shared workflows only: events carry
            # who did what from where, which a PUBLIC workflow does not publish.
            await to_thread.run_sync(
                partial(found.workflows.check_access, caller, aggregate_id, public=False)
            )
        after = 0 if cursor is None else decode_numbers(cursor, ("after",))[0]
        async with found.pool.connection() as conn:
            events = await aggregate_events(
                conn, aggregate_id, after_version=after, limit=limit + 1
            )
        if not events and cursor is None:
            raise NotFound(aggregate_id)
        page = page_of(events, limit, lambda e: {"after": str(e.aggregate_version)})
        return AuditEventPage([AuditEvent.of(e) for e in page.items], page.next_cursor)

    @get(
        "/aggregates/{aggregate_id:str}",
        summary="Any aggregate's state replayed from its events: now, after event ?version=N, "
        "or as it stood at ?asOf=time",
        opt=AUDITORS,
    )
    async def aggregate_at(
        self,
        request: AnyRequest,
        aggregate_id: FromPath[str],
        version: Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)] = None,
        as_of: Annotated[datetime | None, QueryParameter(name="asOf")] = None,
    ) -> AggregateStateRead:
        if version is not None and as_of is not None:
            raise InvalidParameter("asOf", "give either version or asOf, not both")
        _aware("asOf", as_of)
        if not is_id(aggregate_id):
            raise NotFound(aggregate_id)
        async with services(request).pool.connection() as conn:
            found = await aggregate_state(conn, aggregate_id, version=version, as_of=as_of)
        return AggregateStateRead.of(found)

    @get(
        "/events",
        summary="Stored events of every log after the given positions (external auditors tail "
        "this), merged by time",
        opt=AUDITORS,
    )
    async def events(
        self,
        request: AnyRequest,
        since: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Events that happened at or after this time"),
        ] = None,
        after: Annotated[
            str | None,
            QueryParameter(
                max_length=200,
                description="Start after these positions: log:position pairs such as "
                "workflows:120,identity:7 (other logs from their start)",
            ),
        ] = None,
        application: Annotated[
            str | None, QueryParameter(max_length=40, description="One log only")
        ] = None,
        event_type: Annotated[
            str | None,
            QueryParameter(name="type", max_length=200, description="e.g. WorkflowCreated"),
        ] = None,
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=200)] = None,
        aggregate_id: Annotated[
            str | None, QueryParameter(name="aggregateId", max_length=200)
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AuditStreamPage:
        _aware("from", since)
        if application is not None and application not in LOGS:
            raise InvalidParameter("application", f"must be one of {', '.join(LOGS)}")
        if after is not None and cursor is not None:
            raise InvalidParameter("after", "give either after or cursor, not both")
        where = EventFilter(
            application=application,
            type=plain_text("type", event_type),
            actor_id=plain_text("actorId", actor_id),
            aggregate_id=plain_text("aggregateId", aggregate_id),
            since=since,
        )
        positions = {} if after is None else stream_positions(after, "after")
        async with services(request).pool.connection() as conn:
            page = await event_stream(conn, where, after=positions, cursor=cursor, limit=limit)
        return AuditStreamPage(
            [AuditEvent.of(e) for e in page.items], page.next_cursor, format_positions(page.after)
        )

    @get(
        "/log",
        summary="The audit_log table, newest first: who did what to which resource, when",
        opt=READS_AUDIT_LOG,
    )
    async def log(
        self,
        request: AnyRequest,
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=200)] = None,
        action: Annotated[
            str | None, QueryParameter(max_length=200, description="e.g. WorkflowCreated")
        ] = None,
        resource: Annotated[
            str | None, QueryParameter(max_length=200, description="e.g. workflow")
        ] = None,
        resource_id: Annotated[
            str | None, QueryParameter(name="resourceId", max_length=200)
        ] = None,
        since: Annotated[
            datetime | None, QueryParameter(name="from", description="At or after this time")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="Before this time")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AuditLogPage:
        _aware("from", since)
        _aware("to", until)
        if since is not None and until is not None and until < since:
            raise InvalidParameter("to", "is before from")
        where = AuditLogFilter(
            actor_id=plain_text("actorId", actor_id),
            action=plain_text("action", action),
            resource=plain_text("resource", resource),
            resource_id=plain_text("resourceId", resource_id),
            since=since,
            until=until,
        )
        async with read_models(request) as conn:
            page = await list_audit_log(conn, where, limit=limit, cursor=cursor)
        return AuditLogPage([AuditLogRead(**row) for row in page.items], page.next_cursor)

    @get(
        "/verify",
        summary="Recompute every event log's hash chain and compare it with the seal: ok, or "
        "the first event changed, deleted or inserted since it was sealed",
        opt=AUDITORS,
    )
    async def verify(self, request: AnyRequest) -> ChainReportRead:
        async with services(request).pool.connection() as conn:
            report = await verify(conn)
        return ChainReportRead.of(report)


def _aware(parameter: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidParameter(parameter, "needs a time zone, e.g. 2026-01-31T12:00:00Z")
