"""Workflow queries: GET routes reading the workflow read model, or the event store for history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import needs
from api.context import (
    cached_read,
    current_actor,
    etag,
    read_models,
    readers,
    services,
    wait_for_min_position,
)
from api.schemas.workflows import (
    TriggerList,
    TriggerRead,
    VersionDiff,
    VersionNumber,
    VersionPage,
    VersionRead,
    VersionSummary,
    WorkflowPage,
    WorkflowRead,
    WorkflowState,
    WorkflowSummary,
)
from application.caller import Caller
from application.errors import InvalidParameter, NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from application.workflows.queries import (
    WorkflowFilter,
    diff_versions,
    get_version,
    get_workflow,
    list_triggers,
    list_versions,
    list_workflows,
    permission_on,
)
from domain.workflows.triggers import next_cron_time

AnyRequest = Request[Any, Any, Any]
READS_WORKFLOWS = readers(("workflows", "workflows"), ("workflows", "executions"))
"""Workflow rows, with run counters the workflows projector keeps from the Executions log
(`A2N-Min-Position: executions:N` waits for those)."""


class WorkflowQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get("/", summary="List workflows, newest first", opt=READS_WORKFLOWS)
    async def list(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        is_active: Annotated[bool | None, QueryParameter(name="isActive")] = None,
        shared_with_me: Annotated[
            bool | None,
            QueryParameter(
                name="sharedWithMe",
                description="true: only workflows others shared with you; false: only your own",
            ),
        ] = None,
        category: Annotated[str | None, QueryParameter(max_length=100)] = None,
        tag: Annotated[str | None, QueryParameter(max_length=64)] = None,
        q: Annotated[
            str | None, QueryParameter(max_length=200, description="Text in name or description")
        ] = None,
        visibility: FromQuery[Literal["PRIVATE", "PUBLIC"] | None] = None,
        include_archived: Annotated[bool, QueryParameter(name="includeArchived")] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> Response[WorkflowPage]:
        where = WorkflowFilter(
            viewer_id=caller.user_id,
            shared_with_me=shared_with_me,
            is_active=is_active,
            category=category,
            tag=tag,
            text=q,
            visibility=visibility,
            include_archived=include_archived,
        )
        return await workflow_page(request, where, limit=limit, cursor=cursor)

    @get(
        "/{workflow_id:str}",
        summary="One workflow; ?version=N or ?asOf=time read its history from the event store",
        opt=READS_WORKFLOWS,
    )
    async def show(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        version: Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)] = None,
        as_of: Annotated[datetime | None, QueryParameter(name="asOf")] = None,
    ) -> Response[WorkflowRead | WorkflowState]:
        if version is not None or as_of is not None:
            return await self._historical(request, caller, workflow_id, version, as_of)
        if not is_id(workflow_id):
            raise NotFound(workflow_id)

        async def load() -> WorkflowRead:
            async with read_models(request) as conn:
                row = await get_workflow(conn, caller.user_id, workflow_id)
            if row is None:
                raise NotFound(workflow_id)
            return WorkflowRead(**row)

        return await cached_read(
            request, ("workflow", workflow_id), load, lambda found: etag(found.revision)
        )

    @get(
        "/{workflow_id:str}/triggers",
        summary="The trigger nodes the workflow runs from, with webhook URLs and next run times",
        opt=readers(("workflows", "workflows"), ("schedules", "executions")),
    )
    async def triggers(
        self, request: AnyRequest, workflow_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> TriggerList:
        if not is_id(workflow_id):
            raise NotFound(workflow_id)
        async with read_models(request) as conn:
            # Only the access check: the workflow row (with its definition) is not needed here.
            if await permission_on(conn, caller.user_id, workflow_id) is None:
                raise NotFound(workflow_id)
            rows = await list_triggers(conn, workflow_id)
        base = services(request).settings.base_url
        now = datetime.now(UTC)
        return TriggerList(items=[_trigger(row, base, now) for row in rows])

    async def _historical(
        self,
        request: AnyRequest,
        caller: Caller,
        workflow_id: str,
        version: int | None,
        as_of: datetime | None,
    ) -> Response[WorkflowRead | WorkflowState]:
        service = services(request).workflows
        if version is not None and as_of is not None:
            raise InvalidParameter("asOf", "give either version or asOf, not both")
        if as_of is not None:
            if as_of.tzinfo is None:
                raise InvalidParameter("asOf", "needs a time zone, e.g. 2026-01-31T12:00:00Z")
            workflow = await to_thread.run_sync(service.as_of, caller, workflow_id, as_of)
        else:
            assert version is not None
            workflow = await to_thread.run_sync(service.at_version, caller, workflow_id, version)
        return Response(WorkflowState.of(workflow, caller.user_id), headers=etag(workflow.version))

    # -- versions -------------------------------------------------------------------------------

    @get(
        "/{workflow_id:str}/versions",
        summary="A workflow's versions, newest first (without definitions)",
        opt=READS_WORKFLOWS,
    )
    async def versions(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> VersionPage:
        async with read_models(request) as conn:
            page = await list_versions(
                conn, caller.user_id, workflow_id, limit=limit, cursor=cursor
            )
        return VersionPage(
            items=[VersionSummary.of_row(row) for row in page.items], next_cursor=page.next_cursor
        )

    @get(
        "/{workflow_id:str}/versions/{version:int}",
        summary="One version of a workflow, with its definition",
        opt=READS_WORKFLOWS,
    )
    async def version(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        version: VersionNumber,
        caller: NamedDependency[Caller],
    ) -> VersionRead:
        async with read_models(request) as conn:
            row = await get_version(conn, caller.user_id, workflow_id, version)
        return VersionRead.of_row(row)

    @get(
        "/{workflow_id:str}/versions/{version:int}/diff",
        summary="JSON Patch (RFC 6902) from version `against` to this version",
        opt=READS_WORKFLOWS,
    )
    async def diff(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        version: VersionNumber,
        caller: NamedDependency[Caller],
        against: Annotated[
            int, QueryParameter(ge=1, le=2**31 - 1, description="The version to diff from")
        ],
    ) -> VersionDiff:
        async with read_models(request) as conn:
            patch = await diff_versions(conn, caller.user_id, workflow_id, version, against)
        return VersionDiff(version=version, against=against, patch=patch)


async def workflow_page(
    request: AnyRequest, where: WorkflowFilter, *, limit: int, cursor: str | None
) -> Response[WorkflowPage]:
    """One page of the workflows `where` selects, as the caller may see them."""

    async def load() -> WorkflowPage:
        async with read_models(request) as conn:
            page = await list_workflows(conn, where, limit=limit, cursor=cursor)
        return WorkflowPage(
            items=[WorkflowSummary(**row) for row in page.items], next_cursor=page.next_cursor
        )

    return await cached_read(request, ("workflows", where, limit, cursor), load)


def _trigger(row: dict[str, Any], base_url: str, now: datetime) -> TriggerRead:
    """The answer for a trigger row: an armed schedule knows its next run time; else a cron
    trigger of an active workflow shows when its schedule will fire once armed."""
    fields = dict(row)
    path = fields["webhook_path"]
    cron = fields["cron"]
    scheduled_at = fields.pop("scheduled_at")
    if scheduled_at is None and cron and fields["is_active"]:
        scheduled_at = next_cron_time(cron, fields["timezone"], now)
    return TriggerRead(
        **fields,
        webhook_url=f"{base_url}/webhook/{path}" if path else None,
        webhook_test_url=f"{base_url}/webhook-test/{path}" if path else None,
        next_run_at=scheduled_at,
    )
