"""workflow_comment, from the WorkflowComment aggregate's events (and User.Erased).

Texts arrive sealed with their author's data key and are opened here (NULL once the author is
erased, in live runs and rebuilds alike). A deleted comment with replies stays as a tombstone
without its text until its last reply goes; one without replies leaves the table. Every decision
reads only this projector's own table, so a rebuild from zero gives the same rows.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.identity.user import User
from domain.workflows.comment import WorkflowComment
from projections.identity import open_personal
from projections.projector import EventContext, Projector, expect_one

projector = Projector(
    "workflow_comments",
    applications=("workflows", "identity"),
    tables=("workflow_comment",),
    about="workflow_comment table (comment texts blanked when their author is erased)",
)


@projector.on(WorkflowComment.Posted)
def posted(cur: Cursor[Any], event: WorkflowComment.Posted, ctx: EventContext) -> None:
    # A reply takes its thread's resolved state, so `resolved=` filters whole threads.
    cur.execute(
        "INSERT INTO workflow_comment (id, workflow_id, user_id, node_id, parent_id, content, "
        "is_resolved, resolved_at, resolved_by, created_at, updated_at, revision) "
        "SELECT %(id)s, %(workflow)s, %(author)s, %(node)s, %(parent)s, %(content)s, "
        "coalesce(t.is_resolved, false), t.resolved_at, t.resolved_by, %(at)s, %(at)s, %(rev)s "
        "FROM (SELECT 1) one LEFT JOIN workflow_comment t ON t.id = %(parent)s",
        {
            "id": event.originator_id,
            "workflow": event.workflow_id,
            "author": event.author_id,
            "node": event.node_id,
            "parent": event.parent_id,
            "content": open_personal(cur, event.author_id, event.content),
            "at": event.timestamp,
            "rev": event.originator_version,
        },
    )


@projector.on(WorkflowComment.Edited)
def edited(cur: Cursor[Any], event: WorkflowComment.Edited, ctx: EventContext) -> None:
    row = cur.execute(
        "SELECT user_id FROM workflow_comment WHERE id = %s", (event.originator_id,)
    ).fetchone()
    author = row[0] if row else ""
    content = open_personal(cur, author, event.content)
    _update(cur, event, "content = %(content)s, edited_at = %(at)s", content=content)


@projector.on(WorkflowComment.Resolved)
def resolved(cur: Cursor[Any], event: WorkflowComment.Resolved, ctx: EventContext) -> None:
    _update(cur, event)
    _set_thread(cur, event, True, event.timestamp, ctx.actor_id)


@projector.on(WorkflowComment.Reopened)
def reopened(cur: Cursor[Any], event: WorkflowComment.Reopened, ctx: EventContext) -> None:
    _update(cur, event)
    _set_thread(cur, event, False, None, None)


@projector.on(WorkflowComment.Deleted)
def deleted(cur: Cursor[Any], event: WorkflowComment.Deleted, ctx: EventContext) -> None:
    comment_id = event.originator_id
    _update(cur, event, "is_deleted = true, deleted_at = %(at)s, content = NULL")
    cur.execute(
        "DELETE FROM workflow_comment c WHERE c.id = %s "
        "AND NOT EXISTS (SELECT 1 FROM workflow_comment r WHERE r.parent_id = c.id) "
        "RETURNING c.parent_id",
        (comment_id,),
    )
    gone = cur.fetchone()
    if gone is not None and gone[0] is not None:
        # The last reply of a tombstone takes the tombstone with it.
        cur.execute(
            "DELETE FROM workflow_comment t WHERE t.id = %s AND t.is_deleted "
            "AND NOT EXISTS (SELECT 1 FROM workflow_comment r WHERE r.parent_id = t.id)",
            (gone[0],),
        )


@projector.on(User.Erased)
def author_erased(cur: Cursor[Any], event: User.Erased, ctx: EventContext) -> None:
    """The data key that sealed the texts is gone (or soon will be): blank them now, as a
    rebuild, which can no longer open them, would."""
    cur.execute(
        "UPDATE workflow_comment SET content = NULL WHERE user_id = %s", (event.originator_id,)
    )


def _update(cur: Cursor[Any], event: Any, assignments: str = "", **values: Any) -> None:
    """Apply `assignments` and stamp the comment with the event's time and revision."""
    expect_one(
        cur,
        "UPDATE workflow_comment SET "
        + (assignments + ", " if assignments else "")
        + "updated_at = %(at)s, revision = %(rev)s WHERE id = %(id)s",
        {"at": event.timestamp, "rev": event.originator_version, "id": event.originator_id}
        | values,
        f"comment {event.originator_id} is not in the workflow_comment table",
    )


def _set_thread(cur: Cursor[Any], event: Any, resolved: bool, at: Any, by: str | None) -> None:
    cur.execute(
        "UPDATE workflow_comment SET is_resolved = %s, resolved_at = %s, resolved_by = %s "
        "WHERE id = %s OR parent_id = %s",
        (resolved, at, by, event.originator_id, event.originator_id),
    )
