"""Reading notifications (under row-level security: a user's own, or all for admins), newest
first (by the time raised: ids derived from dedupe keys do not sort by time), each with its
deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from application.errors import InvalidParameter
from application.pagination import Page, decode_cursor, page_of, plain_text

_SELECT = """
SELECT n.id, n.user_id, n.sender_id, n.kind, n.severity, n.title, n.body, n.resource_type,
       n.resource_id, n.created_at,
       coalesce((SELECT json_agg(json_build_object(
                     'id', d.id, 'channel', d.channel, 'status', d.status,
                     'attempts', d.attempts, 'nextAttemptAt', d.next_attempt_at,
                     'lastAttemptAt', d.last_attempt_at, 'lastError', d.last_error,
                     'sentAt', d.sent_at) ORDER BY d.channel)
                 FROM notification_delivery d WHERE d.notification_id = n.id), '[]')
           AS deliveries
FROM system_notification n
"""


@dataclass(frozen=True)
class NotificationFilter:
    """What to list; None: any."""

    user_id: str | None = None
    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    """A kind (`execution.failed`), or a family ending in a dot (`security.`)."""
    since: datetime | None = None
    until: datetime | None = None


async def list_notifications(
    conn: AsyncConnection[Any], where: NotificationFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    clauses, params = ["true"], dict[str, Any](limit=limit + 1)
    if cursor is not None:
        key = decode_cursor(cursor, ("at", "id"))
        try:
            at = datetime.fromisoformat(key["at"])
        except ValueError:
            raise InvalidParameter("cursor", "is not a cursor this list returned") from None
        clauses.append("(n.created_at, n.id) < (%(at)s, %(after)s)")
        params.update(at=at, after=plain_text("cursor", key["id"]))
    if where.user_id is not None:
        clauses.append("n.user_id = %(user_id)s")
        params["user_id"] = where.user_id
    if where.kind is not None:
        if where.kind.endswith("."):
            clauses.append("starts_with(n.kind, %(kind)s)")
        else:
            clauses.append("n.kind = %(kind)s")
        params["kind"] = where.kind
    if where.since is not None:
        clauses.append("n.created_at >= %(since)s")
        params["since"] = where.since
    if where.until is not None:
        clauses.append("n.created_at < %(until)s")
        params["until"] = where.until
    delivery = []
    if where.status is not None:
        delivery.append("d.status = %(status)s")
        params["status"] = where.status
    if where.channel is not None:
        delivery.append("d.channel = %(channel)s")
        params["channel"] = where.channel
    if delivery:
        clauses.append(
            "EXISTS (SELECT 1 FROM notification_delivery d WHERE d.notification_id = n.id AND "
            + " AND ".join(delivery)
            + ")"
        )
    order = "ORDER BY n.created_at DESC, n.id DESC LIMIT %(limit)s"
    query = f"{_SELECT} WHERE {' AND '.join(clauses)} {order}"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"at": row["created_at"].isoformat(), "id": row["id"]})
