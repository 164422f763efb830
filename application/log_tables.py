"""Newest-first pages of a log table (`audit_log`, `system_log`): rows with a `"timestamp"` and
an `id`, filtered by equality and time conditions, paged by a cursor on (timestamp, id)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from application.errors import InvalidParameter
from application.pagination import Page, decode_cursor, page_of

Condition = tuple[str, str, Any]
"""(SQL condition naming `%(name)s`, name, value): applied when the value is not None."""


async def newest_first(
    conn: AsyncConnection[Any],
    table: str,
    columns: str,
    conditions: Iterable[Condition],
    *,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """One page of `table`'s rows (as `columns`) that meet every condition, newest first."""
    where = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit + 1}
    for condition, name, value in conditions:
        if value is not None:
            where.append(sql.SQL(condition))
            params[name] = value
    if cursor is not None:
        key = decode_cursor(cursor, ("at", "id"))
        try:
            params["at"] = datetime.fromisoformat(key["at"])
        except ValueError:
            raise InvalidParameter("cursor", "is not a cursor this list returned") from None
        params["id"] = key["id"]
        where.append(sql.SQL('("timestamp", id) < (%(at)s, %(id)s)'))
    query = sql.SQL(
        'SELECT {} FROM {} WHERE {} ORDER BY "timestamp" DESC, id DESC LIMIT %(limit)s'
    ).format(sql.SQL(columns), sql.Identifier(table), sql.SQL(" AND ").join(where))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"at": row["timestamp"].isoformat(), "id": row["id"]})
