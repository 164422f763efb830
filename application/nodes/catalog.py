"""Keep `node_definition` in step with the built-in node registry.

Built-in node types are reference data shipped with the code, not user events: nobody creates or
changes them through a command, so they are written here, at start-up (`a2n migrate up`, `a2n up`,
`a2n serve`), rather than projected from an event store. The sync is an idempotent upsert: rows
that already match are left alone (their updated_at too), changed types are rewritten, and
built-in rows the code no longer ships are deprecated (kept, so old definitions still name them).
Custom nodes (is_built_in = false) are never touched here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from application.reference_data import sync_rows, upsert_changed
from domain.workflows.nodes import BUILT_IN_NODES, NodeType

SYNCED_COLUMNS = (
    "name",
    "display_name",
    "description",
    "type",
    "category",
    "version",
    "is_active",
    "is_built_in",
    "is_public",
    "icon",
    "color",
    "documentation",
    "input_schema",
    "output_schema",
    "settings_schema",
    "credentials",
    "rate_limit",
    "retry_policy",
    "timeout",
    "execution_mode",
    "implementation",
    "tags",
    "metadata",
)


@dataclass(frozen=True)
class CatalogSync:
    """What a sync did: how many built-in types there are, and how many rows it wrote."""

    built_in: int
    written: int
    deprecated: int


def built_in_row(node: NodeType) -> dict[str, Any]:
    """The node_definition row of a built-in type; `settings_schema` holds its config schema."""
    handles: dict[str, Any] = {"inputs": list(node.inputs), "outputs": list(node.outputs)}
    if node.case_outputs is not None:
        handles["caseOutputs"] = {
            "perEntryOf": node.case_outputs.list_field,
            "plus": {node.case_outputs.flag_handle: node.case_outputs.flag_field},
        }
    return {
        "id": node.name,
        "name": node.name,
        "display_name": node.display_name,
        "description": node.description,
        "type": node.kind.value,
        "category": node.category,
        "version": node.version,
        "is_active": True,
        "is_built_in": True,
        "is_public": True,
        "icon": node.icon,
        "color": node.color,
        "documentation": node.documentation or None,
        "input_schema": Jsonb(node.input_schema),
        "output_schema": Jsonb(node.output_schema),
        "settings_schema": Jsonb(node.config_schema),
        "credentials": Jsonb({"required": False, "types": list(node.credential_types)})
        if node.credential_types
        else None,
        "rate_limit": None,
        "retry_policy": None,
        "timeout": node.timeout_ms,
        "execution_mode": node.execution_mode,
        "implementation": Jsonb({"runtime": "BUILT_IN", "handler": node.name}),
        "tags": Jsonb(list(node.tags)),
        "metadata": Jsonb({"handles": handles, "isTrigger": node.is_trigger}),
    }


_UPSERT = upsert_changed(
    "node_definition", SYNCED_COLUMNS, casts={"type": "node_type"}, also_set="deprecated_at = NULL"
)
_DEPRECATE = (
    "UPDATE node_definition SET is_active = false, deprecated_at = now(), updated_at = now() "
    "WHERE is_built_in AND deprecated_at IS NULL AND NOT (id = ANY(%s))"
)


def sync_built_in_nodes(
    conn: psycopg.Connection[Any], nodes: Iterable[NodeType] = BUILT_IN_NODES
) -> CatalogSync:
    """Make the built-in rows of node_definition match `nodes`, in one transaction."""
    rows = [built_in_row(node) for node in nodes]
    written, deprecated = sync_rows(conn, "node_definition", _UPSERT, rows, _DEPRECATE)
    return CatalogSync(built_in=len(rows), written=written, deprecated=deprecated)
