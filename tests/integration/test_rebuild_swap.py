"""A rebuild puts its replayed tables in place by rename (projections/swap.py): the tables keep
every definition the migrations gave them (indexes, constraints, policies, grants, comments, the
views built on them), readers never see them half filled, row-level security still holds, and
what the swap cannot carry over makes the rebuild copy rows instead."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from application.caller import Caller
from application.executions.app import ExecutionsApp
from application.workflows.commands import WorkflowService
from projections import audit, executions, swap
from projections.rebuild import Rebuilder
from projections.registry import PROJECTORS
from tests.integration.helpers import GRAPH, drain, populate, record_run, rows, table_contents

USER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"


@pytest.fixture
def projected(
    fresh_database_url: str,
    service_for: Callable[[str], WorkflowService],
    executions_for: Callable[[str], ExecutionsApp],
    caller: Caller,
) -> str:
    """A database with workflows and runs of two users, every projector caught up."""
    url = fresh_database_url
    service = service_for(url)
    populate(service, caller, 6)
    workflow = service.create(caller, name="runs", definition=GRAPH).aggregate.id
    store = executions_for(url)
    for outcome in ("SUCCESS", "FAILED", "CANCELLED", "RUNNING"):
        record_run(store, workflow, USER, outcome, retries=1)  # type: ignore[arg-type]
        record_run(store, workflow, caller.user_id, outcome)  # type: ignore[arg-type]
    for projector in PROJECTORS:
        drain(url, projector, batch_size=7)
    return url


def definitions(url: str, tables: tuple[str, ...]) -> dict[str, Any]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        return swap.fingerprints(cur, tables)


def test_every_projector_renames_its_tables_into_place_as_the_migrations_made_them(
    projected: str,
) -> None:
    url = projected
    tables = tuple(t for p in PROJECTORS for t in p.tables)
    contents = {t: table_contents(url, t) for t in tables}
    described = definitions(url, tables)
    assert "daily_execution_stats" in described  # the views on them count too
    assert "admin_daily_execution_stats" in described
    assert len(contents["execution"]) == 8

    for projector in PROJECTORS:
        rebuilder = Rebuilder(url, projector)
        rebuilder.rebuild()
        if projector.shared:  # nodes: node_definition holds the built-in rows too
            assert rebuilder.swapped == "copy"
            assert "shares node_definition" in rebuilder.copied_because
        else:
            assert (rebuilder.swapped, rebuilder.copied_because) == ("rename", ""), projector.name
        assert Rebuilder(url, projector).verify().identical

    assert definitions(url, tables) == described
    assert {t: table_contents(url, t) for t in tables} == contents
    left = "SELECT nspname FROM pg_namespace WHERE nspname ~ '^a2n_(shadow|retired)_'"
    assert rows(url, left) == []


def test_row_level_security_and_the_daily_stats_work_on_rebuilt_tables(
    projected: str, caller: Caller
) -> None:
    url = projected
    for projector in (executions.projector, audit.projector):
        rebuilder = Rebuilder(url, projector)
        rebuilder.rebuild()
        assert rebuilder.swapped == "rename"
    rows(url, "SELECT refresh_daily_stats()")  # REFRESH ... CONCURRENTLY needs its unique index
    with as_app(url, USER) as conn:
        assert seen(conn, "SELECT DISTINCT user_id FROM execution") == [USER]
        assert len(seen(conn, "SELECT id FROM execution")) == 4
        assert len(seen(conn, "SELECT DISTINCT execution_id FROM execution_log")) == 4
        assert seen(conn, "SELECT DISTINCT user_id FROM audit_log") == [USER]
        assert seen(conn, "SELECT total_executions FROM admin_daily_execution_stats") == []
    with as_app(url, "someone-else") as conn:
        assert seen(conn, "SELECT id FROM execution") == []
        assert seen(conn, "SELECT id FROM execution_node_state") == []
    with as_app(url, caller.user_id, "ADMIN") as conn:  # owns the workflow: sees every run
        assert len(seen(conn, "SELECT id FROM execution")) == 8
        assert seen(conn, "SELECT total_executions FROM admin_daily_execution_stats") == [8]


def test_readers_see_every_row_while_tables_are_swapped(projected: str) -> None:
    url = projected
    expected = rows(url, "SELECT count(*) FROM execution_log")[0][0]
    seen_counts: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while not done.is_set():
                    # Prepared (psycopg prepares a statement run this often): the plan must
                    # follow the table's name to the new table, not keep the old one.
                    found = conn.execute(
                        "SELECT count(*) FROM execution_log l JOIN execution e "
                        "ON e.id = l.execution_id",
                        prepare=True,
                    ).fetchone()
                    assert found is not None
                    seen_counts.add(found[0])
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            rebuilder = Rebuilder(url, executions.projector, batch_size=5)
            rebuilder.rebuild()
            assert rebuilder.swapped == "rename"
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen_counts == {expected}


def test_a_trigger_on_a_table_makes_the_rebuild_copy_rows(projected: str) -> None:
    url = projected
    contents = table_contents(url, "audit_log")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION test_nothing() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_nothing BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION test_nothing()"
        )
    described = definitions(url, audit.projector.tables)
    rebuilder = Rebuilder(url, audit.projector)
    rebuilder.rebuild()
    assert rebuilder.swapped == "copy"
    assert rebuilder.copied_because == "NotSwappable: audit_log has triggers"
    assert definitions(url, audit.projector.tables) == described  # the trigger is still there
    assert table_contents(url, "audit_log") == contents


def test_what_depends_on_a_table_unknown_to_the_swap_rolls_it_back_to_a_copy(
    projected: str,
) -> None:
    """A function whose SQL body names the table depends on it: the old table cannot be
    dropped, so the swap is undone and the rows are copied instead."""
    url = projected
    contents = table_contents(url, "execution")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION test_runs() RETURNS bigint LANGUAGE sql "
            "BEGIN ATOMIC SELECT count(*) FROM execution; END"
        )
    rebuilder = Rebuilder(url, executions.projector)
    rebuilder.rebuild()
    assert rebuilder.swapped == "copy"
    assert rebuilder.copied_because.startswith("DependentObjectsStillExist")
    assert rows(url, "SELECT test_runs()") == [(8,)]
    assert table_contents(url, "execution") == contents
    left = "SELECT nspname FROM pg_namespace WHERE nspname ~ '^a2n_(shadow|retired)_'"
    assert rows(url, left) == []


def test_a_rebuild_after_one_that_died_ready_to_swap_starts_over(projected: str) -> None:
    """A rebuild killed after its copies were made ready (the process gone, its schema left
    behind, its last transaction rolled back) changes nothing; the next one drops its schema
    and swaps as usual."""
    url = projected
    contents = table_contents(url, "execution")
    described = definitions(url, executions.projector.tables)
    dead = Rebuilder(url, executions.projector)
    with psycopg.connect(url, autocommit=True) as conn:
        dead._create_shadow(conn)
        dead._replay(conn, dead._heads)
        dead._complete(conn)  # no `finally`: as after kill -9
    assert dead.copied_because == ""
    copy = "SELECT to_regclass('a2n_shadow_executions.daily_execution_stats') IS NOT NULL"
    assert rows(url, copy) == [(True,)]

    rebuilder = Rebuilder(url, executions.projector)
    rebuilder.rebuild()
    assert rebuilder.swapped == "rename"
    assert definitions(url, executions.projector.tables) == described
    assert table_contents(url, "execution") == contents
    left = "SELECT nspname FROM pg_namespace WHERE nspname ~ '^a2n_(shadow|retired)_'"
    assert rows(url, left) == []


@contextmanager
def as_app(url: str, user_id: str, role: str = "USER") -> Iterator[psycopg.Connection[Any]]:
    """A transaction as the API's database role, acting for `user_id`."""
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE a2n_app")
        conn.execute("SELECT set_config('app.current_user_id', %s, true)", (user_id,))
        conn.execute("SELECT set_config('app.current_user_role', %s, true)", (role,))
        yield conn
        conn.rollback()


def seen(conn: psycopg.Connection[Any], query: str) -> list[Any]:
    return sorted(row[0] for row in conn.execute(query).fetchall())  # type: ignore[arg-type]
