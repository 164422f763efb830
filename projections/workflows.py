"""workflow, workflow_version and workflow_share tables, from the Workflows context's events."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor, sql

from domain.workflows.workflow import Workflow
from projections.projector import EventContext, Projector, jsonb

projector = Projector(
    "workflows",
    applications=("workflows",),
    tables=("workflow", "workflow_version", "workflow_share"),
    about="workflow, workflow_version and workflow_share tables",
)

_JSON_DETAILS = frozenset({"tags"})


@projector.on(Workflow.Created)
def workflow_created(cur: Cursor[Any], event: Workflow.Created, ctx: EventContext) -> None:
    definition = event.definition
    cur.execute(
        "INSERT INTO workflow (id, name, description, definition, is_template, visibility, "
        "version, tags, category, variables, settings, created_at, updated_at, user_id, "
        "revision, duplicated_from) "
        "VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.name,
            event.description,
            jsonb(definition),
            event.is_template,
            event.visibility,
            jsonb(event.tags),
            event.category,
            jsonb(definition.get("variables", {})),
            jsonb(definition.get("settings", {})),
            event.timestamp,
            event.timestamp,
            event.owner_id,
            event.originator_version,
            event.duplicated_from,
        ),
    )
    _insert_version(cur, event.originator_id, event.version_id, 1, definition, None, event, ctx)


@projector.on(Workflow.DetailsChanged)
def details_changed(cur: Cursor[Any], event: Workflow.DetailsChanged, ctx: EventContext) -> None:
    assignments = [
        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in sorted(event.changes)
    ]
    values = [
        jsonb(event.changes[c]) if c in _JSON_DETAILS else event.changes[c]
        for c in sorted(event.changes)
    ]
    _update(cur, event, sql.SQL(", ").join(assignments), values)


@projector.on(Workflow.VersionCreated)
def version_created(cur: Cursor[Any], event: Workflow.VersionCreated, ctx: EventContext) -> None:
    definition = event.definition
    _update(
        cur,
        event,
        sql.SQL("definition = %s, version = %s, variables = %s, settings = %s"),
        [
            jsonb(definition),
            event.version,
            jsonb(definition.get("variables", {})),
            jsonb(definition.get("settings", {})),
        ],
    )
    _insert_version(
        cur,
        event.originator_id,
        event.version_id,
        event.version,
        definition,
        event.change_message,
        event,
        ctx,
    )


@projector.on(Workflow.Activated)
def activated(cur: Cursor[Any], event: Workflow.Activated, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = true"), [])


@projector.on(Workflow.Deactivated)
def deactivated(cur: Cursor[Any], event: Workflow.Deactivated, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = false"), [])


@projector.on(Workflow.Archived)
def archived(cur: Cursor[Any], event: Workflow.Archived, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = false, archived_at = %s"), [event.timestamp])


def _update(
    cur: Cursor[Any],
    event: Any,
    assignments: sql.Composable | None = None,
    values: tuple[Any, ...] | list[Any] = (),
) -> None:
    """Apply `assignments` (if any) and stamp the row with the event's time and revision."""
    stamp = sql.SQL("updated_at = %s, revision = %s")
    cur.execute(
        sql.SQL("UPDATE workflow SET {} WHERE id = %s").format(
            stamp if assignments is None else sql.SQL(", ").join([assignments, stamp])
        ),
        [*values, event.timestamp, event.originator_version, event.originator_id],
    )
    if cur.rowcount != 1:
        raise LookupError(f"workflow {event.originator_id} is not in the workflow table")


def _insert_version(
    cur: Cursor[Any],
    workflow_id: str,
    version_id: str,
    version: int,
    definition: dict[str, Any],
    change_log: str | None,
    event: Any,
    ctx: EventContext,
) -> None:
    cur.execute(
        "INSERT INTO workflow_version "
        "(id, workflow_id, version, definition, change_log, created_at, user_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            version_id,
            workflow_id,
            version,
            jsonb(definition),
            change_log,
            event.timestamp,
            ctx.actor_id,
        ),
    )


# -- sharing ---------------------------------------------------------------------------------


@projector.on(Workflow.Shared)
def shared(cur: Cursor[Any], event: Workflow.Shared, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO workflow_share "
        "(id, workflow_id, user_id, permission, shared_by, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (workflow_id, user_id) DO UPDATE SET permission = EXCLUDED.permission, "
        "shared_by = EXCLUDED.shared_by, updated_at = EXCLUDED.updated_at",
        (
            event.share_id,
            event.originator_id,
            event.user_id,
            event.permission,
            ctx.actor_id,
            event.timestamp,
            event.timestamp,
        ),
    )
    _update(cur, event)


@projector.on(Workflow.Unshared)
def unshared(cur: Cursor[Any], event: Workflow.Unshared, ctx: EventContext) -> None:
    cur.execute(
        "DELETE FROM workflow_share WHERE workflow_id = %s AND user_id = %s",
        (event.originator_id, event.user_id),
    )
    _update(cur, event)


@projector.on(Workflow.OwnershipTransferred)
def ownership_transferred(
    cur: Cursor[Any], event: Workflow.OwnershipTransferred, ctx: EventContext
) -> None:
    _update(cur, event, sql.SQL("user_id = %s"), [event.owner_id])
