"""Operations queries for administrators: runtime settings and their history, the system log,
and where every projector stands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from api.auth import needs
from api.context import read_models, readers, services, wait_for_min_position
from api.paging import Cursor, Limit
from api.schemas.operations import (
    ProjectorPage,
    ProjectorRead,
    RebuildRead,
    SettingChangeRead,
    SettingHistoryPage,
    SettingPage,
    SettingRead,
    SystemLogPage,
    SystemLogRead,
)
from api.services import Services
from application.errors import InvalidParameter
from application.operations.catalog import CATALOG, RuntimeSetting, default_of
from application.operations.commands import known_setting
from application.operations.queries import SystemLogFilter, list_system_log, stored_settings
from application.pagination import DEFAULT_LIMIT, plain_text
from application.system_log import LEVELS
from projections.rebuild_jobs import STATE_QUERY as REBUILDS
from projections.rebuild_jobs import RebuildState, rebuild_states
from projections.status import ProjectionStatus, status_document, status_from_rows, status_query

AnyRequest = Request[Any, Any, Any]
Filter = Annotated[str | None, QueryParameter(max_length=200)]
READS_SETTINGS = needs("admin", **readers(("operations", "operations")))


class OperationsQueries(Controller):
    path = "/admin"
    tags = ["admin"]
    opt = needs("admin")
    before_request = staticmethod(wait_for_min_position)

    @get(
        "/settings",
        summary="Every runtime setting: type, value in effect, its source (default, "
        "environment or stored) and who changed it when (ADMIN, OWNER)",
        opt=READS_SETTINGS,
    )
    async def settings(self, request: AnyRequest) -> SettingPage:
        async with read_models(request) as conn:
            stored = await stored_settings(conn)
        found = services(request)
        return SettingPage([setting_read(found, s, stored.get(s.key)) for s in CATALOG])

    @get(
        "/settings/{key:str}",
        summary="One runtime setting (ADMIN, OWNER)",
        opt=READS_SETTINGS,
    )
    async def setting(self, request: AnyRequest, key: FromPath[str]) -> SettingRead:
        known = known_setting(key)
        async with read_models(request) as conn:
            stored = await stored_settings(conn)
        return setting_read(services(request), known, stored.get(key))

    @get(
        "/settings/{key:str}/history",
        summary="Every change of a runtime setting, oldest first, from its events (ADMIN, OWNER)",
    )
    async def history(self, request: AnyRequest, key: FromPath[str]) -> SettingHistoryPage:
        changes = await to_thread.run_sync(services(request).runtime_settings.history, key)
        return SettingHistoryPage(
            [
                SettingChangeRead(
                    c.value, c.previous, c.reset, c.changed_by, c.changed_at, c.version
                )
                for c in changes
            ]
        )

    @get(
        "/system-logs",
        summary="The service's own log (system_log), newest first: starts and stops, scheduler "
        "elections, parked projectors, retention runs, migrations (ADMIN, OWNER)",
    )
    async def system_logs(
        self,
        request: AnyRequest,
        level: Annotated[
            str | None,
            QueryParameter(max_length=10, description="Least severe level: DEBUG ... FATAL"),
        ] = None,
        service: Filter = None,
        component: Filter = None,
        event: Filter = None,
        correlation_id: Annotated[
            str | None, QueryParameter(name="correlationId", max_length=200)
        ] = None,
        since: Annotated[
            datetime | None, QueryParameter(name="from", description="At or after this time")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(name="to", description="Before this time")
        ] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> SystemLogPage:
        if level is not None and level.upper() not in LEVELS:
            raise InvalidParameter("level", f"must be one of {', '.join(LEVELS)}")
        for name, moment in (("from", since), ("to", until)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidParameter(name, "needs a time zone, e.g. 2026-01-31T12:00:00Z")
        if since is not None and until is not None and until < since:
            raise InvalidParameter("to", "is before from")
        where = SystemLogFilter(
            level=None if level is None else level.upper(),
            service=plain_text("service", service),
            component=plain_text("component", component),
            event=plain_text("event", event),
            correlation_id=plain_text("correlationId", correlation_id),
            since=since,
            until=until,
        )
        async with read_models(request) as conn:
            page = await list_system_log(conn, where, limit=limit, cursor=cursor)
        return SystemLogPage([SystemLogRead(**row) for row in page.items], page.next_cursor)

    @get(
        "/projections",
        summary="Every projector: position, head and lag per event log, state (parked, "
        "running, ...), parked and skipped events, and the latest rebuild started through the "
        "API with its progress (ADMIN, OWNER)",
    )
    async def projections(self, request: AnyRequest) -> ProjectorPage:
        found = services(request)
        async with found.pool.connection() as conn:
            cur = await conn.execute(status_query())
            statuses = status_from_rows(await cur.fetchall())
            cur = await conn.execute(REBUILDS)
            rebuilds = rebuild_states(await cur.fetchall())
        return ProjectorPage([_projector(found, s, rebuilds) for s in statuses])


def setting_read(
    found: Services, known: RuntimeSetting, row: dict[str, Any] | None, position: int | None = None
) -> SettingRead:
    """A setting as served: `row` holds what is stored (value, updated_by, updated_at,
    revision), None when nothing ever was."""
    default, source = default_of(known, found.settings)
    stored = None if row is None else row["value"]
    spec = known.spec
    return SettingRead(
        key=known.key,
        type=str(spec.kind),
        value=default if stored is None else stored,
        default=default,
        source=source if stored is None else "stored",
        description=known.about,
        live=True,
        variable=known.variable,
        choices=list(spec.choices) or None,
        minimum=spec.low,
        maximum=spec.high,
        changed_by=None if row is None else row["updated_by"],
        changed_at=None if row is None else row["updated_at"],
        revision=None if row is None else row["revision"],
        position=position,
    )


def _projector(
    found: Services, status: ProjectionStatus, rebuilds: dict[str, RebuildState]
) -> ProjectorRead:
    document = status_document(status)
    runner = found.runner_state(status.projector)
    state = "parked" if status.parked else runner.status if runner else "external"
    return ProjectorRead(
        projector=status.projector,
        application=status.application,
        position=status.position,
        head=status.head,
        lag=status.lag,
        state=state,
        updated_at=status.updated_at,
        parked=document["parked"],
        skipped=document["skipped"],
        last_error=runner.last_error if runner else None,
        restarts=runner.restarts if runner else None,
        rebuild=RebuildRead.of(rebuilds[status.projector])
        if status.projector in rebuilds
        else None,
    )
