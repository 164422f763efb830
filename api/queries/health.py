"""Health checks for admins: the latest result of each check, or their history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from api.auth import needs
from api.context import read_models
from api.paging import Cursor, Limit
from api.schemas.operations import HealthCheckPage, HealthCheckRead
from application.errors import InvalidParameter
from application.health.checks import Status
from application.health.queries import CheckFilter, check_history, latest_checks
from application.pagination import DEFAULT_LIMIT, plain_text

AnyRequest = Request[Any, Any, Any]


class HealthCheckQueries(Controller):
    path = "/admin/health-checks"
    tags = ["admin"]

    @get(
        "/",
        summary="Health check results (ADMIN, OWNER): the latest of each check, or with "
        "view=history every result newest first",
        opt=needs("admin"),
    )
    async def list(
        self,
        request: AnyRequest,
        view: Annotated[
            Literal["latest", "history"],
            QueryParameter(description="latest: one result per check; history: every result"),
        ] = "latest",
        service: Annotated[
            str | None, QueryParameter(max_length=200, description="postgres, queue.high...")
        ] = None,
        check_type: Annotated[
            Literal["database", "cache", "queue", "projection", "disk", "worker", "docker"] | None,
            QueryParameter(name="type"),
        ] = None,
        status: Annotated[Status | None, QueryParameter()] = None,
        since: Annotated[
            datetime | None, QueryParameter(name="from", description="Results at or after this")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="Results before this time")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> HealthCheckPage:
        for name, value in (("from", since), ("to", until)):
            if value is not None and value.tzinfo is None:
                raise InvalidParameter(name, "needs a time zone, e.g. 2026-01-31T12:00:00Z")
        if since is not None and until is not None and until < since:
            raise InvalidParameter("to", "is before from")
        if view == "latest" and cursor is not None:
            raise InvalidParameter("cursor", "pages only view=history")
        where = CheckFilter(
            service=plain_text("service", service),
            check_type=check_type,
            status=None if status is None else status.value,
            since=since,
            until=until,
        )
        async with read_models(request) as conn:
            if view == "latest":
                rows, next_cursor = await latest_checks(conn, where), None
            else:
                page = await check_history(conn, where, limit=limit, cursor=cursor)
                rows, next_cursor = page.items, page.next_cursor
        return HealthCheckPage([HealthCheckRead.of_row(row) for row in rows], next_cursor)
