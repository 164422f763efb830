"""Comments on a workflow: threads of one level, optionally about one node, resolved as a whole.

Each comment is its own aggregate (a workflow's history does not grow with its discussion, and
two people commenting at once never conflict). A thread is a top-level comment and its replies;
a reply answers a top-level comment, never another reply (as in Figma or Google Docs), so
resolving the thread's first comment resolves the thread, and a reply is never resolved alone.

Comment text is the author's personal data: the application seals it with the author's data key
(`seal`), so the events hold only ciphertext and erasing the author makes it unreadable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, NotAllowed, ValidationFailed, Violation
from domain.workflows.permissions import Permission
from domain.workflows.workflow import Workflow

MAX_CONTENT_LENGTH = 10_000

Seal = Callable[[str], str]
"""Turns the comment text into what the events store (the author's sealed text)."""


class WorkflowComment(Aggregate):
    class Posted(Aggregate.Created):
        workflow_id: str
        author_id: str
        content: str
        node_id: str | None
        parent_id: str | None

    class Edited(Aggregate.Event):
        content: str

    class Deleted(Aggregate.Event):
        pass

    class Resolved(Aggregate.Event):
        pass

    class Reopened(Aggregate.Event):
        pass

    @event(Posted)
    def __init__(
        self,
        workflow_id: str,
        author_id: str,
        content: str,
        node_id: str | None,
        parent_id: str | None,
    ) -> None:
        self.workflow_id = workflow_id
        self.author_id = author_id
        self.content = content
        self.node_id = node_id
        self.parent_id = parent_id
        self.is_resolved = False
        self.is_deleted = False

    @classmethod
    def post(
        cls,
        *,
        comment_id: str,
        workflow: Workflow,
        author_id: str,
        content: Any,
        seal: Seal,
        node_id: str | None = None,
        parent_id: str | None = None,
        parent: WorkflowComment | None = None,
    ) -> WorkflowComment:
        """A new comment on `workflow`, or a reply to comment `parent_id` (`parent`, None when
        there is no such comment). A reply is about its thread's node, so it names none itself;
        `node_id` must be a node of the workflow's current definition."""
        text, violations = _checked_content(content)
        if parent_id is not None:
            violations += _parent_violations(parent, workflow.id)
            if node_id is not None:
                violations.append(
                    Violation("/nodeId", "a reply is about its thread's node; leave nodeId out")
                )
        elif node_id is not None and node_id not in {n["id"] for n in workflow.definition["nodes"]}:
            violations.append(
                Violation("/nodeId", "names no node of the workflow's current definition")
            )
        if violations:
            raise ValidationFailed(violations)
        _refuse_if_archived(workflow)
        return cls._create(
            cls.Posted,
            id=comment_id,
            workflow_id=workflow.id,
            author_id=author_id,
            content=seal(text),
            node_id=parent.node_id if parent is not None else node_id,
            parent_id=parent.id if parent is not None else None,
        )

    def edit(self, actor_id: str, content: Any, seal: Seal, workflow: Workflow) -> None:
        """Replace the text; only its author may, and every edit is recorded (sealed texts
        cannot be compared, and an editor expects `editedAt` to move)."""
        if actor_id != self.author_id:
            raise NotAllowed("only its author may edit a comment")
        text, violations = _checked_content(content)
        if violations:
            raise ValidationFailed(violations)
        _refuse_if_archived(workflow)
        self._edited(content=seal(text))

    def set_resolved(
        self, resolved: bool, actor_id: str, held: Permission, workflow: Workflow
    ) -> None:
        """Resolve or reopen the thread this comment starts: its author, or anyone who may EDIT
        the workflow, may. The state already held records nothing."""
        if actor_id != self.author_id and not held.includes(Permission.EDIT):
            raise NotAllowed(
                f"resolving a thread needs EDIT permission on the workflow; you have {held}"
            )
        if self.parent_id is not None:
            raise InvalidState(
                f"a reply is resolved with its thread: resolve comment {self.parent_id}"
            )
        _refuse_if_archived(workflow)
        if resolved and not self.is_resolved:
            self._resolved()
        elif not resolved and self.is_resolved:
            self._reopened()

    def delete(self, actor_id: str, held: Permission) -> None:
        """Remove the comment: its author, or an ADMIN of the workflow (moderation), may. Allowed
        on an archived workflow too: taking one's words back is always possible."""
        if actor_id != self.author_id and not held.includes(Permission.ADMIN):
            raise NotAllowed(
                f"only its author or an ADMIN of the workflow may delete a comment; you have {held}"
            )
        self._deleted()

    @event(Edited)
    def _edited(self, content: str) -> None:
        self.content = content

    @event(Resolved)
    def _resolved(self) -> None:
        self.is_resolved = True

    @event(Reopened)
    def _reopened(self) -> None:
        self.is_resolved = False

    @event(Deleted)
    def _deleted(self) -> None:
        self.is_deleted = True


def _checked_content(content: Any) -> tuple[str, list[Violation]]:
    """The text without surrounding whitespace, and the rules it breaks."""
    if not isinstance(content, str) or not content.strip():
        return "", [Violation("/content", "must be a non-empty string")]
    text = content.strip()
    if "\x00" in text:
        return text, [Violation("/content", "contains a NUL character")]
    if len(text) > MAX_CONTENT_LENGTH:
        return text, [Violation("/content", f"is longer than {MAX_CONTENT_LENGTH} characters")]
    return text, []


def _parent_violations(parent: WorkflowComment | None, workflow_id: str) -> list[Violation]:
    if parent is None or parent.workflow_id != workflow_id or parent.is_deleted:
        return [Violation("/parentId", "names no comment of this workflow")]
    if parent.parent_id is not None:
        return [
            Violation(
                "/parentId",
                f"names a reply; reply to the thread's first comment ({parent.parent_id})",
            )
        ]
    return []


def _refuse_if_archived(workflow: Workflow) -> None:
    if workflow.archived_at is not None:
        raise InvalidState("the workflow is archived: its comments can no longer change")
