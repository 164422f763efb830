"""Workflow queries: GET routes reading the workflow read model, or the event store for history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import needs
from api.context import (
    current_actor,
    etag,
    read_models,
    readers,
    services,
    wait_for_min_position,
)
from api.schemas.workflows import WorkflowPage, WorkflowRead, WorkflowState, WorkflowSummary
from application.caller import Caller
from application.errors import InvalidParameter, NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from application.workflows.queries import WorkflowFilter, get_workflow, list_workflows

AnyRequest = Request[Any, Any, Any]
READS_WORKFLOWS = readers(("workflows", "workflows"))


class WorkflowQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = wait_for_min_position
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
    ) -> WorkflowPage:
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
        async with read_models(request) as conn:
            page = await list_workflows(conn, where, limit=limit, cursor=cursor)
        return WorkflowPage(
            items=[WorkflowSummary(**row) for row in page.items], next_cursor=page.next_cursor
        )

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
        async with read_models(request) as conn:
            row = await get_workflow(conn, caller.user_id, workflow_id)
        if row is None:
            raise NotFound(workflow_id)
        return Response(WorkflowRead(**row), headers=etag(row["revision"]))

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
