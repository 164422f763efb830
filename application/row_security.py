"""Read-model queries run under PostgreSQL row-level security, as the caller.

The pools connect as the role that owns the tables (projectors must write every row, and owners
bypass RLS). A query transaction therefore switches to `a2n_app` and names its user first; the
policies of migrations/0006_row_level_security.sql then filter every read model, so a query that
forgets its WHERE clause still cannot see another user's rows. The settings are transaction-local
(`set_config(..., true)`), so they leave with the transaction and never leak into the next use of
a pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection, Connection, sql
from psycopg_pool import AsyncConnectionPool

APP_ROLE = "a2n_app"

_ACT_AS = (
    "SELECT set_config('role', %s, true), set_config('app.current_user_id', %s, true), "
    "set_config('app.current_user_role', %s, true)"
)


async def act_as(conn: AsyncConnection[Any], user_id: str, role: str) -> None:
    """Make the rest of the current transaction read as `user_id` with admin rights `role`
    (USER, ADMIN or OWNER) under row-level security."""
    await conn.execute(_ACT_AS, (APP_ROLE, user_id, role))


def act_as_blocking(conn: Connection[Any], user_id: str, role: str) -> None:
    """`act_as` for a synchronous connection (use cases running in worker threads)."""
    conn.execute(_ACT_AS, (APP_ROLE, user_id, role))


@asynccontextmanager
async def reading_as(
    pool: AsyncConnectionPool, user_id: str, role: str
) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection in a read transaction acting as `user_id` (see `act_as`)."""
    async with pool.connection() as conn, conn.transaction():
        await act_as(conn, user_id, role)
        yield conn


ANALYST_ROLE = "a2n_analyst"


def ensure_roles(conn: Connection[Any]) -> None:
    """Create the cluster-wide roles the read models grant to (migration 0006 does the same the
    first time), and make the connecting role a member of `a2n_app`: a restore into another
    cluster needs them before the dump's GRANTs can be replayed."""
    for role in (APP_ROLE, ANALYST_ROLE):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (APP_ROLE,)).fetchone()
    if not member or not member[0]:
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(APP_ROLE)))
