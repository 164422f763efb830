"""Retention on a real database: exactly the rows past their age go (runs with their node
states, log lines and metrics), old audit entries move to the archive, the daily statistics are
refreshed, and a projector rebuild does not bring pruned rows back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from application.caller import Caller
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.operations.app import OperationsApp
from application.operations.commands import SettingsService
from application.operations.live import LiveSettings, effective_retention_rules
from application.retention import RULES, RetentionBusy, Rule, run_retention
from application.settings import Settings
from projections import audit, executions
from projections.rebuild import Rebuilder
from tests.integration.helpers import drain, record_run, rows

WORKFLOW = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f91"
USER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f92"


def db_now(url: str) -> datetime:
    found: datetime = rows(url, "SELECT now()")[0][0]
    return found


def insert_run(
    conn: psycopg.Connection[Any], status: str, end: datetime | None, start: datetime
) -> str:
    """An execution row with one node state, one log line and one metric, all dated `start`."""
    run_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO execution (id, status, start_time, end_time, created_at, updated_at, "
        "workflow_id, workflow_version, user_id, mode, revision) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, 'manual', 3)",
        (run_id, status, start, end, start, end or start, WORKFLOW, USER),
    )
    conn.execute(
        "INSERT INTO execution_node_state (id, execution_id, node_id, node_type, sequence, "
        "status, created_at, updated_at) VALUES (%s, %s, 'n', 'set', 0, 'SUCCESS', %s, %s)",
        (str(uuid.uuid4()), run_id, start, start),
    )
    log_line(conn, run_id, start, version=1)
    metric(conn, run_id, start, version=1)
    return run_id


def log_line(conn: psycopg.Connection[Any], run_id: str, at: datetime, version: int) -> str:
    line_id = str(uuid.uuid4())
    conn.execute(
        'INSERT INTO execution_log (id, execution_id, level, message, "timestamp", '
        "event_version, seq) VALUES (%s, %s, 'INFO', 'line', %s, %s, 0)",
        (line_id, run_id, at, version),
    )
    return line_id


def metric(conn: psycopg.Connection[Any], run_id: str, at: datetime, version: int) -> str:
    metric_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO execution_metrics (id, execution_id, metric_name, metric_value, unit, "
        "\"timestamp\", event_version, seq) VALUES (%s, %s, 'duration_ms', 1, 'ms', %s, %s, 0)",
        (metric_id, run_id, at, version),
    )
    return metric_id


def audit_row(conn: psycopg.Connection[Any], at: datetime, position: int) -> str:
    row_id = f"test:{position}"
    conn.execute(
        "INSERT INTO audit_log (id, application, position, user_id, action, resource, "
        'resource_id, resource_version, new_values, "timestamp") '
        "VALUES (%s, 'test', %s, %s, 'WorkflowCreated', 'workflow', %s, 1, '{}', %s)",
        (row_id, position, USER, WORKFLOW, at),
    )
    return row_id


def credential_use(conn: psycopg.Connection[Any], at: datetime) -> str:
    use_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO credential_usage_log (id, credential_id, owner_id, user_id, used_at) "
        "VALUES (%s, 'cred-1', %s, %s, %s)",
        (use_id, USER, USER, at),
    )
    return use_id


def health_row(conn: psycopg.Connection[Any], at: datetime) -> str:
    row_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO health_check (id, service_name, check_type, status, message, created_at, "
        "next_check_at) VALUES (%s, 'postgres', 'database', 'HEALTHY', 'ok', %s, %s)",
        (row_id, at, at + timedelta(minutes=1)),
    )
    return row_id


def ids(url: str, table: str) -> set[str]:
    return {row[0] for row in rows(url, f"SELECT id FROM {table}")}


OLD_SYSTEM_LINE = "0190b8d0-0000-7000-8000-0000000000a1"
KEPT_SYSTEM_LINE = "0190b8d0-0000-7000-8000-0000000000a2"


def missing_tables(url: str) -> set[str]:
    wanted = {rule.table for rule in RULES}
    present = {
        row[0] for row in rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    return wanted - present


def test_retention_prunes_exactly_the_rows_past_their_age(fresh_database_url: str) -> None:
    url = fresh_database_url
    now = db_now(url)
    day = timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        success_old = insert_run(conn, "SUCCESS", now - 91 * day, now - 91 * day)
        success_new = insert_run(conn, "SUCCESS", now - 89 * day, now - 89 * day)
        failed_old = insert_run(conn, "FAILED", now - 181 * day, now - 181 * day)
        failed_new = insert_run(conn, "FAILED", now - 179 * day, now - 179 * day)
        timeout_old = insert_run(conn, "TIMEOUT", now - 181 * day, now - 181 * day)
        cancelled_old = insert_run(conn, "CANCELLED", now - 181 * day, now - 181 * day)
        running = insert_run(conn, "RUNNING", None, now - 400 * day)
        recent = insert_run(conn, "SUCCESS", now - day, now - day)
        # On a run that stays: a line past 30 days and one within; metrics past and within 6 months.
        old_line = log_line(conn, success_new, now - 31 * day, version=2)
        kept_line = log_line(conn, success_new, now - 29 * day, version=3)
        old_metric = metric(conn, success_new, now - 200 * day, version=2)
        kept_metric = metric(conn, success_new, now - 150 * day, version=3)
        archived = audit_row(conn, now - timedelta(days=2 * 365 + 2), 1)
        kept_audit = audit_row(conn, now - timedelta(days=2 * 365 - 2), 2)
        for age, line_id in ((91, OLD_SYSTEM_LINE), (89, KEPT_SYSTEM_LINE)):
            conn.execute(
                "INSERT INTO system_log (id, level, service, component, event, message, host, "
                "pid, \"timestamp\") VALUES (%s, 'INFO', 'test', 'test', 'test', '', 'h', 1, %s)",
                (line_id, now - age * day),
            )
        old_use = credential_use(conn, now - 367 * day)
        kept_use = credential_use(conn, now - 363 * day)
        health_row(conn, now - 31 * day)
        kept_check = health_row(conn, now - 29 * day)
        for age in (367, 363):  # node usage: a day past a year, and one within
            used_on = (now - age * day).date()
            conn.execute(
                "INSERT INTO node_usage_stats VALUES ('noop', %s, 1, 1, 0, 5, 5, 5, 1, '{}')",
                (used_on,),
            )
            conn.execute("INSERT INTO node_usage_user VALUES ('noop', %s, 'u')", (used_on,))
        for age, notification in ((91, "n-old"), (89, "n-kept")):  # notifications: 90 days
            conn.execute(
                "INSERT INTO system_notification (id, kind, severity, title, body, created_at) "
                "VALUES (%s, 'test', 'info', 't', 'b', %s)",
                (notification, now - age * day),
            )
            conn.execute(
                "INSERT INTO notification_delivery (id, notification_id, channel) "
                "VALUES (%s, %s, 'slack')",
                (f"d-{notification}", notification),
            )
    assert rows(url, "SELECT count(*) FROM daily_execution_stats")[0][0] == 0

    report = run_retention(url, batch_size=2)  # several batches per rule

    pruned = {result.rule.name: result.rows for result in report.results if not result.skipped}
    assert pruned == {
        "execution.success": 1,
        "execution.failed": 3,
        # old_line, and the first lines of success_new (89 days), failed_new and running
        "execution_log": 4,
        # old_metric (200 days) and running's (400 days); failed_new's (179 days) stays
        "execution_metrics": 2,
        "system_log": 1,
        "audit_log": 1,
        "credential_usage_log": 1,
        "node_usage_stats": 1,
        "node_usage_user": 1,
        "health_check": 1,
        "payload": 0,  # these runs' items are small enough to stay inline
        "system_notification": 1,
    }
    skipped = {result.rule.table: result.skipped for result in report.results if result.skipped}
    assert skipped == {table: f"no table {table}" for table in missing_tables(url)}
    assert ids(url, "execution") == {success_new, failed_new, running, recent}
    assert ids(url, "system_notification") == {"n-kept"}
    assert ids(url, "notification_delivery") == {"d-n-kept"}  # deliveries go with theirs
    assert {OLD_SYSTEM_LINE, KEPT_SYSTEM_LINE} & ids(url, "system_log") == {KEPT_SYSTEM_LINE}
    gone = {success_old, failed_old, timeout_old, cancelled_old}
    for table in ("execution_node_state", "execution_log", "execution_metrics"):
        owners = {row[0] for row in rows(url, f"SELECT execution_id FROM {table}")}
        assert not owners & gone, f"{table} rows of pruned runs went with them"
    assert old_line not in ids(url, "execution_log")
    assert kept_line in ids(url, "execution_log")
    assert old_metric not in ids(url, "execution_metrics")
    assert kept_metric in ids(url, "execution_metrics")
    assert ids(url, "audit_log") == {kept_audit}
    assert old_use not in ids(url, "credential_usage_log")
    assert kept_use in ids(url, "credential_usage_log")
    assert ids(url, "health_check") == {kept_check}
    moved = rows(url, "SELECT id, user_id, archived_at FROM audit_log_archive")
    assert [(r[0], r[1]) for r in moved] == [(archived, USER)]
    assert moved[0][2] >= now

    assert report.refreshed
    days = dict(rows(url, "SELECT execution_date, total_executions FROM daily_execution_stats"))
    assert days == {(now - 89 * day).date(): 1, (now - day).date(): 1}

    cutoffs = dict(rows(url, "SELECT rule, cutoff FROM retention_cutoff"))
    assert set(cutoffs) == set(pruned)
    assert abs(cutoffs["execution.success"] - (now - 90 * day)) < timedelta(minutes=1)

    again = run_retention(url)
    assert all(result.rows == 0 for result in again.results)
    later = dict(rows(url, "SELECT rule, cutoff FROM retention_cutoff"))
    assert all(later[rule] >= cutoffs[rule] for rule in cutoffs)


def test_a_table_that_appears_is_pruned_and_one_run_at_a_time(fresh_database_url: str) -> None:
    url = fresh_database_url
    probe = Rule("probe", "retention_probe", "seen_at", "1 year", "probe rows")
    assert run_retention(url, rules=(probe,)).results[0].skipped == "no table retention_probe"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE retention_probe (id int, seen_at timestamptz)")
        conn.execute(
            "INSERT INTO retention_probe VALUES (1, now() - interval '13 months'), "
            "(2, now() - interval '11 months')"
        )
    assert run_retention(url, rules=(probe,)).results[0].rows == 1
    assert rows(url, "SELECT id FROM retention_probe") == [(2,)]
    wrong_column = replace(probe, column="nope")
    assert run_retention(url, rules=(wrong_column,)).results[0].skipped == (
        "no column retention_probe.nope"
    )

    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('a2n.retention'))")
        with pytest.raises(RetentionBusy):
            run_retention(url)


def rule(name: str, **changes: Any) -> Rule:
    return replace(next(r for r in RULES if r.name == name), **changes)


def test_a_rebuild_leaves_out_what_retention_pruned(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    url = fresh_database_url
    app = executions_for(url)
    pruned_run = record_run(app, WORKFLOW, USER, "SUCCESS").id
    drain(url, executions.projector)
    drain(url, audit.projector)
    everything_until_now = (
        rule("execution.success", keep="0 seconds"),
        rule("audit_log", keep="0 seconds"),
    )
    audited = len(ids(url, "audit_log"))
    report = run_retention(url, rules=everything_until_now)
    assert [result.rows for result in report.results] == [1, audited]
    kept_run = record_run(app, WORKFLOW, USER, "SUCCESS").id
    drain(url, executions.projector)
    drain(url, audit.projector)
    assert ids(url, "execution") == {kept_run}
    live_audit = ids(url, "audit_log")
    assert live_audit
    assert {row[0] for row in rows(url, "SELECT resource_id FROM audit_log")} == {kept_run}

    for projector in (executions.projector, audit.projector):
        assert Rebuilder(url, projector).verify().identical, projector.name
        Rebuilder(url, projector).rebuild()
    assert ids(url, "execution") == {kept_run}
    logged = {row[0] for row in rows(url, "SELECT DISTINCT execution_id FROM execution_log")}
    assert logged == {kept_run}, "the pruned run's lines stay out too"
    assert ids(url, "audit_log") == live_audit
    archived = {row[0] for row in rows(url, "SELECT resource_id FROM audit_log_archive")}
    assert archived == {pruned_run}


def test_the_command_line_run_prunes_at_the_stored_retention_age(
    fresh_database_url: str, caller: Caller
) -> None:
    """`a2n retention run` takes its ages as the scheduled job does: a `retention.*` value an
    administrator stored wins over the default (here 2 days over the spec's 30 for
    health_check)."""
    url = fresh_database_url
    now = db_now(url)
    with psycopg.connect(url, autocommit=True) as conn:
        old = health_row(conn, now - timedelta(days=3))
        recent = health_row(conn, now - timedelta(hours=12))
    settings = Settings.from_env()
    assert {r.name: r.keep for r in effective_retention_rules(settings, url)}[
        "health_check"
    ] == "30 days"

    app = OperationsApp(env=event_store_env(url, pool_size=1))
    try:
        SettingsService(app, LiveSettings(settings, app)).change(
            caller, "retention.health_check", "2 days"
        )
    finally:
        app.close()
    rules = effective_retention_rules(settings, url)
    assert {r.name: r.keep for r in rules}["health_check"] == "2 days"
    report = run_retention(url, rules=rules)
    pruned = next(r for r in report.results if r.rule.name == "health_check")
    assert (pruned.rule.keep, pruned.rows) == ("2 days", 1)
    assert ids(url, "health_check") & {old, recent} == {recent}
