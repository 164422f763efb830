"""Migrations on a real database: recorded, reversible, and refusing edited history."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from application.migrations import MigrationError, Migrator, load_migrations


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_up_applies_everything_once_and_records_it(empty_database_url: str) -> None:
    migrator = Migrator(empty_database_url)
    assert {s.state for s in migrator.status()} == {"pending"}
    applied = migrator.up()
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert migrator.up() == []
    assert {"workflow", "workflow_version", "audit_log", "projection_tracking"} <= tables(
        empty_database_url
    )
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT version, name, checksum, applied_at, applied_by, execution_time_ms "
            "FROM schema_migration ORDER BY version"
        ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in load_migrations()
    ]
    assert all(r[3] is not None and "@" in r[4] and r[5] >= 0 for r in rows)


SCHEMA_OBJECTS = (
    "SELECT 'column', table_name || '.' || column_name || ' ' || data_type "
    "FROM information_schema.columns WHERE table_schema = 'public' "
    "UNION ALL SELECT 'rls', relname FROM pg_class WHERE relrowsecurity "
    "AND relnamespace = 'public'::regnamespace "
    "UNION ALL SELECT 'policy', polname || ' on ' || polrelid::regclass::text FROM pg_policy "
    "UNION ALL SELECT 'function', p.oid::regprocedure::text FROM pg_proc p "
    "WHERE p.pronamespace = 'public'::regnamespace "
    "UNION ALL SELECT 'index', indexname FROM pg_indexes WHERE schemaname = 'public' "
    "UNION ALL SELECT 'grant', grantee || ' ' || privilege_type || ' ' || table_name "
    "FROM information_schema.role_table_grants WHERE table_schema = 'public' "
    "AND grantee LIKE 'a2n%%' "
    "UNION ALL SELECT 'comment', c.relname || '.' || coalesce(a.attname, '') || ': ' || "
    "coalesce(col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class'), '') "
    "FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
    "AND NOT a.attisdropped WHERE c.relnamespace = 'public'::regnamespace "
    "AND c.relkind IN ('r', 'p', 'v', 'm')"
)


def schema(url: str) -> set[tuple[str, str]]:
    """What migrations create, beyond the table names: columns, RLS, policies, grants..."""
    with psycopg.connect(url) as conn:
        return set(conn.execute(SCHEMA_OBJECTS).fetchall())  # type: ignore[arg-type]


def test_down_reverts_the_latest_and_up_restores_it(empty_database_url: str) -> None:
    Migrator(empty_database_url, load_migrations()[:-1]).up()
    before = schema(empty_database_url)
    migrator = Migrator(empty_database_url)
    migrator.up()
    after = schema(empty_database_url)
    assert after != before, "the latest migration changes nothing this test can see"
    latest = load_migrations()[-1]
    reverted = migrator.down(steps=1)
    assert [m.version for m in reverted] == [latest.version]
    assert [s.state for s in migrator.status()][-1] == "pending"
    assert schema(empty_database_url) == before
    migrator.up()
    assert schema(empty_database_url) == after


def test_every_migration_reverts_cleanly(empty_database_url: str) -> None:
    migrator = Migrator(empty_database_url)
    migrator.up()
    migrator.down(steps=len(load_migrations()))
    assert tables(empty_database_url) == {"schema_migration"}
    with psycopg.connect(empty_database_url) as conn:
        types = conn.execute(
            "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'"
        ).fetchall()
    assert types == []


def test_an_edited_applied_migration_stops_the_runner(empty_database_url: str) -> None:
    Migrator(empty_database_url).up()
    edited = [replace(m, checksum="0" * 64) if m.version == 2 else m for m in load_migrations()]
    migrator = Migrator(empty_database_url, edited)
    assert [s.state for s in migrator.status()][1] == "changed"
    with pytest.raises(MigrationError, match=r"0002_workflows\.sql was changed after"):
        migrator.up()
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrator.down()


def test_a_deleted_applied_migration_is_reported(empty_database_url: str) -> None:
    Migrator(empty_database_url).up()
    migrator = Migrator(empty_database_url, load_migrations()[:-1])
    assert migrator.status()[-1].state == "missing"
    with pytest.raises(MigrationError, match="was applied but the file is gone"):
        migrator.up()
