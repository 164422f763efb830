"""Node catalog queries: read `node_definition`, which start-up keeps in step with the code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from application.pagination import Page, decode_cursor, page_of, plain_text

SUMMARY_COLUMNS = (
    "id",
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
    "tags",
    "metadata",
    "usage_count",
    "success_rate",
    "avg_execution_time",
    "created_at",
    "updated_at",
    "published_at",
    "deprecated_at",
    "created_by",
)
DETAIL_COLUMNS = (
    *SUMMARY_COLUMNS,
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
)
# Who may see a row: everyone sees built-in and public nodes; custom ones their creator.
_VISIBLE = sql.SQL("(is_built_in OR is_public OR created_by = %(viewer)s)")


@dataclass(frozen=True)
class NodeFilter:
    """GET /nodes filters; None means 'any'. Deprecated nodes are left out."""

    viewer_id: str
    kind: str | None = None
    category: str | None = None
    text: str | None = None
    is_built_in: bool | None = None


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("type::text AS type") if n == "type" else sql.Identifier(n) for n in names
    )


async def list_nodes(
    conn: AsyncConnection[Any], where: NodeFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Active node types by name, `limit` per page."""
    conditions: list[sql.Composable] = [_VISIBLE, sql.SQL("is_active")]
    params: dict[str, Any] = {"viewer": where.viewer_id, "limit": limit + 1}
    if where.kind is not None:
        conditions.append(sql.SQL("type = %(kind)s::node_type"))
        params["kind"] = where.kind
    if plain_text("category", where.category) is not None:
        conditions.append(sql.SQL("category = %(category)s"))
        params["category"] = where.category
    if plain_text("q", where.text):
        conditions.append(
            sql.SQL(
                "strpos(lower(name || ' ' || display_name || ' ' || coalesce(description, '')), "
                "lower(%(text)s)) > 0"
            )
        )
        params["text"] = where.text
    if where.is_built_in is not None:
        conditions.append(sql.SQL("is_built_in = %(built_in)s"))
        params["built_in"] = where.is_built_in
    if cursor is not None:
        conditions.append(sql.SQL('name COLLATE "C" > %(after)s'))
        params["after"] = plain_text("cursor", decode_cursor(cursor, ("name",))["name"])
    query = sql.SQL(
        'SELECT {} FROM node_definition WHERE {} ORDER BY name COLLATE "C" LIMIT %(limit)s'
    ).format(_columns(SUMMARY_COLUMNS), sql.SQL(" AND ").join(conditions))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"name": row["name"]})


async def get_node(
    conn: AsyncConnection[Any], viewer_id: str, node_id: str
) -> dict[str, Any] | None:
    """One node type with its schemas, deprecated ones included (old definitions name them)."""
    query = sql.SQL("SELECT {} FROM node_definition WHERE id = %(id)s AND {}").format(
        _columns(DETAIL_COLUMNS), _VISIBLE
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"id": node_id, "viewer": viewer_id})
        return await cur.fetchone()
