"""Workflow comment queries: a workflow's comments, read from the workflow_comment table."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs
from api.context import current_actor, read_models, readers, wait_for_min_position
from api.schemas.workflows import CommentPage, CommentRead
from application.caller import Caller
from application.errors import NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from application.workflows.queries import list_comments, permission_on

AnyRequest = Request[Any, Any, Any]


class WorkflowCommentQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/{workflow_id:str}/comments",
        summary="The workflow's comments, oldest first; replies name their thread in parentId",
        opt=readers(("workflows", "workflows"), ("workflow_comments", "workflows")),
    )
    async def list(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        node_id: Annotated[str | None, QueryParameter(name="nodeId", max_length=255)] = None,
        resolved: Annotated[
            bool | None, QueryParameter(description="true: resolved threads only; false: open")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> CommentPage:
        if not is_id(workflow_id):
            raise NotFound(workflow_id)
        async with read_models(request) as conn:
            # Comments are the conversation of the people working on the workflow: a PUBLIC
            # workflow's readers do not see them (the RLS policy agrees).
            if await permission_on(conn, caller.user_id, workflow_id, public=False) is None:
                raise NotFound(workflow_id)
            page = await list_comments(
                conn, workflow_id, node_id=node_id, resolved=resolved, limit=limit, cursor=cursor
            )
        return CommentPage(
            items=[CommentRead(**row) for row in page.items], next_cursor=page.next_cursor
        )
