"""system_log on real PostgreSQL: what the scheduler election, retention and the migrator write,
each line with the correlation id of its process run (or retention run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from application.executions.scheduler import Leadership
from application.migrations import load_migrations
from application.retention import RULES, journaled_retain
from application.system_log import SystemLog
from tests.integration.helpers import rows, wait_until

LINES = (
    "SELECT event, level::text, service, component, correlation_id, metadata FROM system_log "
    "WHERE correlation_id = %s ORDER BY id"
)


@pytest.fixture
def pool(fresh_database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(fresh_database_url, min_size=1, max_size=2) as opened:
        yield opened


def events(url: str, journal: SystemLog) -> list[tuple[str, str]]:
    return [(line[0], line[1]) for line in rows(url, LINES, (journal.run_id,))]


def test_elections_are_logged_won_lost_and_given_up(
    fresh_database_url: str, pool: ConnectionPool[Any]
) -> None:
    url = fresh_database_url
    one, two = SystemLog(pool, "schedule"), SystemLog(pool, "schedule")
    first, second = Leadership(url, journal=one), Leadership(url, journal=two)
    try:
        assert first.hold()
        assert not second.hold()
        assert events(url, one) == [("scheduler.elected", "INFO")]
        assert events(url, two) == []
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first.backend_pid,))
        wait_until(second.hold, timeout=5)
        assert first.hold() is False
        assert events(url, one) == [("scheduler.elected", "INFO"), ("scheduler.lost", "WARN")]
        second.release()
        assert events(url, two) == [("scheduler.elected", "INFO"), ("scheduler.resigned", "INFO")]
    finally:
        first.release()
        second.release()


def test_a_retention_run_logs_its_start_and_counts_under_one_correlation_id(
    fresh_database_url: str, pool: ConnectionPool[Any]
) -> None:
    url = fresh_database_url
    rows(
        url,
        "INSERT INTO system_log (id, level, service, component, event, message, host, pid, "
        "\"timestamp\") VALUES ('0190b8d0-0000-7000-8000-000000000001', 'INFO', 'test', 'test', "
        "'test.line', 'old', 'here', 1, now() - interval '100 days') RETURNING id",
    )
    journal = SystemLog(pool, "schedule")
    with psycopg.connect(url, autocommit=True) as conn:
        journaled_retain(conn, journal, rules=RULES)
    [run] = rows(url, "SELECT correlation_id FROM system_log WHERE event = 'retention.started'")
    lines = rows(url, LINES, run)
    assert [line[0] for line in lines] == ["retention.started", "retention.finished"]
    finished = lines[1][5]
    assert finished["rows"]["system_log"] == 1
    assert finished["ages"]["system_log"] == "90 days"
    assert finished["refreshed"] is True


def test_the_migrator_logs_each_migration_it_applied(fresh_database_url: str) -> None:
    applied = rows(
        fresh_database_url,
        "SELECT metadata->>'name', service, component FROM system_log "
        "WHERE event = 'migration.applied' ORDER BY (metadata->>'version')::int",
    )
    assert [name for name, _, _ in applied] == [m.name for m in load_migrations()]
    assert {(service, component) for _, service, component in applied} == {
        ("migrate", "migrations")
    }
    # One migrator run: one correlation id.
    runs = "SELECT count(DISTINCT correlation_id) FROM system_log WHERE event = 'migration.applied'"
    assert rows(fresh_database_url, runs) == [(1,)]
