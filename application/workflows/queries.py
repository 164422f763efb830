"""Workflow queries: read the projected `workflow` tables (never the event store).

A caller sees the workflows they own and those shared with them; each row says the caller's
`permission` on it (OWNER, or the level of their share).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from application.pagination import Page, decode_cursor, page_of
from domain.workflows.permissions import Permission

SUMMARY_COLUMNS = (
    "id",
    "name",
    "description",
    "is_active",
    "is_template",
    "visibility",
    "version",
    "published_version",
    "tags",
    "category",
    "execution_count",
    "success_count",
    "failure_count",
    "last_executed_at",
    "avg_execution_time",
    "created_at",
    "updated_at",
    "published_at",
    "archived_at",
    "user_id",
    "revision",
    "duplicated_from",
)
DETAIL_COLUMNS = (*SUMMARY_COLUMNS, "definition", "variables", "settings")


@dataclass(frozen=True)
class WorkflowFilter:
    """GET /workflows filters; None means 'any'."""

    viewer_id: str
    shared_with_me: bool | None = None
    """True: only workflows shared with the viewer; False: only their own; None: both."""
    is_active: bool | None = None
    category: str | None = None
    tag: str | None = None
    text: str | None = None
    visibility: str | None = None
    include_archived: bool = False


# The workflows with the viewer's share of each, if any; _ACCESSIBLE keeps those they may see.
_VISIBLE = sql.SQL(
    "workflow w LEFT JOIN workflow_share s ON s.workflow_id = w.id AND s.user_id = %(viewer)s"
)
_ACCESSIBLE = sql.SQL("(w.user_id = %(viewer)s OR s.user_id IS NOT NULL)")
_PERMISSION = sql.SQL(
    "CASE WHEN w.user_id = %(viewer)s THEN 'OWNER' ELSE s.permission::text END AS permission"
)


def _columns(names: tuple[str, ...]) -> sql.Composable:
    """The workflow columns (of `w`), and the viewer's permission on the workflow."""
    return sql.SQL(", ").join(
        [
            *(
                sql.SQL("{}::text").format(sql.Identifier("w", n))
                if n == "visibility"
                else sql.Identifier("w", n)
                for n in names
            ),
            _PERMISSION,
        ]
    )


async def list_workflows(
    conn: AsyncConnection[Any], where: WorkflowFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Newest first (ids are time-ordered), `limit` per page."""
    conditions: list[sql.Composable] = [_ACCESSIBLE]
    params: dict[str, Any] = {"viewer": where.viewer_id, "limit": limit + 1}
    if where.shared_with_me is not None:
        conditions.append(
            sql.SQL("w.user_id <> %(viewer)s" if where.shared_with_me else "w.user_id = %(viewer)s")
        )
    if where.is_active is not None:
        conditions.append(sql.SQL("w.is_active = %(active)s"))
        params["active"] = where.is_active
    if where.category is not None:
        conditions.append(sql.SQL("w.category = %(category)s"))
        params["category"] = where.category
    if where.tag is not None:
        conditions.append(sql.SQL("w.tags @> %(tag)s"))
        params["tag"] = Jsonb([where.tag])
    if where.visibility is not None:
        conditions.append(sql.SQL("w.visibility = %(visibility)s::workflow_visibility"))
        params["visibility"] = where.visibility
    if where.text:
        conditions.append(sql.SQL("(w.name ILIKE %(text)s OR w.description ILIKE %(text)s)"))
        params["text"] = "%" + _escape_like(where.text) + "%"
    if not where.include_archived:
        conditions.append(sql.SQL("w.archived_at IS NULL"))
    if cursor is not None:
        conditions.append(sql.SQL("w.id < %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY w.id DESC LIMIT %(limit)s").format(
        _columns(SUMMARY_COLUMNS), _VISIBLE, sql.SQL(" AND ").join(conditions)
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})


async def get_workflow(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str
) -> dict[str, Any] | None:
    """The workflow, if `viewer_id` owns it or it is shared with them."""
    query = sql.SQL("SELECT {} FROM {} WHERE w.id = %(id)s AND {}").format(
        _columns(DETAIL_COLUMNS), _VISIBLE, _ACCESSIBLE
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"id": workflow_id, "viewer": viewer_id})
        return await cur.fetchone()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- sharing ---------------------------------------------------------------------------------


async def permission_on(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str
) -> Permission | None:
    """What `viewer_id` may do with the workflow; None when they may not see it at all."""
    query = sql.SQL("SELECT {} FROM {} WHERE w.id = %(id)s AND {}").format(
        _PERMISSION, _VISIBLE, _ACCESSIBLE
    )
    cur = await conn.execute(query, {"id": workflow_id, "viewer": viewer_id})
    row = await cur.fetchone()
    return Permission(row[0]) if row else None


async def list_shares(
    conn: AsyncConnection[Any], workflow_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """A workflow's shares, oldest first (ids are time-ordered), `limit` per page."""
    params: dict[str, Any] = {"id": workflow_id, "limit": limit + 1, "after": ""}
    if cursor is not None:
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, workflow_id, user_id, permission::text AS permission, shared_by, "
            "created_at, updated_at FROM workflow_share "
            "WHERE workflow_id = %(id)s AND id > %(after)s ORDER BY id LIMIT %(limit)s",
            params,
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})
