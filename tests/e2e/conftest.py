"""End-to-end tests start real `a2n` processes, each with its own connection budget.

Under pytest-xdist (`make test`, `--dist loadfile`) each file's tests run on one worker, one
after another, so a file's processes never overlap each other. Files run side by side on the
workers: the largest topology here (serve + project + work, test_live_progress) holds at most 24
connections, so even three at once stay well inside a stock PostgreSQL's 100 beside the workers'
own databases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from application.database import drop_abandoned, scratch_name

BUDGET = 12
"""README, "Connections": the most one `a2n up` holds with its projectors in threads."""
PROCESS_BUDGET = 16
"""README, "Connections": `a2n up` (12) and its `a2n project` child (4), as on two CPUs or more."""


@dataclass
class Limited:
    """A database owned by a login role whose connections PostgreSQL caps."""

    server_url: str
    role: str
    database: str

    @property
    def url(self) -> str:
        params = conninfo_to_dict(self.server_url)
        host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
        return f"postgresql://{self.role}@{host}:{port}/{self.database}"

    def limit(self, connections: int) -> None:
        self.admin(
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                sql.Identifier(self.role), sql.Literal(connections)
            )
        )

    def drop_connections(self) -> int:
        rows = self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (self.role,),
        )
        return len(rows)

    def connections(self, admin: psycopg.Connection[Any]) -> int:
        """The role's connections now, asked on an admin connection of the caller's."""
        query = "SELECT count(*) FROM pg_stat_activity WHERE usename = %s"
        row = admin.execute(query, (self.role,)).fetchone()
        assert row is not None
        return int(row[0])

    def admin(self, statement: Any, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def budget_sweep(postgres_server_url: str) -> None:
    """The roles and databases of `limited` an earlier run on this machine was killed before it
    could drop, dropped once a session."""
    drop_abandoned(postgres_server_url, "budget")


@pytest.fixture
def limited(postgres_server_url: str, budget_sweep: None) -> Iterator[Limited]:
    name = scratch_name("budget")  # a killed run's is dropped by the next (`budget_sweep`)
    found = Limited(postgres_server_url, name, name)
    # CREATEROLE: the migrations grant the role membership of a2n_app (row-level security).
    found.admin(
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CONNECTION LIMIT {}").format(
            sql.Identifier(found.role), sql.Literal(BUDGET)
        )
    )
    found.admin(
        sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(found.database), sql.Identifier(found.role)
        )
    )
    try:
        yield found
    finally:
        found.admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(found.database)
            )
        )
        found.admin(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(found.role)))


class MostConnections:
    """A thread noting the most connections a `Limited` role holds, from `start()` on."""

    def __init__(self, limited: Limited) -> None:
        self.limited = limited
        self.most = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Stop sampling; the most seen."""
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(10)
        return self.most

    def _sample(self) -> None:
        with psycopg.connect(self.limited.server_url, autocommit=True) as conn:
            while not self._stopping.is_set():
                self.most = max(self.most, self.limited.connections(conn))
                time.sleep(0.05)
