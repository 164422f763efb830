"""The WorkflowComment aggregate: threads, node references, who may edit, resolve and delete."""

from __future__ import annotations

import pytest

from domain.aggregate import event_type_name
from domain.errors import InvalidState, NotAllowed, ValidationFailed
from domain.workflows.comment import MAX_CONTENT_LENGTH, WorkflowComment
from domain.workflows.permissions import Permission
from domain.workflows.workflow import Workflow
from tests.unit.test_workflow_aggregate import new_workflow

AUTHOR = "u-2"


def sealed(text: str) -> str:
    return f"sealed:{text}"


def post(workflow: Workflow | None = None, **fields: object) -> WorkflowComment:
    arguments: dict[str, object] = {
        "comment_id": "c-1",
        "workflow": workflow or new_workflow(),
        "author_id": AUTHOR,
        "content": "  Looks good  ",
        "seal": sealed,
    }
    arguments.update(fields)
    return WorkflowComment.post(**arguments)  # type: ignore[arg-type]


def pointers(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [v.pointer for v in error.value.violations]


def replay(comment: WorkflowComment) -> WorkflowComment:
    copy: WorkflowComment | None = None
    for stored in comment.collect_events():
        copy = stored.mutate(copy)  # type: ignore[arg-type]
    assert copy is not None
    return copy


def test_posting_records_the_sealed_trimmed_text_and_the_node() -> None:
    comment = post(node_id="a")
    [posted] = comment.pending_events
    assert isinstance(posted, WorkflowComment.Posted)
    assert (posted.workflow_id, posted.author_id, posted.content) == (
        "w-1",
        AUTHOR,
        "sealed:Looks good",
    )
    assert (posted.node_id, posted.parent_id) == ("a", None)
    assert event_type_name(posted) == "WorkflowCommentPosted"


def test_every_broken_rule_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as error:
        post(content=" ", parent_id="c-0", parent=None)
    assert pointers(error) == ["/content", "/parentId"]
    with pytest.raises(ValidationFailed) as error:
        post(content="x" * (MAX_CONTENT_LENGTH + 1), node_id="gone")
    assert pointers(error) == ["/content", "/nodeId"]
    with pytest.raises(ValidationFailed, match="NUL"):
        post(content="a\x00b")


def test_a_node_must_be_in_the_current_definition() -> None:
    workflow = new_workflow()
    workflow.revise({"nodes": [{"id": "b", "type": "manual_trigger"}]}, version_id="v-2")
    assert post(workflow, node_id="b").node_id == "b"
    with pytest.raises(ValidationFailed, match="current definition"):
        post(workflow, node_id="a")


def test_a_reply_joins_its_thread_and_takes_its_node() -> None:
    workflow = new_workflow()
    thread = post(workflow, node_id="a")
    reply = post(workflow, comment_id="c-2", parent_id=thread.id, parent=thread)
    assert (reply.parent_id, reply.node_id) == ("c-1", "a")
    with pytest.raises(ValidationFailed, match="leave nodeId out"):
        post(workflow, comment_id="c-3", parent_id=thread.id, parent=thread, node_id="a")


def test_threads_are_one_level_deep_and_only_of_their_workflow() -> None:
    workflow = new_workflow()
    thread = post(workflow)
    reply = post(workflow, comment_id="c-2", parent_id=thread.id, parent=thread)
    with pytest.raises(ValidationFailed, match=r"names a reply.*\(c-1\)"):
        post(workflow, comment_id="c-3", parent_id=reply.id, parent=reply)
    other = new_workflow(workflow_id="w-2")
    with pytest.raises(ValidationFailed, match="no comment of this workflow"):
        post(other, comment_id="c-4", parent_id=thread.id, parent=thread)
    thread.delete(AUTHOR, Permission.VIEW)
    with pytest.raises(ValidationFailed, match="no comment of this workflow"):
        post(workflow, comment_id="c-5", parent_id=thread.id, parent=thread)


def test_only_the_author_edits_and_every_edit_is_recorded() -> None:
    workflow = new_workflow()
    comment = post(workflow)
    comment.collect_events()
    with pytest.raises(NotAllowed):
        comment.edit("u-1", "mine now", sealed, workflow)
    with pytest.raises(ValidationFailed):
        comment.edit(AUTHOR, "", sealed, workflow)
    comment.edit(AUTHOR, "Second thought", sealed, workflow)
    comment.edit(AUTHOR, "Second thought", sealed, workflow)
    assert [event_type_name(e) for e in comment.pending_events] == ["WorkflowCommentEdited"] * 2
    assert comment.content == "sealed:Second thought"


@pytest.mark.parametrize(
    ("actor", "held", "allowed"),
    [
        (AUTHOR, Permission.VIEW, True),
        ("u-3", Permission.EXECUTE, False),
        ("u-3", Permission.EDIT, True),
        ("u-1", Permission.OWNER, True),
    ],
)
def test_the_author_or_an_editor_resolves(actor: str, held: Permission, allowed: bool) -> None:
    workflow = new_workflow()
    comment = post(workflow)
    comment.collect_events()
    if not allowed:
        with pytest.raises(NotAllowed):
            comment.set_resolved(True, actor, held, workflow)
        return
    comment.set_resolved(True, actor, held, workflow)
    comment.set_resolved(True, actor, held, workflow)
    comment.set_resolved(False, actor, held, workflow)
    comment.set_resolved(False, actor, held, workflow)
    assert [event_type_name(e) for e in comment.pending_events] == [
        "WorkflowCommentResolved",
        "WorkflowCommentReopened",
    ]


def test_a_reply_is_not_resolved_on_its_own() -> None:
    workflow = new_workflow()
    thread = post(workflow)
    reply = post(workflow, comment_id="c-2", parent_id=thread.id, parent=thread)
    with pytest.raises(InvalidState, match="resolve comment c-1"):
        reply.set_resolved(True, AUTHOR, Permission.OWNER, workflow)


@pytest.mark.parametrize(
    ("actor", "held", "allowed"),
    [
        (AUTHOR, Permission.VIEW, True),
        ("u-3", Permission.EDIT, False),
        ("u-3", Permission.ADMIN, True),
        ("u-1", Permission.OWNER, True),
    ],
)
def test_the_author_or_an_admin_deletes(actor: str, held: Permission, allowed: bool) -> None:
    comment = post()
    if allowed:
        comment.delete(actor, held)
        assert comment.is_deleted
    else:
        with pytest.raises(NotAllowed):
            comment.delete(actor, held)


def test_an_archived_workflow_takes_no_new_comments_but_lets_authors_delete() -> None:
    workflow = new_workflow()
    comment = post(workflow)
    workflow.archive()
    with pytest.raises(InvalidState, match="archived"):
        post(workflow, comment_id="c-2")
    with pytest.raises(InvalidState, match="archived"):
        comment.edit(AUTHOR, "late", sealed, workflow)
    with pytest.raises(InvalidState, match="archived"):
        comment.set_resolved(True, AUTHOR, Permission.VIEW, workflow)
    comment.delete(AUTHOR, Permission.VIEW)


def test_replaying_the_events_gives_the_same_comment() -> None:
    workflow = new_workflow()
    comment = post(workflow, node_id="a")
    comment.edit(AUTHOR, "Edited", sealed, workflow)
    comment.set_resolved(True, AUTHOR, Permission.VIEW, workflow)
    comment.delete(AUTHOR, Permission.VIEW)
    expected = (comment.content, comment.node_id, comment.is_resolved, comment.is_deleted)
    copy = replay(comment)
    assert (copy.content, copy.node_id, copy.is_resolved, copy.is_deleted) == expected
    assert copy.version == 4
