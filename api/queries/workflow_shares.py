"""Workflow share queries: who else may use a workflow, read from the workflow_share table."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter

from api.auth import needs
from api.context import current_actor, read_models, readers, wait_for_min_position
from api.schemas.workflows import SharePage, ShareRead
from application.caller import Caller
from application.errors import Forbidden, NotFound
from application.ids import is_id
from application.pagination import DEFAULT_LIMIT, MAX_LIMIT
from application.workflows.queries import list_shares, permission_on
from domain.workflows.permissions import Permission

AnyRequest = Request[Any, Any, Any]


class WorkflowShareQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/{workflow_id:str}/shares",
        summary="The workflow's shares, oldest first (the owner and ADMIN sharees)",
        opt=readers(("workflows", "workflows")),
    )
    async def list(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    ) -> SharePage:
        if not is_id(workflow_id):
            raise NotFound(workflow_id)
        async with read_models(request) as conn:
            held = await permission_on(conn, caller.user_id, workflow_id)
            if held is None:
                raise NotFound(workflow_id)
            if not held.includes(Permission.ADMIN):
                raise Forbidden(f"listing shares needs ADMIN permission; you have {held}")
            page = await list_shares(conn, workflow_id, limit=limit, cursor=cursor)
        return SharePage(
            items=[ShareRead(**row) for row in page.items], next_cursor=page.next_cursor
        )
