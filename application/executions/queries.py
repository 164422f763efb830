"""Execution queries: read the projected `execution`, `execution_node_state`, `execution_log`,
`execution_metrics`, `execution_schedule` tables, `daily_execution_stats` and the workflows' run
counters (never the event store).

A caller sees the runs they started and every run of the workflows they own or that are shared
with them (any level), as the row-level security policies of migration 0017 say; each query says
so too, so that a mistake in one of the two layers does not show anyone else's runs. A run is not
visible merely because its workflow is PUBLIC: its data belongs to whoever ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from application.errors import InvalidParameter, NotFound
from application.pagination import Page, decode_cursor, decode_numbers, page_of
from application.workflows.queries import permission_on
from domain.executions.logs import LogLevel

SUMMARY_COLUMNS = (
    "id",
    "workflow_id",
    "workflow_version",
    "user_id",
    "status",
    "mode",
    "trigger_id",
    "priority",
    "parent_execution_id",
    "retry_of",
    "retry_count",
    "max_retries",
    "error_message",
    "worker_id",
    "start_time",
    "end_time",
    "duration",
    "created_at",
    "updated_at",
    "revision",
)
DETAIL_COLUMNS = (
    *SUMMARY_COLUMNS,
    "trigger_data",
    "input_data",
    "output_data",
    "error_details",
    "context_data",
    "metadata",
)
NODE_COLUMNS = (
    "id",
    "execution_id",
    "node_id",
    "node_name",
    "node_type",
    "sequence",
    "status",
    "start_time",
    "end_time",
    "duration",
    "input_count",
    "output_data",
    "error_message",
    "error_details",
    "attempt",
    "retry_count",
    "skip_reason",
    "created_at",
    "updated_at",
)
LOG_COLUMNS = (
    "id",
    "execution_id",
    "node_id",
    "level",
    "message",
    "details",
    "timestamp",
    "event_version",
    "seq",
)
METRIC_COLUMNS = (
    "id",
    "execution_id",
    "node_id",
    "metric_name",
    "metric_value",
    "unit",
    "tags",
    "timestamp",
    "event_version",
    "seq",
)
DAILY_COLUMNS = (
    "execution_date",
    "total_executions",
    "successful_executions",
    "failed_executions",
    "avg_duration",
    "unique_users",
    "unique_workflows",
)
_ENUMS = frozenset({"status", "level"})

_VISIBLE = (
    "(e.user_id = %(viewer)s "
    "OR e.workflow_id IN (SELECT w.id FROM workflow w WHERE w.user_id = %(viewer)s) "
    "OR e.workflow_id IN (SELECT s.workflow_id FROM workflow_share s "
    "WHERE s.user_id = %(viewer)s))"
)
"""The runs `viewer` may see (of execution `e`): the query's twin of execution_visibility."""


def _select(names: tuple[str, ...], table: str = "") -> sql.Composable:
    """The columns (of `table`, if given), enums as text."""
    qualified = [sql.Identifier(table, n) if table else sql.Identifier(n) for n in names]
    return sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(column, sql.Identifier(name)) if name in _ENUMS else column
        for name, column in zip(names, qualified, strict=True)
    )


@dataclass(frozen=True)
class ExecutionFilter:
    """GET /executions filters; None means 'any'."""

    viewer_id: str
    workflow_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    """Queued at or after."""
    until: datetime | None = None
    """Queued before."""


async def list_executions(
    conn: AsyncConnection[Any], where: ExecutionFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The runs `where` selects, newest first (ids are time-ordered), `limit` per page."""
    return await _page_by_id(
        conn,
        "execution e",
        _select(SUMMARY_COLUMNS, "e"),
        [
            (_VISIBLE, "viewer", where.viewer_id),
            ("e.workflow_id = %(workflow)s", "workflow", where.workflow_id),
            ("e.status = %(status)s::execution_status", "status", where.status),
            ("e.created_at >= %(since)s", "since", where.since),
            ("e.created_at < %(until)s", "until", where.until),
        ],
        "e.id",
        newest_first=True,
        limit=limit,
        cursor=cursor,
    )


async def _page_by_id(
    conn: AsyncConnection[Any],
    table: str,
    columns: sql.Composable,
    filters: list[tuple[str, str, Any]],
    id_column: str,
    *,
    newest_first: bool,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """A page of rows of `table` ordered by their id, that match every filter (condition,
    parameter name, value) whose value is not None."""
    conditions = [sql.SQL(condition) for condition, _, value in filters if value is not None]
    params: dict[str, Any] = {name: value for _, name, value in filters if value is not None}
    params["limit"] = limit + 1
    if cursor is not None:
        conditions.append(sql.SQL(f"{id_column} {'<' if newest_first else '>'} %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} {} LIMIT %(limit)s").format(
        columns,
        sql.SQL(table),
        sql.SQL(" AND ").join(conditions),
        sql.SQL(id_column),
        sql.SQL("DESC" if newest_first else "ASC"),
    )
    rows = await _all(conn, query, params)
    return page_of(rows, limit, lambda row: {"id": row["id"]})


async def get_execution(
    conn: AsyncConnection[Any], viewer_id: str, execution_id: str
) -> dict[str, Any] | None:
    """The run with its data, if `viewer_id` may see it."""
    query = sql.SQL("SELECT {} FROM execution e WHERE e.id = %(id)s AND " + _VISIBLE).format(
        _select(DETAIL_COLUMNS, "e")
    )
    found = await _all(conn, query, {"id": execution_id, "viewer": viewer_id})
    return found[0] if found else None


async def list_node_states(
    conn: AsyncConnection[Any], viewer_id: str, execution_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The nodes the run may reach, in definition order."""
    await _require_execution(conn, viewer_id, execution_id)
    after = decode_numbers(cursor, ("sequence",))[0] if cursor else -1
    query = sql.SQL(
        "SELECT {} FROM execution_node_state WHERE execution_id = %s AND sequence > %s "
        "ORDER BY sequence LIMIT %s"
    ).format(_select(NODE_COLUMNS))
    rows = await _all(conn, query, (execution_id, after, limit + 1))
    return page_of(rows, limit, lambda row: {"sequence": str(row["sequence"])})


async def list_logs(
    conn: AsyncConnection[Any],
    viewer_id: str,
    execution_id: str,
    *,
    min_level: LogLevel | None,
    node_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """The run's log lines in the order they were recorded, of `min_level` or worse, of one
    node or all."""
    await _require_execution(conn, viewer_id, execution_id)
    return await _stream_page(
        conn,
        "execution_log",
        LOG_COLUMNS,
        execution_id,
        [
            (sql.SQL("level >= %s::log_level"), None if min_level is None else str(min_level)),
            (sql.SQL("node_id = %s"), node_id),
        ],
        limit=limit,
        cursor=cursor,
    )


async def list_metrics(
    conn: AsyncConnection[Any], viewer_id: str, execution_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The run's measurements in the order they were recorded."""
    await _require_execution(conn, viewer_id, execution_id)
    return await _stream_page(
        conn, "execution_metrics", METRIC_COLUMNS, execution_id, [], limit=limit, cursor=cursor
    )


async def _stream_page(
    conn: AsyncConnection[Any],
    table: str,
    columns: tuple[str, ...],
    execution_id: str,
    filters: list[tuple[sql.Composable, Any]],
    *,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """A page of rows keyed by (event_version, seq) within one run, oldest first; `filters`
    whose value is None are left out."""
    conditions: list[sql.Composable] = [sql.SQL("execution_id = %s")]
    params: list[Any] = [execution_id]
    for condition, value in filters:
        if value is not None:
            conditions.append(condition)
            params.append(value)
    if cursor is not None:
        conditions.append(sql.SQL("(event_version, seq) > (%s, %s)"))
        params.extend(decode_numbers(cursor, ("version", "seq")))
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY event_version, seq LIMIT %s").format(
        _select(columns), sql.Identifier(table), sql.SQL(" AND ").join(conditions)
    )
    rows = await _all(conn, query, [*params, limit + 1])
    return page_of(
        rows, limit, lambda row: {"version": str(row["event_version"]), "seq": str(row["seq"])}
    )


async def list_daily_stats(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """daily_execution_stats, newest day first, as of its last refresh (rows for ADMIN and
    OWNER transactions only: see admin_daily_execution_stats)."""
    after = _date_in_cursor(cursor) if cursor else date.max
    query = sql.SQL(
        "SELECT {} FROM admin_daily_execution_stats WHERE execution_date < %s "
        "ORDER BY execution_date DESC LIMIT %s"
    ).format(_select(DAILY_COLUMNS))
    rows = await _all(conn, query, (after, limit + 1))
    return page_of(rows, limit, lambda row: {"date": row["execution_date"].isoformat()})


async def workflow_stats(
    conn: AsyncConnection[Any], viewer_id: str, workflow_id: str
) -> dict[str, Any]:
    """The run counters of a workflow the viewer may see (any level, or PUBLIC)."""
    if await permission_on(conn, viewer_id, workflow_id) is None:
        raise NotFound(workflow_id)
    found = await _all(
        conn,
        "SELECT id AS workflow_id, execution_count, success_count, failure_count, "
        "last_executed_at, avg_execution_time FROM workflow WHERE id = %s",
        (workflow_id,),
    )
    if not found:
        raise NotFound(workflow_id)
    return found[0]


async def execution_visible(conn: AsyncConnection[Any], viewer_id: str, execution_id: str) -> bool:
    """Whether `viewer_id` may see the run (the rule of every route under /executions/{id})."""
    query = "SELECT 1 FROM execution e WHERE e.id = %(id)s AND " + _VISIBLE
    return bool(await _all(conn, query, {"id": execution_id, "viewer": viewer_id}))


async def _require_execution(conn: AsyncConnection[Any], viewer_id: str, execution_id: str) -> None:
    if not await execution_visible(conn, viewer_id, execution_id):
        raise NotFound(execution_id)


def _date_in_cursor(cursor: str) -> date:
    raw = decode_cursor(cursor, ("date",))["date"]
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter("cursor", "is not a cursor this list returned") from None


async def _all(conn: AsyncConnection[Any], query: Any, params: Any) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


# -- schedules --------------------------------------------------------------------------------

SCHEDULE_COLUMNS = (
    "id",
    "workflow_id",
    "trigger_id",
    "node_id",
    "status",
    "cron",
    "interval_seconds",
    "timezone",
    "misfire",
    "next_run_at",
    "retry_at",
    "last_run_at",
    "last_execution_id",
    "run_count",
    "missed_count",
    "attempts",
    "retries",
    "last_error",
    "disarmed_reason",
    "created_at",
    "updated_at",
    "revision",
)
_SCHEDULE_VISIBLE = (
    "(s.workflow_id IN (SELECT w.id FROM workflow w WHERE w.user_id = %(viewer)s) "
    "OR s.workflow_id IN (SELECT ws.workflow_id FROM workflow_share ws "
    "WHERE ws.user_id = %(viewer)s))"
)
"""Schedules of the workflows `viewer` owns or that are shared with them (at any level)."""


@dataclass(frozen=True)
class ScheduleFilter:
    """GET /schedules filters; None means 'any'."""

    viewer_id: str
    workflow_id: str | None = None
    status: str | None = None


async def list_schedules(
    conn: AsyncConnection[Any], where: ScheduleFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The schedules `where` selects, by id, `limit` per page."""
    return await _page_by_id(
        conn,
        "execution_schedule s",
        _select(SCHEDULE_COLUMNS, "s"),
        [
            (_SCHEDULE_VISIBLE, "viewer", where.viewer_id),
            ("s.workflow_id = %(workflow)s", "workflow", where.workflow_id),
            ("s.status = %(status)s::schedule_status", "status", where.status),
        ],
        "s.id",
        newest_first=False,
        limit=limit,
        cursor=cursor,
    )


async def get_schedule(
    conn: AsyncConnection[Any], viewer_id: str, schedule_id: str
) -> dict[str, Any] | None:
    """One schedule, if `viewer_id` may see it."""
    query = sql.SQL(
        "SELECT {} FROM execution_schedule s WHERE s.id = %(id)s AND " + _SCHEDULE_VISIBLE
    ).format(_select(SCHEDULE_COLUMNS, "s"))
    found = await _all(conn, query, {"id": schedule_id, "viewer": viewer_id})
    return found[0] if found else None
