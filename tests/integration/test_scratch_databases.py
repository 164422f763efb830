"""Throwaway databases (and login roles) left by killed test and benchmark runs are dropped by
the next run on the same machine; a live run's, one in use, and other kinds stay
(application/database.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from application.database import drop_abandoned, scratch_machine, scratch_name

KIND = "scratchcheck"
"""A kind of its own: the sweep below never touches the databases of this run's tests."""


def existing(server: str) -> set[str]:
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'a2n_%'")
        return {name for (name,) in rows.fetchall()}


def create(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@pytest.fixture
def made(postgres_server_url: str) -> Iterator[list[str]]:
    """The databases a test creates, dropped after it whatever it left."""
    names: list[str] = []
    yield names
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def gone_pid() -> int:
    """The pid of a process that has ended."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(ended.stdout)


def test_a_killed_runs_databases_are_dropped_and_no_others(
    postgres_server_url: str, made: list[str]
) -> None:
    server = postgres_server_url
    machine = scratch_machine()
    dead = gone_pid()
    abandoned = f"a2n_{KIND}_{machine}_{dead}_0123456789"
    template = f"{abandoned}_template"
    in_use = f"a2n_{KIND}_{machine}_{dead}_inuse00000"
    mine = scratch_name(KIND)  # this process is alive
    elsewhere = f"a2n_{KIND}_000000_{dead}_0123456789"  # another machine's
    other_kind = f"a2n_other_{machine}_{dead}_0123456789"
    made.extend([abandoned, template, in_use, mine, elsewhere, other_kind])
    for name in made:
        create(server, name)

    with psycopg.connect(make_conninfo(server, dbname=in_use)):
        dropped = drop_abandoned(server, KIND)

    assert sorted(dropped) == sorted([abandoned, template])
    left = existing(server)
    assert {abandoned, template} & left == set()
    assert {in_use, mine, elsewhere, other_kind} <= left
    # Once nobody uses it, the next run drops it too.
    assert drop_abandoned(server, KIND) == [in_use]


def test_a_killed_runs_login_roles_are_dropped_once_they_own_nothing_in_use(
    postgres_server_url: str,
) -> None:
    server = postgres_server_url
    dead = gone_pid()
    abandoned = f"a2n_{KIND}_{scratch_machine()}_{dead}_0123456789"
    mine = scratch_name(KIND)
    roles = [abandoned, mine]
    with psycopg.connect(server, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(role), sql.Identifier(role)
                )
            )
    try:
        # Its database in use: both stay (the role owns it), and the next sweep drops both.
        with psycopg.connect(make_conninfo(server, dbname=abandoned)):
            assert drop_abandoned(server, KIND) == []
        assert drop_abandoned(server, KIND) == [abandoned, abandoned]
        assert role_names(server) & set(roles) == {mine}
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for role in roles:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(role))
                )
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def role_names(server: str) -> set[str]:
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'a2n_%'")
        return {name for (name,) in rows.fetchall()}


def test_a_kind_is_a_plain_word() -> None:
    with pytest.raises(ValueError, match="plain word"):
        scratch_name("test_x")
