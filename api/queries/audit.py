"""Audit queries: an aggregate's full event history with the metadata of every event."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs, principal_of
from api.context import current_actor, services
from application.audit import aggregate_events
from application.caller import Caller
from application.errors import InvalidParameter, NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page_of


class AuditEvent(msgspec.Struct, rename="camel"):
    application: str
    position: int
    aggregate_id: str
    aggregate_version: int
    type: str
    topic: str
    timestamp: datetime
    data: dict[str, Any]
    metadata: dict[str, str]


class AuditEventPage(msgspec.Struct, rename="camel"):
    items: list[AuditEvent]
    next_cursor: str | None


class AuditQueries(Controller):
    path = "/audit"
    tags = ["audit"]
    opt = needs("workflows:read")
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/aggregates/{aggregate_id:str}/events",
        summary="Every event of one aggregate, oldest first",
    )
    async def aggregate_history(
        self,
        request: Request[Any, Any, Any],
        aggregate_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
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
        after = 0
        if cursor is not None:
            raw = decode_cursor(cursor, ("after",))["after"]
            if not raw.isdigit():
                raise InvalidParameter("cursor", "is not a cursor this list returned")
            after = int(raw)
        async with found.pool.connection() as conn:
            events = await aggregate_events(
                conn, aggregate_id, after_version=after, limit=limit + 1
            )
        page = page_of(events, limit, lambda e: {"after": str(e.aggregate_version)})
        return AuditEventPage(
            items=[AuditEvent(**vars(e)) for e in page.items], next_cursor=page.next_cursor
        )
