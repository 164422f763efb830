"""Workflow queries: read the projected `workflow`, `workflow_version`, `workflow_trigger`,
`workflow_share` and `workflow_comment` tables (never the event store).

A caller reads the workflows they own, those shared with them and every PUBLIC one that is not
archived; each row says the caller's `permission` on it (OWNER, the level of their share, else
VIEW for a public one). `GET /workflows` lists only their own and shared ones: public workflows
of others are found through the template gallery (`templates=True`), never mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jsonpatch
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from application.errors import NotFound
from application.pagination import Page, contains_pattern, decode_cursor, decode_numbers, page_of
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
    templates: bool = False
    """True: the template gallery (PUBLIC, non-archived templates of every user) instead of the
    viewer's own and shared workflows; the filters above but category, tag and text are
    ignored."""


# The workflows with the viewer's share of each, if any; _ACCESSIBLE keeps those they may read,
# _OWN_OR_SHARED those GET /workflows lists. The PUBLIC condition matches the RLS policy's
# (migration 0016) and the Workflow aggregate's `is_public`.
_VISIBLE = (
    "workflow w LEFT JOIN workflow_share s ON s.workflow_id = w.id AND s.user_id = %(viewer)s"
)
_OWN_OR_SHARED = "(w.user_id = %(viewer)s OR s.user_id IS NOT NULL)"
_PUBLIC = "(w.visibility = 'PUBLIC' AND w.archived_at IS NULL)"
_ACCESSIBLE = f"({_OWN_OR_SHARED} OR {_PUBLIC})"
_GALLERY = "(w.is_template AND w.visibility = 'PUBLIC' AND w.archived_at IS NULL)"
"""Written as the predicate of idx_workflow_gallery, so the planner matches the index."""
_PERMISSION = sql.SQL(
    "CASE WHEN w.user_id = %(viewer)s THEN 'OWNER' WHEN s.user_id IS NOT NULL "
    "THEN s.permission::text WHEN " + _PUBLIC + " THEN 'VIEW' END AS permission"
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
    query, params = list_query(where, limit=limit, cursor=cursor)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})


def list_query(
    where: WorkflowFilter, *, limit: int, cursor: str | None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The SQL of `list_workflows` and its parameters (apart, so its plan can be examined)."""
    conditions, params = _scope(where)
    params["limit"] = limit + 1
    if cursor is not None:
        conditions.append(sql.SQL("w.id < %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY w.id DESC LIMIT %(limit)s").format(
        _columns(SUMMARY_COLUMNS), sql.SQL(_VISIBLE), sql.SQL(" AND ").join(conditions)
    )
    return query, params


def _scope(where: WorkflowFilter) -> tuple[list[sql.Composable], dict[str, Any]]:
    """The conditions (on `w` of _VISIBLE) and parameters that select the workflows `where`
    describes."""
    params: dict[str, Any] = {"viewer": where.viewer_id}
    conditions: list[sql.Composable] = [sql.SQL(_GALLERY if where.templates else _OWN_OR_SHARED)]
    if where.category is not None:
        conditions.append(sql.SQL("w.category = %(category)s"))
        params["category"] = where.category
    if where.tag is not None:
        conditions.append(sql.SQL("w.tags @> %(tag)s"))
        params["tag"] = Jsonb([where.tag])
    if where.text:
        conditions.append(sql.SQL("(w.name ILIKE %(text)s OR w.description ILIKE %(text)s)"))
        params["text"] = contains_pattern(where.text)
    if where.templates:
        return conditions, params
    if where.shared_with_me is not None:
        conditions.append(
            sql.SQL("w.user_id <> %(viewer)s" if where.shared_with_me else "w.user_id = %(viewer)s")
        )
    if where.is_active is not None:
        conditions.append(sql.SQL("w.is_active = %(active)s"))
        params["active"] = where.is_active
    if where.visibility is not None:
        conditions.append(sql.SQL("w.visibility = %(visibility)s::workflow_visibility"))
        params["visibility"] = where.visibility
    if not where.include_archived:
        conditions.append(sql.SQL("w.archived_at IS NULL"))
    return conditions, params


async def get_workflow(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str
) -> dict[str, Any] | None:
    """The workflow, if `viewer_id` owns it, it is shared with them or it is public."""
    query = sql.SQL("SELECT {} FROM {} WHERE w.id = %(id)s AND {}").format(
        _columns(DETAIL_COLUMNS), sql.SQL(_VISIBLE), sql.SQL(_ACCESSIBLE)
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"id": workflow_id, "viewer": viewer_id})
        return await cur.fetchone()


_FACETS = {
    "category": ("w.category", ""),
    "tag": ("t.tag", " CROSS JOIN LATERAL jsonb_array_elements_text(w.tags) AS t(tag)"),
}


async def list_facets(
    conn: AsyncConnection[Any],
    where: WorkflowFilter,
    facet: Literal["category", "tag"],
    *,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """Each category (or tag) of the workflows `where` selects, with how many workflows carry
    it, in name order (for filter menus), `limit` per page."""
    value, join = _FACETS[facet]
    conditions, params = _scope(where)
    conditions.append(sql.SQL(value + " IS NOT NULL"))
    params["limit"] = limit + 1
    if cursor is not None:
        conditions.append(sql.SQL(value + " > %(after)s"))
        params["after"] = decode_cursor(cursor, ("name",))["name"]
    query = sql.SQL(
        "SELECT " + value + " AS name, count(*) AS count FROM " + _VISIBLE + join + " WHERE {} "
        "GROUP BY 1 ORDER BY 1 LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"name": row["name"]})


TRIGGER_COLUMNS = (
    "id",
    "node_id",
    "node_name",
    "type",
    "config",
    "is_active",
    "workflow_version",
    "webhook_path",
    "webhook_methods",
    "webhook_auth_mode",
    "response_mode",
    "cron",
    "interval_seconds",
    "timezone",
    "misfire",
    "event_workflow_id",
    "event_status",
    "event_name",
    "created_at",
    "updated_at",
)


async def list_triggers(conn: AsyncConnection[Any], workflow_id: str) -> list[dict[str, Any]]:
    """The trigger rows of one workflow, in node id order (a few per workflow: no paging), with
    `scheduled_at`: the next run time of the trigger's armed schedule, if it has one."""
    query = sql.SQL(
        "SELECT {}, s.next_run_at AS scheduled_at FROM workflow_trigger t "
        "LEFT JOIN execution_schedule s ON s.workflow_id = t.workflow_id "
        "AND s.node_id = t.node_id AND s.status = 'ARMED' "
        "WHERE t.workflow_id = %s ORDER BY t.node_id"
    ).format(
        sql.SQL(", ").join(
            sql.SQL("t.{}::text AS {}").format(sql.Identifier(n), sql.Identifier(n))
            if n == "type"
            else sql.SQL("t.{}").format(sql.Identifier(n))
            for n in TRIGGER_COLUMNS
        )
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (workflow_id,))
        return await cur.fetchall()


# -- versions ---------------------------------------------------------------------------------

VERSION_SUMMARY_COLUMNS = (
    "id",
    "workflow_id",
    "version",
    "change_log",
    "is_published",
    "published_at",
    "created_at",
    "user_id",
)
# The viewer may read the workflow (every level may read its versions).
_VISIBLE_WORKFLOW = f"EXISTS (SELECT 1 FROM {_VISIBLE} WHERE w.id = %(workflow)s AND {_ACCESSIBLE})"


async def list_versions(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """A workflow's versions, newest first, without their definitions (they can be large)."""
    params: dict[str, Any] = {"workflow": workflow_id, "viewer": viewer_id, "limit": limit + 1}
    after = sql.SQL("")
    if cursor is not None:
        after = sql.SQL("AND version < %(after)s")
        params["after"] = decode_numbers(cursor, ("version",))[0]
    await _require_workflow(conn, params)
    query = sql.SQL(
        "SELECT {} FROM workflow_version WHERE workflow_id = %(workflow)s {} "
        "ORDER BY version DESC LIMIT %(limit)s"
    ).format(sql.SQL(", ").join(map(sql.Identifier, VERSION_SUMMARY_COLUMNS)), after)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"version": str(row["version"])})


async def get_version(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str, version: int
) -> dict[str, Any]:
    """One version with its definition; NotFound when the workflow or the version is not there."""
    query = sql.SQL(
        "SELECT {}, definition FROM workflow_version "
        "WHERE workflow_id = %(workflow)s AND version = %(version)s AND " + _VISIBLE_WORKFLOW
    ).format(sql.SQL(", ").join(map(sql.Identifier, VERSION_SUMMARY_COLUMNS)))
    params = {"workflow": workflow_id, "viewer": viewer_id, "version": version}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{workflow_id} version {version}")
    return row


async def diff_versions(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str, version: int, against: int
) -> list[dict[str, Any]]:
    """The RFC 6902 JSON Patch that turns version `against`'s definition into `version`'s."""
    source = await get_version(conn, viewer_id, workflow_id, against)
    target = await get_version(conn, viewer_id, workflow_id, version)
    patch: list[dict[str, Any]] = jsonpatch.make_patch(
        source["definition"], target["definition"]
    ).patch
    return patch


async def _require_workflow(conn: AsyncConnection[Any], params: dict[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT " + _VISIBLE_WORKFLOW, params)
        found = await cur.fetchone()
    if not found or not found[0]:
        raise NotFound(params["workflow"])


# -- sharing ---------------------------------------------------------------------------------


async def permission_on(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str, *, public: bool = True
) -> Permission | None:
    """What `viewer_id` may do with the workflow; None when they may not see it at all
    (`public=False`: PUBLIC visibility grants nothing, only ownership and shares count)."""
    query = sql.SQL("SELECT {} FROM {} WHERE w.id = %(id)s AND {}").format(
        _PERMISSION, sql.SQL(_VISIBLE), sql.SQL(_ACCESSIBLE if public else _OWN_OR_SHARED)
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


# -- comments --------------------------------------------------------------------------------

COMMENT_COLUMNS = (
    "id",
    "workflow_id",
    "user_id",
    "node_id",
    "parent_id",
    "content",
    "is_resolved",
    "resolved_at",
    "resolved_by",
    "is_deleted",
    "deleted_at",
    "edited_at",
    "created_at",
    "updated_at",
    "revision",
)


async def list_comments(
    conn: AsyncConnection[Any],
    workflow_id: str,
    *,
    node_id: str | None,
    resolved: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """A workflow's comments, oldest first (ids are time-ordered), `limit` per page; a reply
    matches `resolved` by its thread's state."""
    conditions = [sql.SQL("workflow_id = %(workflow)s")]
    params: dict[str, Any] = {"workflow": workflow_id, "limit": limit + 1}
    if node_id is not None:
        conditions.append(sql.SQL("node_id = %(node)s"))
        params["node"] = node_id
    if resolved is not None:
        conditions.append(sql.SQL("is_resolved = %(resolved)s"))
        params["resolved"] = resolved
    if cursor is not None:
        conditions.append(sql.SQL("id > %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL("SELECT {} FROM workflow_comment WHERE {} ORDER BY id LIMIT %(limit)s").format(
        sql.SQL(", ").join(map(sql.Identifier, COMMENT_COLUMNS)), sql.SQL(" AND ").join(conditions)
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})
