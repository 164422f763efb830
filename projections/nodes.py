"""node_definition rows of custom nodes (is_built_in = false) and node_definition_version, from the
NodeDefinition aggregate's events.

The built-in rows of node_definition are reference data synced from the code at start-up; this
projector never writes them, and a rebuild replaces only its own rows (`shared`). A custom node's
row shows its current version: the highest published one, else the highest.
"""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.nodes.definition import NodeDefinition, NodeVisibility
from domain.workflows.nodes.model import DEFAULT_INPUT
from projections.projector import EventContext, Projector, jsonb, set_stamped

projector = Projector(
    "nodes",
    applications=("nodes",),
    tables=("node_definition", "node_definition_version"),
    about="custom node rows of node_definition, and node_definition_version",
    shared={"node_definition": "NOT is_built_in"},
)

_JSON_DETAILS = frozenset({"tags"})
_VERSION_COLUMNS = (
    "version",
    "settings_schema",
    "input_schema",
    "output_schema",
    "implementation",
    "timeout",
    "execution_mode",
)


@projector.on(NodeDefinition.Created)
def created(cur: Cursor[Any], event: NodeDefinition.Created, ctx: EventContext) -> None:
    details = event.details
    cur.execute(
        "INSERT INTO node_definition (id, name, display_name, description, type, category, "
        "version, is_active, is_built_in, is_public, icon, color, documentation, input_schema, "
        "output_schema, settings_schema, execution_mode, implementation, tags, metadata, "
        "created_at, updated_at, published_at, created_by, revision) "
        "VALUES (%(id)s, %(name)s, %(display_name)s, %(description)s, %(kind)s::node_type, "
        "%(category)s, '', true, false, %(public)s, %(icon)s, %(color)s, %(documentation)s, "
        "'{}', '{}', '{}', 'SYNC', '{}', %(tags)s, '{}', %(at)s, %(at)s, NULL, %(author)s, "
        "%(revision)s)",
        {
            "id": event.originator_id,
            "name": event.name,
            "display_name": details["display_name"],
            "description": details["description"],
            "kind": event.kind,
            "category": details["category"],
            "public": details["visibility"] == NodeVisibility.PUBLIC,
            "icon": details["icon"],
            "color": details["color"],
            "documentation": details["documentation"],
            "tags": jsonb(details["tags"]),
            "at": event.timestamp,
            "author": event.author_id,
            "revision": event.originator_version,
        },
    )
    _add_version(cur, event, event.spec, ctx)


@projector.on(NodeDefinition.DetailsChanged)
def details_changed(
    cur: Cursor[Any], event: NodeDefinition.DetailsChanged, ctx: EventContext
) -> None:
    changes = {
        key: jsonb(value) if key in _JSON_DETAILS else value
        for key, value in event.changes.items()
        if key != "visibility"
    }
    if "visibility" in event.changes:
        changes["is_public"] = event.changes["visibility"] == NodeVisibility.PUBLIC
    _update(cur, event, changes)


@projector.on(NodeDefinition.VersionAdded)
def version_added(cur: Cursor[Any], event: NodeDefinition.VersionAdded, ctx: EventContext) -> None:
    _add_version(cur, event, event.spec, ctx)


@projector.on(NodeDefinition.VersionPublished)
def version_published(
    cur: Cursor[Any], event: NodeDefinition.VersionPublished, ctx: EventContext
) -> None:
    cur.execute(
        "UPDATE node_definition_version SET published_at = %s "
        "WHERE node_definition_id = %s AND version = %s",
        (event.timestamp, event.originator_id, event.version),
    )
    cur.execute(
        "UPDATE node_definition SET published_at = coalesce(published_at, %s) WHERE id = %s",
        (event.timestamp, event.originator_id),
    )
    _show_current_version(cur, event)


@projector.on(NodeDefinition.Deprecated)
def deprecated(cur: Cursor[Any], event: NodeDefinition.Deprecated, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        {
            "is_active": False,
            "deprecated_at": event.timestamp,
            "replaced_by": event.replacement,
            "deprecation_reason": event.reason,
        },
    )


def _add_version(cur: Cursor[Any], event: Any, spec: dict[str, Any], ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO node_definition_version (node_definition_id, version, ordinal, "
        "settings_schema, input_schema, output_schema, outputs, implementation, timeout, "
        "execution_mode, change_log, created_at, created_by, published_at) "
        "VALUES (%s, %s, (SELECT count(*) + 1 FROM node_definition_version "
        "WHERE node_definition_id = %s), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL)",
        (
            event.originator_id,
            spec["version"],
            event.originator_id,
            jsonb(spec["settings_schema"]),
            jsonb(spec["input_schema"]),
            jsonb(spec["output_schema"]),
            jsonb(spec["outputs"]),
            jsonb(spec["implementation"]),
            spec["timeout"],
            spec["execution_mode"],
            spec["change_log"],
            event.timestamp,
            ctx.actor_id,
        ),
    )
    _show_current_version(cur, event)


def _show_current_version(cur: Cursor[Any], event: Any) -> None:
    """Copy the current version (highest published, else highest) onto the node's row."""
    row = cur.execute(
        "SELECT version, settings_schema, input_schema, output_schema, implementation, timeout, "
        "execution_mode, outputs FROM node_definition_version WHERE node_definition_id = %s "
        "ORDER BY published_at IS NOT NULL DESC, ordinal DESC LIMIT 1",
        (event.originator_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"node {event.originator_id} has no versions")
    values = dict(zip(_VERSION_COLUMNS, row[:-1], strict=True))
    for key in ("settings_schema", "input_schema", "output_schema", "implementation"):
        values[key] = jsonb(values[key])
    handles = {"inputs": [DEFAULT_INPUT], "outputs": row[-1]}
    values["metadata"] = jsonb({"handles": handles, "isTrigger": False})
    _update(cur, event, values)


def _update(cur: Cursor[Any], event: Any, values: dict[str, Any]) -> None:
    set_stamped(cur, "node_definition", event, values)
