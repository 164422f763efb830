"""Workflow sharing commands: grant, change and revoke shares; transfer ownership."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import needs
from api.commands.workflows import _result
from api.context import check_command_body, current_actor, etag, expected_revision, services
from api.schemas.workflows import (
    ShareCommandResult,
    ShareWorkflow,
    TransferWorkflow,
    UnshareResult,
    WorkflowCommandResult,
)
from application.caller import Caller
from application.workflows.sharing import WorkflowSharing

AnyRequest = Request[Any, Any, Any]


def sharing_service(request: AnyRequest) -> WorkflowSharing:
    return services(request).sharing


class WorkflowShareCommands(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(sharing_service, sync_to_thread=False),
    }

    @post(
        "/{workflow_id:str}/shares",
        summary="Share the workflow with an account, or change its level (201 when new)",
        sync_to_thread=True,
    )
    def share(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        data: JSONBody[ShareWorkflow],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowSharing],
    ) -> Response[ShareCommandResult]:
        recorded = service.share(
            caller,
            workflow_id,
            permission=data.permission,
            user_id=data.user_id,
            email=data.email,
            expected_revision=expected_revision(request),
        )
        return Response(
            ShareCommandResult(
                id=recorded.share.id,
                workflow_id=recorded.workflow.id,
                user_id=recorded.user_id,
                permission=recorded.share.permission,
                revision=recorded.workflow.version,
                position=recorded.position,
            ),
            status_code=201 if recorded.created else 200,
            headers=etag(recorded.workflow.version),
        )

    @delete(
        "/{workflow_id:str}/shares/{user_id:str}",
        summary="Revoke a share (ADMIN), or give up your own",
        sync_to_thread=True,
        status_code=200,
    )
    def unshare(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        user_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowSharing],
    ) -> Response[UnshareResult]:
        recorded = service.unshare(
            caller, workflow_id, user_id, expected_revision=expected_revision(request)
        )
        return Response(
            UnshareResult(
                workflow_id=recorded.aggregate.id,
                user_id=user_id,
                revision=recorded.aggregate.version,
                position=recorded.position,
            ),
            headers=etag(recorded.aggregate.version),
        )

    @post(
        "/{workflow_id:str}/transfer",
        summary="Make another account the owner (you keep an ADMIN share)",
        sync_to_thread=True,
        status_code=200,
    )
    def transfer(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        data: JSONBody[TransferWorkflow],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowSharing],
    ) -> Response[WorkflowCommandResult]:
        return _result(
            service.transfer(
                caller, workflow_id, data.user_id, expected_revision=expected_revision(request)
            ),
            caller,
        )
