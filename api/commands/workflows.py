"""Workflow commands: POST/PATCH/PUT routes that record events and return the new state."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import needs
from api.context import check_command_body, current_actor, etag, expected_revision, services
from api.schemas.workflows import (
    CreateWorkflow,
    DuplicateWorkflow,
    ReplaceDefinition,
    RevertVersion,
    UpdateWorkflow,
    VersionNumber,
    WorkflowCommandResult,
    as_plain,
    set_fields,
)
from application.caller import Caller
from application.eventstore import Recorded
from application.workflows.commands import WorkflowService
from domain.workflows.workflow import Workflow

AnyRequest = Request[Any, Any, Any]


def workflow_service(request: AnyRequest) -> WorkflowService:
    return services(request).workflows


def _result(
    recorded: Recorded[Workflow], caller: Caller, status: int = 200
) -> Response[WorkflowCommandResult]:
    return Response(
        WorkflowCommandResult.recorded(recorded.aggregate, recorded.position, caller.user_id),
        status_code=status,
        headers=etag(recorded.aggregate.version),
    )


class WorkflowCommands(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(workflow_service, sync_to_thread=False),
    }

    @post("/", summary="Create a workflow", sync_to_thread=True, status_code=201)
    def create(
        self,
        data: JSONBody[CreateWorkflow],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        fields = as_plain(data)
        definition = fields.pop("definition", None)
        return _result(
            service.create(
                caller,
                name=data.name,
                definition=definition,
                description=data.description,
                tags=data.tags,
                category=data.category,
                visibility=data.visibility,
                is_template=data.is_template,
            ),
            caller,
            201,
        )

    @patch(
        "/{workflow_id:str}",
        summary="Change details, visibility, template flag, variables or settings",
        description="Details need EDIT; `visibility` and `isTemplate` need ADMIN (or ownership).",
        sync_to_thread=True,
    )
    def update(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        data: JSONBody[UpdateWorkflow],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.update(
                caller, workflow_id, set_fields(data), expected_revision=expected_revision(request)
            ),
            caller,
        )

    @put(
        "/{workflow_id:str}/definition",
        summary="Save a new definition version",
        sync_to_thread=True,
    )
    def replace_definition(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        data: JSONBody[ReplaceDefinition],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        definition = as_plain(data)
        change_message = definition.pop("changeMessage", None)
        return _result(
            service.replace_definition(
                caller,
                workflow_id,
                definition,
                change_message=change_message,
                expected_revision=expected_revision(request),
            ),
            caller,
        )

    @post(
        "/{workflow_id:str}/activate",
        summary="Let triggers start the workflow",
        sync_to_thread=True,
        status_code=200,
    )
    def activate(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.activate(caller, workflow_id, expected_revision=expected_revision(request)),
            caller,
        )

    @post(
        "/{workflow_id:str}/deactivate",
        summary="Stop triggers starting the workflow",
        sync_to_thread=True,
        status_code=200,
    )
    def deactivate(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.deactivate(caller, workflow_id, expected_revision=expected_revision(request)),
            caller,
        )

    @post(
        "/{workflow_id:str}/archive",
        summary="Archive the workflow",
        sync_to_thread=True,
        status_code=200,
    )
    def archive(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.archive(caller, workflow_id, expected_revision=expected_revision(request)),
            caller,
        )

    @post(
        "/{workflow_id:str}/duplicate",
        summary="Copy the workflow into a new one",
        sync_to_thread=True,
        status_code=201,
    )
    def duplicate(
        self,
        workflow_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
        data: JSONBody[DuplicateWorkflow | None] = None,
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.duplicate(caller, workflow_id, name=data.name if data else None), caller, 201
        )

    # -- versions -------------------------------------------------------------------------------

    @post(
        "/{workflow_id:str}/versions/{version:int}/publish",
        summary="Publish a version: triggered runs execute it",
        sync_to_thread=True,
        status_code=200,
    )
    def publish_version(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        version: VersionNumber,
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.publish_version(
                caller, workflow_id, version, expected_revision=expected_revision(request)
            ),
            caller,
        )

    @post(
        "/{workflow_id:str}/versions/{version:int}/revert",
        summary="Save an old version's definition as the newest version",
        sync_to_thread=True,
        status_code=200,
    )
    def revert_to_version(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        version: VersionNumber,
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowService],
        data: JSONBody[RevertVersion | None] = None,
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.revert_to_version(
                caller,
                workflow_id,
                version,
                change_message=data.change_message if data else None,
                expected_revision=expected_revision(request),
            ),
            caller,
        )
