"""Workflow import: POST /workflows/import creates a workflow from an A2N export or an n8n
workflow, and answers with it and a report of what could not be carried over."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, QueryParameter

from api.auth import needs
from api.context import check_command_body, current_actor, etag, services
from api.schemas.workflow_transfer import WorkflowImportResult
from application.caller import Caller
from domain.workflows.transfer import SourceFormat

AnyRequest = Request[Any, Any, Any]


class WorkflowImportCommands(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = {"caller": Provide(current_actor, sync_to_thread=False)}

    @post(
        "/import",
        summary="Create an inactive workflow from an A2N export or an n8n workflow",
        description='Without `format`, a body with `"format": "a2n.workflow"` is read as an '
        "A2N export and one with a `nodes` array and a `connections` object as an n8n "
        "workflow. The answer is the new workflow plus `report.issues`: every node, parameter, "
        "setting, credential or connection that was not carried over as it was.",
        sync_to_thread=True,
        status_code=201,
    )
    def import_workflow(
        self,
        request: AnyRequest,
        data: JSONBody[dict[str, Any]],
        caller: NamedDependency[Caller],
        source_format: Annotated[
            Literal["a2n", "n8n"] | None, QueryParameter(name="format")
        ] = None,
    ) -> Response[WorkflowImportResult]:
        declared = SourceFormat(source_format) if source_format else None
        imported = services(request).transfer.import_document(caller, data, declared)
        return Response(
            WorkflowImportResult.from_import(imported, caller.user_id),
            status_code=201,
            headers=etag(imported.recorded.aggregate.version),
        )
