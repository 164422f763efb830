"""Comment use cases: post, edit, resolve or reopen, and delete comments on a workflow.

Who may do what is decided on the Workflow aggregate (read from the event store, never a lagging
read model): anyone who may VIEW the workflow reads and posts; a workflow they cannot see at all
is 404. A comment of another workflow, or a deleted one, is 404 too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.caller import Caller
from application.errors import NotFound
from application.eventstore import Recorded
from application.identity.personal_data import PersonalData
from application.ids import new_id
from application.workflows.access import access_check
from application.workflows.app import WorkflowsApp
from domain.workflows.comment import WorkflowComment
from domain.workflows.permissions import Permission
from domain.workflows.workflow import Workflow


@dataclass(frozen=True)
class CommentRecorded:
    """A comment as saved, its text in clear for the answer, and the position reached."""

    comment: WorkflowComment
    content: str | None
    position: int


class WorkflowComments:
    def __init__(self, app: WorkflowsApp, personal: PersonalData) -> None:
        self.app = app
        self.personal = personal

    def post(
        self,
        caller: Caller,
        workflow_id: str,
        *,
        content: str,
        node_id: str | None = None,
        parent_id: str | None = None,
    ) -> CommentRecorded:
        """A new thread, or with `parent_id` a reply to one (VIEW is enough for either)."""
        workflow = self._workflow(caller, workflow_id)
        parent = self._parent(parent_id) if parent_id is not None else None
        comment = WorkflowComment.post(
            comment_id=new_id(),
            workflow=workflow,
            author_id=caller.user_id,
            content=content,
            seal=self._sealer(caller.user_id),
            node_id=node_id,
            parent_id=parent_id,
            parent=parent,
        )
        position = self.app.record(caller.metadata(), comment)
        return CommentRecorded(comment, self.text_of(comment), position)

    def update(
        self,
        caller: Caller,
        workflow_id: str,
        comment_id: str,
        *,
        content: str | None = None,
        is_resolved: bool | None = None,
        expected_revision: int | None = None,
    ) -> CommentRecorded:
        """Edit the text (its author) and/or resolve or reopen the thread (its author or EDIT);
        both or nothing are saved."""

        def apply(comment: WorkflowComment, workflow: Workflow, held: Permission) -> None:
            if content is not None:
                comment.edit(caller.user_id, content, self._sealer(comment.author_id), workflow)
            if is_resolved is not None:
                comment.set_resolved(is_resolved, caller.user_id, held, workflow)

        recorded = self._change(caller, workflow_id, comment_id, apply, expected_revision)
        return CommentRecorded(
            recorded.aggregate, self.text_of(recorded.aggregate), recorded.position
        )

    def delete(
        self,
        caller: Caller,
        workflow_id: str,
        comment_id: str,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[WorkflowComment]:
        """Delete a comment (its author, or an ADMIN of the workflow)."""
        return self._change(
            caller,
            workflow_id,
            comment_id,
            lambda comment, _, held: comment.delete(caller.user_id, held),
            expected_revision,
        )

    def text_of(self, comment: WorkflowComment) -> str | None:
        """The comment's text in clear; None once its author has been erased."""
        return self.personal.open(comment.author_id, comment.content)

    def _change(
        self,
        caller: Caller,
        workflow_id: str,
        comment_id: str,
        command: Callable[[WorkflowComment, Workflow, Permission], Any],
        expected_revision: int | None,
    ) -> Recorded[WorkflowComment]:
        workflow = self._workflow(caller, workflow_id)
        held = workflow.granted_permission(caller.user_id)
        assert held is not None  # _workflow let only callers with access through

        def belongs(comment: WorkflowComment) -> bool:
            return comment.workflow_id == workflow.id and not comment.is_deleted

        return self.app.change(
            comment_id,
            WorkflowComment,
            lambda comment: command(comment, workflow, held),
            caller.metadata(),
            expected_revision=expected_revision,
            visible=belongs,
        )

    def _workflow(self, caller: Caller, workflow_id: str) -> Workflow:
        """The workflow, if the caller owns it or holds a share: PUBLIC visibility lets everyone
        read a workflow, not join the conversation about it."""
        workflow = self.app.load(workflow_id, Workflow)
        if not access_check(caller.user_id, Permission.VIEW, public=False)(workflow):
            raise NotFound(workflow_id)
        return workflow

    def _parent(self, parent_id: str) -> WorkflowComment | None:
        """The comment a reply answers; None when there is none (the domain says why it is
        refused, with the rest of what is wrong with the request)."""
        try:
            return self.app.load(parent_id, WorkflowComment)
        except NotFound:
            return None

    def _sealer(self, author_id: str) -> Callable[[str], str]:
        return lambda text: self.personal.seal(author_id, text)
