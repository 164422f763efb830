"""Reading health_check: the latest result of each check, and the history page by page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from application.pagination import Page, decode_cursor, page_of

COLUMNS = (
    "h.id, h.service_name, h.check_type, h.status::text AS status, h.response_time, h.message, "
    "h.details, h.created_at, h.next_check_at"
)
"""The columns answered, of health_check as `h`."""


@dataclass(frozen=True)
class CheckFilter:
    service: str | None = None
    check_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_MATCHES = (
    "(%(service)s::text IS NULL OR h.service_name = %(service)s) "
    "AND (%(type)s::text IS NULL OR h.check_type = %(type)s) "
    "AND (%(status)s::text IS NULL OR h.status = %(status)s::health_status) "
    "AND (%(since)s::timestamptz IS NULL OR h.created_at >= %(since)s) "
    "AND (%(until)s::timestamptz IS NULL OR h.created_at < %(until)s)"
)

# A loose index scan over (service_name, next_check_at): each service name once, then its
# newest result, without reading the whole history.
_LATEST = (
    "WITH RECURSIVE names AS ("
    "(SELECT service_name FROM health_check ORDER BY service_name LIMIT 1) "
    "UNION ALL SELECT (SELECT h.service_name FROM health_check h "
    "WHERE h.service_name > n.service_name ORDER BY h.service_name LIMIT 1) "
    "FROM names n WHERE n.service_name IS NOT NULL) "
    f"SELECT {COLUMNS} FROM names n CROSS JOIN LATERAL ("
    "SELECT * FROM health_check l WHERE l.service_name = n.service_name "
    "ORDER BY l.next_check_at DESC, l.id DESC LIMIT 1) h "
    f"WHERE {_MATCHES} ORDER BY h.service_name"
)


def _params(where: CheckFilter) -> dict[str, Any]:
    return {
        "service": where.service,
        "type": where.check_type,
        "status": where.status,
        "since": where.since,
        "until": where.until,
    }


async def latest_checks(conn: AsyncConnection[Any], where: CheckFilter) -> list[dict[str, Any]]:
    """The newest result of every check that `where` selects, by service name."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LATEST, _params(where))
        return await cur.fetchall()


async def check_history(
    conn: AsyncConnection[Any], where: CheckFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """The results `where` selects, newest first (ids are time-ordered), `limit` per page."""
    after = decode_cursor(cursor, ("id",))["id"] if cursor else None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM health_check h WHERE {_MATCHES} "
            "AND (%(after)s::text IS NULL OR h.id < %(after)s) ORDER BY h.id DESC LIMIT %(limit)s",
            {**_params(where), "after": after, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})
