"""Credential queries: read the projected credential tables (never the event store), under
row-level security as the caller. No query reads `encrypted_data`: the API's database role may
not, and no answer ever carries credential data.

A caller sees the credentials they own and those shared with them; each row says the caller's
`permission` (OWNER, or their share's level) and, for a shared one, the terms of their share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from application.pagination import Page, contains_pattern, decode_cursor, page_of, plain_text

SUMMARY_COLUMNS = (
    "id",
    "name",
    "description",
    "provider",
    "encryption_version",
    "is_active",
    "is_shared",
    "expires_at",
    "last_used_at",
    "usage_count",
    "tags",
    "created_at",
    "updated_at",
    "last_validated_at",
    "validation_status",
    "user_id",
    "data_fields",
    "revision",
)
DETAIL_COLUMNS = (*SUMMARY_COLUMNS, "metadata", "configuration", "validation_rules", "notes")

_VISIBLE = (
    "credential c LEFT JOIN credential_share s ON s.credential_id = c.id AND s.user_id = %(viewer)s"
)
_OWN_OR_SHARED = "(c.user_id = %(viewer)s OR s.user_id IS NOT NULL)"
_VIEWER = (
    "c.type::text AS type, "
    "CASE WHEN c.user_id = %(viewer)s THEN 'OWNER' ELSE s.permission::text END AS permission, "
    "s.id AS share_id, s.permission::text AS share_permission, s.expires_at AS share_expires_at, "
    "s.usage_limit AS share_usage_limit, s.used_count AS share_used_count"
)


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join([*(sql.Identifier("c", n) for n in names), sql.SQL(_VIEWER)])


@dataclass(frozen=True)
class CredentialFilter:
    """GET /credentials filters; None means 'any'."""

    viewer_id: str
    credential_type: str | None = None
    text: str | None = None
    shared_with_me: bool | None = None
    """True: only credentials shared with the viewer; False: only their own; None: both."""


async def list_credentials(
    conn: AsyncConnection[Any], where: CredentialFilter, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Newest first (ids are time-ordered), `limit` per page."""
    conditions = [sql.SQL(_OWN_OR_SHARED)]
    params: dict[str, Any] = {"viewer": where.viewer_id, "limit": limit + 1}
    if where.credential_type is not None:
        conditions.append(sql.SQL("c.type = %(type)s::credential_type"))
        params["type"] = where.credential_type
    text = plain_text("q", where.text)
    if text:
        conditions.append(
            sql.SQL(
                "(c.name ILIKE %(text)s OR c.description ILIKE %(text)s "
                "OR c.provider ILIKE %(text)s)"
            )
        )
        params["text"] = contains_pattern(text)
    if where.shared_with_me is not None:
        conditions.append(
            sql.SQL("c.user_id <> %(viewer)s" if where.shared_with_me else "c.user_id = %(viewer)s")
        )
    if cursor is not None:
        conditions.append(sql.SQL("c.id < %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY c.id DESC LIMIT %(limit)s").format(
        _columns(SUMMARY_COLUMNS), sql.SQL(_VISIBLE), sql.SQL(" AND ").join(conditions)
    )
    return await _page(conn, query, params, limit)


async def get_credential(
    conn: AsyncConnection[Any], viewer_id: str, credential_id: str
) -> dict[str, Any] | None:
    """The credential, if `viewer_id` owns it or it is shared with them."""
    query = sql.SQL("SELECT {} FROM {} WHERE c.id = %(id)s AND {}").format(
        _columns(DETAIL_COLUMNS), sql.SQL(_VISIBLE), sql.SQL(_OWN_OR_SHARED)
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {"id": credential_id, "viewer": viewer_id})
        return await cur.fetchone()


async def owner_of(conn: AsyncConnection[Any], viewer_id: str, credential_id: str) -> str | None:
    """The owner's id, if `viewer_id` may see the credential at all."""
    cur = await conn.execute(
        f"SELECT c.user_id FROM {_VISIBLE} WHERE c.id = %(id)s AND {_OWN_OR_SHARED}",
        {"id": credential_id, "viewer": viewer_id},
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def list_shares(
    conn: AsyncConnection[Any], credential_id: str, *, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """A credential's shares, oldest first (ids are time-ordered)."""
    params: dict[str, Any] = {"id": credential_id, "limit": limit + 1, "after": ""}
    if cursor is not None:
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL(
        "SELECT id, credential_id, user_id, permission::text AS permission, expires_at, "
        "usage_limit, used_count, shared_by, created_at, updated_at FROM credential_share "
        "WHERE credential_id = %(id)s AND id > %(after)s ORDER BY id LIMIT %(limit)s"
    )
    return await _page(conn, query, params, limit)


async def list_usage(
    conn: AsyncConnection[Any],
    credential_id: str,
    *,
    user_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """Uses of a credential, newest first; only `user_id`'s when given."""
    conditions = [sql.SQL("credential_id = %(id)s")]
    params: dict[str, Any] = {"id": credential_id, "limit": limit + 1}
    if user_id is not None:
        conditions.append(sql.SQL("user_id = %(user)s"))
        params["user"] = user_id
    if cursor is not None:
        conditions.append(sql.SQL("id < %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL(
        "SELECT id, credential_id, user_id, share_id, execution_id, node_id, used_at "
        "FROM credential_usage_log WHERE {} ORDER BY id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    return await _page(conn, query, params, limit)


async def list_templates(
    conn: AsyncConnection[Any], *, credential_type: str | None, limit: int, cursor: str | None
) -> Page[dict[str, Any]]:
    """Credential templates in id order, optionally of one type."""
    conditions = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": limit + 1}
    if credential_type is not None:
        conditions.append(sql.SQL("type = %(type)s::credential_type"))
        params["type"] = credential_type
    if cursor is not None:
        conditions.append(sql.SQL("id > %(after)s"))
        params["after"] = decode_cursor(cursor, ("id",))["id"]
    query = sql.SQL(
        "SELECT id, name, description, type::text AS type, provider, data_schema, "
        "configuration_schema, configuration, instructions, documentation_url, icon, "
        "is_built_in FROM credential_template WHERE {} ORDER BY id LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    return await _page(conn, query, params, limit)


async def _page(
    conn: AsyncConnection[Any], query: sql.SQL | sql.Composed, params: dict[str, Any], limit: int
) -> Page[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda row: {"id": row["id"]})
