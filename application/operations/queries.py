"""Read side of operations: stored runtime settings and system_log lines (admins only; the
caller's connection acts under row-level security)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from application.log_tables import newest_first
from application.pagination import Page


async def stored_settings(conn: AsyncConnection[Any]) -> dict[str, dict[str, Any]]:
    """The app_setting rows by key."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT key, value, updated_by, updated_at, revision FROM app_setting ORDER BY key"
        )
        return {row["key"]: row for row in await cur.fetchall()}


@dataclass(frozen=True)
class SystemLogFilter:
    level: str | None = None
    """The least severe level shown (WARN: WARN, ERROR and FATAL)."""
    service: str | None = None
    component: str | None = None
    event: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_COLUMNS = (
    "id, level::text AS level, service, component, event, message, metadata, correlation_id, "
    'user_id, host, pid, "timestamp"'
)


async def list_system_log(
    conn: AsyncConnection[Any], where: SystemLogFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """system_log lines matching `where`, newest first."""
    conditions = (
        ("level >= %(level)s::log_level", "level", where.level),
        ("service = %(service)s", "service", where.service),
        ("component = %(component)s", "component", where.component),
        ("event = %(event)s", "event", where.event),
        ("correlation_id = %(correlation)s", "correlation", where.correlation_id),
        ('"timestamp" >= %(since)s', "since", where.since),
        ('"timestamp" < %(until)s', "until", where.until),
    )
    return await newest_first(conn, "system_log", _COLUMNS, conditions, limit=limit, cursor=cursor)
