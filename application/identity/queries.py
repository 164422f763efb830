"""Identity queries: read the projected identity tables (never the event store)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from application.pagination import Page, decode_cursor, page_of

USER_COLUMNS = (
    "id, name, email, email_verified, image, role::text AS role, status::text AS status, "
    "is_active, last_login_at, two_factor_enabled, workflows_created, workflows_executed, "
    "created_at, updated_at"
)


async def get_user(conn: AsyncConnection[Any], user_id: str) -> dict[str, Any] | None:
    return await _one(conn, f'SELECT {USER_COLUMNS} FROM "user" WHERE id = %s', (user_id,))


async def list_users(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    after = decode_cursor(cursor, ("id",))["id"] if cursor else None
    rows = await _all(
        conn,
        f'SELECT {USER_COLUMNS} FROM "user" WHERE (%s::text IS NULL OR id < %s) '
        "ORDER BY id DESC LIMIT %s",
        (after, after, limit + 1),
    )
    return page_of(rows, limit, lambda row: {"id": row["id"]})


SECURITY_EVENT_COLUMNS = (
    "id, event_type, severity, description, host(ip_address) AS ip_address, user_agent, "
    "user_id, resource_type, resource_id, metadata, is_resolved, resolved_at, resolved_by, "
    "resolution_note, created_at"
)


async def list_security_events(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    event_type: str | None = None,
    user_id: str | None = None,
    resolved: bool | None = None,
) -> Page[dict[str, Any]]:
    """Security events, newest first (ids are UUIDv7, so id order is time order)."""
    after = decode_cursor(cursor, ("id",))["id"] if cursor else None
    rows = await _all(
        conn,
        f"SELECT {SECURITY_EVENT_COLUMNS} FROM security_event "
        "WHERE (%(after)s::text IS NULL OR id < %(after)s) "
        "AND (%(type)s::text IS NULL OR event_type = %(type)s) "
        "AND (%(user)s::text IS NULL OR user_id = %(user)s) "
        "AND (%(resolved)s::boolean IS NULL OR is_resolved = %(resolved)s) "
        "ORDER BY id DESC LIMIT %(limit)s",
        {
            "after": after,
            "type": event_type,
            "user": user_id,
            "resolved": resolved,
            "limit": limit + 1,
        },
    )
    return page_of(rows, limit, lambda row: {"id": row["id"]})


async def list_sessions(conn: AsyncConnection[Any], user_id: str) -> list[dict[str, Any]]:
    """The user's sessions that have not ended, newest first."""
    return await _all(
        conn,
        "SELECT id, host(ip_address) AS ip_address, user_agent, expires_at, revoked_at, "
        "last_refreshed_at, created_at FROM session "
        "WHERE user_id = %s AND revoked_at IS NULL AND expires_at > now() ORDER BY id DESC",
        (user_id,),
    )


async def list_api_keys(conn: AsyncConnection[Any], user_id: str) -> list[dict[str, Any]]:
    return await _all(
        conn,
        "SELECT id, name, prefix, scopes, allowed_ips, expires_at, last_used_at, is_active, "
        "created_at FROM api_key WHERE user_id = %s ORDER BY id DESC",
        (user_id,),
    )


async def list_outbox(conn: AsyncConnection[Any], *, limit: int) -> list[dict[str, Any]]:
    return await _all(
        conn,
        "SELECT id, user_id, to_address, subject, body, purpose, created_at, sent_at, attempts, "
        "last_error, next_attempt_at, failed_at FROM mail_outbox "
        "ORDER BY created_at DESC, id DESC LIMIT %s",
        (limit,),
    )


async def _one(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...]
) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def _all(
    conn: AsyncConnection[Any], query: str, params: tuple[Any, ...] | dict[str, Any]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
