"""Workflow export: GET /workflows/{id}/export reads the workflow read model and answers an A2N
export document, which POST /workflows/import takes back."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from api.auth import needs
from api.context import current_actor, read_models, services, wait_for_min_position
from api.queries.workflows import READS_WORKFLOWS
from application.caller import Caller
from application.errors import NotFound
from application.ids import is_id
from application.workflows.queries import get_workflow

AnyRequest = Request[Any, Any, Any]


class WorkflowExportQueries(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:read")
    before_request = staticmethod(wait_for_min_position)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @get(
        "/{workflow_id:str}/export",
        summary="The workflow as an A2N export document",
        description="Format marker and version, name, description, tags, category and "
        "definition; no user ids, and credentials referenced by name.",
        opt=READS_WORKFLOWS,
    )
    async def export(
        self, request: AnyRequest, workflow_id: FromPath[str], caller: NamedDependency[Caller]
    ) -> dict[str, Any]:
        if not is_id(workflow_id):
            raise NotFound(workflow_id)
        async with read_models(request) as conn:
            row = await get_workflow(conn, caller.user_id, workflow_id)
        if row is None:
            raise NotFound(workflow_id)
        document: dict[str, Any] = await to_thread.run_sync(
            services(request).transfer.export, caller, row
        )
        return document
