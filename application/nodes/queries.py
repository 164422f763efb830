"""Node catalog queries: read `node_definition` (built-in rows synced from the code at start-up,
custom rows projected from the Nodes log) and `node_definition_version`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
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
    "replaced_by",
    "revision",
    "rating_average",
    "rating_count",
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
    "deprecation_reason",
)
VERSION_COLUMNS = ("version", "published_at", "created_at", "created_by", "change_log")
_FROM_VERSION = (
    "version",
    "settings_schema",
    "input_schema",
    "output_schema",
    "implementation",
    "timeout",
    "execution_mode",
)
# Who may see a row (row-level security says the same): everyone sees built-in nodes and public
# ones with a version published; custom ones their author, and admins all.
_VISIBLE = sql.SQL(
    "(is_built_in OR (is_public AND published_at IS NOT NULL) OR created_by = %(viewer)s "
    "OR %(admin)s)"
)


@dataclass(frozen=True)
class NodeFilter:
    """GET /nodes filters; None means 'any'. Deprecated nodes are left out."""

    viewer_id: str
    viewer_is_admin: bool = False
    kind: str | None = None
    category: str | None = None
    text: str | None = None
    is_built_in: bool | None = None


_CAST = {"type": "type::text AS type", "rating_average": "rating_average::float8 AS rating_average"}


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL(_CAST[n]) if n in _CAST else sql.Identifier(n) for n in names)


async def list_nodes(
    conn: AsyncConnection[Any], where: NodeFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Active node types by name, `limit` per page."""
    conditions: list[sql.Composable] = [_VISIBLE, sql.SQL("is_active")]
    params: dict[str, Any] = {
        "viewer": where.viewer_id,
        "admin": where.viewer_is_admin,
        "limit": limit + 1,
    }
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
    conn: AsyncConnection[Any],
    viewer_id: str,
    reference: str,
    *,
    is_admin: bool = False,
    version: str | None = None,
) -> dict[str, Any] | None:
    """One node type by id or type name, with its schemas, deprecated ones included (old
    definitions name them); with `version`, that version's schemas and runtime (custom nodes),
    None if it has no such version. `versions` lists a custom node's versions, oldest first."""
    query = sql.SQL(
        "SELECT {} FROM node_definition WHERE (id = %(ref)s OR name = %(ref)s) AND {}"
    ).format(_columns(DETAIL_COLUMNS), _VISIBLE)
    params = {"ref": reference, "viewer": viewer_id, "admin": is_admin}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(
            sql.SQL(
                "SELECT {}, {} FROM node_definition_version WHERE node_definition_id = %s "
                "ORDER BY ordinal"
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, VERSION_COLUMNS)),
                sql.SQL(", ").join(
                    sql.Identifier(c)
                    for c in (*_FROM_VERSION, "outputs")
                    if c not in VERSION_COLUMNS
                ),
            ),
            (row["id"],),
        )
        versions = await cur.fetchall()
    if version is not None and version != row["version"]:
        chosen = next((v for v in versions if v["version"] == version), None)
        if chosen is None:
            return None
        row.update({column: chosen[column] for column in _FROM_VERSION})
        row["metadata"] = {**row["metadata"], "handles": {**row["metadata"]["handles"]}}
        row["metadata"]["handles"]["outputs"] = chosen["outputs"]
    row["versions"] = [{column: v[column] for column in VERSION_COLUMNS} for v in versions]
    return row


async def visible_node_id(
    conn: AsyncConnection[Any], viewer_id: str, reference: str, *, is_admin: bool
) -> str | None:
    """The id of the node `reference` (id or type name) names, if the viewer sees it."""
    query = sql.SQL("SELECT id FROM node_definition WHERE (id = %(ref)s OR name = %(ref)s) AND {}")
    params = {"ref": reference, "viewer": viewer_id, "admin": is_admin}
    async with conn.cursor() as cur:
        await cur.execute(query.format(_VISIBLE), params)
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def list_ratings(
    conn: AsyncConnection[Any], node_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """A node's ratings, the most recently changed first."""
    params: dict[str, Any] = {"node": node_id, "limit": limit + 1}
    after = sql.SQL("true")
    if cursor is not None:
        key = decode_cursor(cursor, ("at", "id"))
        after = sql.SQL("(updated_at, id) < (%(at)s::timestamptz, %(id)s)")
        params.update(at=plain_text("cursor", key["at"]), id=plain_text("cursor", key["id"]))
    query = sql.SQL(
        "SELECT id, node_definition_id, user_id, rating, review, created_at, updated_at, revision "
        "FROM node_rating WHERE node_definition_id = %(node)s AND {} "
        "ORDER BY updated_at DESC, id DESC LIMIT %(limit)s"
    ).format(after)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"at": row["updated_at"].isoformat(), "id": row["id"]})


USAGE_COLUMNS = (
    "date",
    "executions",
    "successes",
    "failures",
    "avg_duration_ms",
    "p95_duration_ms",
    "distinct_users",
)


async def usage_stats(
    conn: AsyncConnection[Any], node_id: str, first: date, last: date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A node's totals (node_definition's counters) and its days from `first` to `last`."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT usage_count, success_rate, avg_execution_time FROM node_definition "
            "WHERE id = %s",
            (node_id,),
        )
        totals = await cur.fetchone()
        await cur.execute(
            sql.SQL(
                "SELECT {} FROM node_usage_stats WHERE node_definition_id = %s "
                "AND date BETWEEN %s AND %s ORDER BY date"
            ).format(sql.SQL(", ").join(map(sql.Identifier, USAGE_COLUMNS))),
            (node_id, first, last),
        )
        days = await cur.fetchall()
    return totals or {}, days


async def list_collections(
    conn: AsyncConnection[Any], viewer_id: str, *, mine: bool | None, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Collections the viewer sees (row-level security decides), newest first, each with its
    node ids in order; `mine` keeps only the viewer's (true) or only others' (false)."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"viewer": viewer_id, "limit": limit + 1}
    if mine is not None:
        conditions.append(sql.SQL("(user_id = %(viewer)s) = %(mine)s"))
        params["mine"] = mine
    if cursor is not None:
        conditions.append(sql.SQL("id < %(after)s"))
        params["after"] = plain_text("cursor", decode_cursor(cursor, ("id",))["id"])
    query = sql.SQL(
        "SELECT c.id, c.name, c.description, c.visibility, c.item_count, c.user_id, "
        "c.created_at, c.updated_at, c.revision, coalesce((SELECT jsonb_agg(i.node_definition_id "
        "ORDER BY i.position) FROM node_collection_item i WHERE i.node_collection_id = c.id), "
        "'[]') AS items FROM node_collection c WHERE {} ORDER BY c.id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})


async def list_templates(
    conn: AsyncConnection[Any],
    *,
    node_id: str | None,
    text: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """Templates the viewer sees (row-level security decides), newest first."""
    conditions: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit + 1}
    if node_id is not None:
        conditions.append(sql.SQL("node_definition_id = %(node)s"))
        params["node"] = node_id
    if plain_text("q", text):
        conditions.append(
            sql.SQL("strpos(lower(name || ' ' || coalesce(description, '')), lower(%(text)s)) > 0")
        )
        params["text"] = text
    if cursor is not None:
        conditions.append(sql.SQL("id < %(after)s"))
        params["after"] = plain_text("cursor", decode_cursor(cursor, ("id",))["id"])
    query = sql.SQL(
        "SELECT id, node_definition_id, node_type, name, description, visibility, config, tags, "
        "user_id, created_at, updated_at, revision FROM node_template WHERE {} "
        "ORDER BY id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})
