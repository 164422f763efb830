"""The pools' check on borrow (application/connections.py `Checks`): a connection checked within
the last `every` seconds is lent without a round trip; an older one is checked, and a dead one
is refused so the pool replaces it."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from application.connections import Checks


def test_a_recently_checked_connection_is_lent_without_a_round_trip(database_url: str) -> None:
    checks = Checks(every=3600)
    with psycopg.connect(database_url, autocommit=True) as conn:
        checks.sync(conn)
        conn.close()  # dead now, but checked a moment ago: lent as it is
        checks.sync(conn)


def test_a_connection_not_checked_lately_is_checked_and_a_dead_one_refused(
    database_url: str,
) -> None:
    checks = Checks(every=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        checks.sync(conn)
        conn.close()
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
