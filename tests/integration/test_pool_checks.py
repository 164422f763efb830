"""The pools' check on borrow (application/connections.py `Checks`): a connection checked within
the last `every` seconds, with nothing from the server waiting on it, is lent without a round
trip; an older one is checked, and a dead one is refused so the pool replaces it at once."""

from __future__ import annotations

import asyncio
import select
from typing import Any

import psycopg
import pytest

from application.connections import Checks


def _last_statement(url: str, conn: psycopg.Connection[Any]) -> str:
    """What the server last ran for `conn`, as another session sees it."""
    with psycopg.connect(url) as observer:
        row = observer.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", (conn.info.backend_pid,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_connection_checked_lately_is_lent_without_a_round_trip(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        lately = Checks(every=3600)
        lately.sync(conn)  # the first borrow is checked
        conn.execute("SELECT 1 AS marker")
        lately.sync(conn)
        assert _last_statement(database_url, conn) == "SELECT 1 AS marker"
        Checks(every=0).sync(conn)  # not checked lately: a round trip
        assert _last_statement(database_url, conn) == ""


def test_a_terminated_backend_is_refused_however_recent_its_last_check(database_url: str) -> None:
    checks = Checks(every=3600)
    with psycopg.connect(database_url, autocommit=True) as conn:
        checks.sync(conn)
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        select.select([conn.fileno()], [], [], 10)  # the server's goodbye arrives
        with pytest.raises(psycopg.OperationalError):
            checks.sync(conn)


def test_the_async_check_refuses_a_dead_connection(database_url: str) -> None:
    async def borrow_dead() -> None:
        checks = Checks(every=0)
        conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await checks.async_(conn)
        await conn.close()
        await checks.async_(conn)

    with pytest.raises(psycopg.OperationalError):
        asyncio.run(borrow_dead())
