"""Workflow comment commands: post, edit, resolve or reopen, and delete comments."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from msgspec import UNSET

from api.auth import needs
from api.context import check_command_body, current_actor, etag, expected_revision, services
from api.schemas.workflows import CommentCommandResult, CommentDeleted, PostComment, UpdateComment
from application.caller import Caller
from application.workflows.comments import WorkflowComments
from domain.errors import ValidationFailed, Violation

AnyRequest = Request[Any, Any, Any]


def comment_service(request: AnyRequest) -> WorkflowComments:
    return services(request).comments


class WorkflowCommentCommands(Controller):
    path = "/workflows"
    tags = ["workflows"]
    opt = needs("workflows:write")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(comment_service, sync_to_thread=False),
    }

    @post(
        "/{workflow_id:str}/comments",
        summary="Comment on the workflow (optionally on one node), or reply to a thread",
        sync_to_thread=True,
    )
    def post_comment(
        self,
        workflow_id: FromPath[str],
        data: JSONBody[PostComment],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowComments],
    ) -> Response[CommentCommandResult]:
        recorded = service.post(
            caller,
            workflow_id,
            content=data.content,
            node_id=data.node_id,
            parent_id=data.parent_id,
        )
        return Response(
            CommentCommandResult.of(recorded),
            status_code=201,
            headers=etag(recorded.comment.version),
        )

    @patch(
        "/{workflow_id:str}/comments/{comment_id:str}",
        summary="Edit your comment's text, or resolve or reopen a thread",
        sync_to_thread=True,
    )
    def update_comment(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        comment_id: FromPath[str],
        data: JSONBody[UpdateComment],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowComments],
    ) -> Response[CommentCommandResult]:
        if data.content is UNSET and data.is_resolved is UNSET:
            raise ValidationFailed([Violation("", "give content, isResolved or both")])
        recorded = service.update(
            caller,
            workflow_id,
            comment_id,
            content=None if data.content is UNSET else data.content,
            is_resolved=None if data.is_resolved is UNSET else data.is_resolved,
            expected_revision=expected_revision(request),
        )
        return Response(CommentCommandResult.of(recorded), headers=etag(recorded.comment.version))

    @delete(
        "/{workflow_id:str}/comments/{comment_id:str}",
        summary="Delete your comment (or any, as an ADMIN of the workflow)",
        sync_to_thread=True,
        status_code=200,
    )
    def delete_comment(
        self,
        request: AnyRequest,
        workflow_id: FromPath[str],
        comment_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[WorkflowComments],
    ) -> Response[CommentDeleted]:
        recorded = service.delete(
            caller, workflow_id, comment_id, expected_revision=expected_revision(request)
        )
        comment = recorded.aggregate
        return Response(
            CommentDeleted(
                id=comment.id,
                workflow_id=comment.workflow_id,
                revision=comment.version,
                position=recorded.position,
            ),
            headers=etag(comment.version),
        )
