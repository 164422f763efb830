"""Retention: prune read-model rows past the spec's ages, archive old audit rows, refresh the
daily statistics.

The spec's numbers: successful runs 90 days and failed ones 180 days (by end time; timed-out and
cancelled runs count as failed here, or they would stay forever), execution log lines 30 days,
execution metrics 6 months, system logs 90 days, audit_log moves to audit_log_archive after 2
years, credential usage 1 year, node usage statistics 1 year, health checks 30 days and
notifications 90 days. A rule whose table does not exist (yet) is skipped and says so. Runs go
with their node states, log lines and metrics (foreign keys with ON DELETE CASCADE), notifications
with their deliveries (deleted by the same statement: system_notification is a projection,
rebuilt under them, so no foreign key ties them).

Only read tables and payloads are pruned, never events: the event store keeps every fact forever,
so the history of a pruned run is still in `/audit` and the workflows' counters stay exact. A run
that goes releases its references to the payload store (application/payloads.py), and the
`payload` rule then deletes the payloads no run references any more; so a run's payloads go
at its own age, never while it is unfinished (its row is not pruned), and its events then read
them as pruned markers. A rebuild of a
projector replays those events and would bring pruned rows back; so each rule records the cutoff it
applied (`retention_cutoff`), and `prune_rebuilt` deletes the same rows from the rebuilt tables
before they are swapped in or compared (projections/rebuild.py). One run at a time: a second one
finds the advisory lock taken and raises `RetentionBusy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors, sql

from application.ids import new_id
from application.system_log import SystemLog

BATCH_SIZE = 5000
LOCK = "a2n.retention"

EXECUTION_PARTS = (
    ("execution_node_state", "execution_id"),
    ("execution_log", "execution_id"),
    ("execution_metrics", "execution_id"),
)


@dataclass(frozen=True)
class Rule:
    """Rows of `table` whose `column` is older than `keep` (a PostgreSQL interval), and that
    match `condition`, are deleted (or moved to `archive_to`)."""

    name: str
    table: str
    column: str
    keep: str
    about: str
    condition: str = "true"
    archive_to: str | None = None
    parts: tuple[tuple[str, str], ...] = ()
    """(table, column) of rows that belong to a pruned row (by its id) and go with it."""
    deletes_parts: bool = False
    """The parts are deleted with each batch (no foreign key cascades to them)."""
    releases_payloads: bool = False
    """A pruned row is a run: its payload references (`payload_ref`) go with it."""
    skip_locked: bool = False
    """Leave rows another transaction holds (a payload a run is referencing right now)."""


RULES: tuple[Rule, ...] = (
    Rule(
        "execution.success",
        "execution",
        "end_time",
        "90 days",
        "successful runs",
        "status = 'SUCCESS'",
        parts=EXECUTION_PARTS,
        releases_payloads=True,
    ),
    Rule(
        "execution.failed",
        "execution",
        "end_time",
        "180 days",
        "failed, timed-out and cancelled runs",
        "status IN ('FAILED', 'TIMEOUT', 'CANCELLED')",
        parts=EXECUTION_PARTS,
        releases_payloads=True,
    ),
    Rule(
        "payload",
        "payload",
        "created_at",
        "0 seconds",
        "payloads no retained run references (the runs above released them)",
        "NOT EXISTS (SELECT 1 FROM payload_ref r WHERE r.hash = payload.hash)",
        skip_locked=True,
    ),
    Rule("execution_log", "execution_log", "timestamp", "30 days", "execution log lines"),
    Rule("execution_metrics", "execution_metrics", "timestamp", "6 months", "execution metrics"),
    Rule("system_log", "system_log", "timestamp", "90 days", "system log lines"),
    Rule(
        "audit_log",
        "audit_log",
        "timestamp",
        "2 years",
        "audit entries (moved to audit_log_archive)",
        archive_to="audit_log_archive",
    ),
    Rule("credential_usage_log", "credential_usage_log", "used_at", "1 year", "credential uses"),
    Rule("node_usage_stats", "node_usage_stats", "date", "1 year", "node usage statistics"),
    Rule("node_usage_user", "node_usage_user", "date", "1 year", "node users per day"),
    Rule("health_check", "health_check", "created_at", "30 days", "health checks"),
    Rule(
        "system_notification",
        "system_notification",
        "created_at",
        "90 days",
        "notifications (with their deliveries)",
        parts=(("notification_delivery", "notification_id"),),
        deletes_parts=True,
    ),
)


class RetentionBusy(RuntimeError):
    """Another retention run holds the lock."""


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    rows: int = 0
    cutoff: datetime | None = None
    skipped: str | None = None
    """Why the rule did not run (its table or column does not exist)."""


@dataclass
class Report:
    results: list[RuleResult] = field(default_factory=list)
    refreshed: bool = False
    seconds: float = 0.0


Progress = Callable[[Rule, int], None]
"""Called after each full batch (more may follow) with the rows the rule pruned so far."""


def run_retention(
    database_url: str,
    *,
    rules: tuple[Rule, ...] = RULES,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Report:
    """`retain` on a connection of its own (the CLI and tests)."""
    with psycopg.connect(database_url, autocommit=True, application_name="a2n-retention") as conn:
        return retain(conn, rules=rules, batch_size=batch_size, progress=progress)


def retain(
    conn: psycopg.Connection[Any],
    *,
    rules: tuple[Rule, ...] = RULES,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Report:
    """Apply every rule, then refresh daily_execution_stats; one batch per transaction, so
    readers and projectors wait for one batch at most (`conn` must be in autocommit mode)."""
    started = time.monotonic()
    report = Report()
    got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (LOCK,)).fetchone()
    if not got or not got[0]:
        raise RetentionBusy("a retention run is already under way")
    try:
        for rule in rules:
            report.results.append(_apply(conn, rule, batch_size, progress))
        conn.execute("SELECT refresh_daily_stats()")
        report.refreshed = True
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (LOCK,))
    report.seconds = time.monotonic() - started
    return report


def journaled_retain(
    conn: psycopg.Connection[Any],
    journal: SystemLog,
    *,
    rules: tuple[Rule, ...] = RULES,
    user_id: str | None = None,
) -> Report:
    """`retain`, its start, outcome and counts per rule written to system_log on `conn`, all
    under one correlation id of the run."""
    run = new_id()
    journal.record(
        "retention",
        "retention.started",
        "retention run started",
        correlation_id=run,
        user_id=user_id,
        conn=conn,
    )
    try:
        report = retain(conn, rules=rules)
    except RetentionBusy:
        journal.record(
            "retention",
            "retention.busy",
            "another retention run holds the lock",
            level="WARN",
            correlation_id=run,
            user_id=user_id,
            conn=conn,
        )
        raise
    except Exception as exc:
        journal.record(
            "retention",
            "retention.failed",
            "retention run failed",
            level="ERROR",
            metadata={"error": type(exc).__name__},
            correlation_id=run,
            user_id=user_id,
        )
        raise
    pruned = {r.rule.name: r.rows for r in report.results if r.skipped is None}
    journal.record(
        "retention",
        "retention.finished",
        f"retention pruned {sum(pruned.values())} rows in {report.seconds:.1f} s",
        metadata={
            "rows": pruned,
            "ages": {r.rule.name: r.rule.keep for r in report.results},
            "skipped": {r.rule.name: r.skipped for r in report.results if r.skipped},
            "refreshed": report.refreshed,
        },
        correlation_id=run,
        user_id=user_id,
        conn=conn,
    )
    return report


def last_run(conn: psycopg.Connection[Any]) -> datetime | None:
    """When retention last ran (its latest recorded rule), if ever."""
    row = conn.execute("SELECT max(applied_at) FROM retention_cutoff").fetchone()
    return None if row is None else row[0]


def _apply(
    conn: psycopg.Connection[Any], rule: Rule, batch_size: int, progress: Progress | None
) -> RuleResult:
    missing = _missing(conn, rule)
    if missing:
        return RuleResult(rule, skipped=missing)
    row = conn.execute("SELECT now() - %s::interval", (rule.keep,)).fetchone()
    assert row is not None
    cutoff: datetime = row[0]
    statement = _batch_statement(rule)
    total = 0
    while True:
        try:
            with conn.transaction():
                counted = conn.execute(statement, {"cutoff": cutoff, "batch": batch_size})
                done = int(row[0]) if (row := counted.fetchone()) else 0
                total += done
                if done < batch_size:
                    _record(conn, rule, cutoff, total)
                    return RuleResult(rule, total, cutoff)
        except errors.ForeignKeyViolation:
            # A run referenced one of the batch's payloads after the batch chose it: the batch
            # is undone, and the next one no longer finds that payload unreferenced.
            continue
        if progress is not None:
            progress(rule, total)


def _missing(conn: psycopg.Connection[Any], rule: Rule) -> str | None:
    """Why the rule cannot run here, if it cannot."""
    for table in (rule.table, rule.archive_to):
        if table is None:
            continue
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone()
        if not found or not found[0]:
            return f"no table {table}"
    has_column = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND column_name = %s",
        (rule.table, rule.column),
    ).fetchone()
    return None if has_column else f"no column {rule.table}.{rule.column}"


def _doomed(rule: Rule) -> sql.Composed:
    """The condition on rows of the rule's table past the cutoff (`%(cutoff)s`)."""
    return sql.SQL("{} < %(cutoff)s AND ({})").format(
        sql.Identifier(rule.column), sql.SQL(rule.condition)
    )


def _batch_statement(rule: Rule) -> sql.Composed:
    """Delete (or move) one batch of the rule's rows; returns how many."""
    table = sql.Identifier(rule.table)
    delete = sql.SQL(
        "WITH doomed AS (SELECT ctid FROM {table} WHERE {doomed} LIMIT %(batch)s {lock}), "
        "gone AS (DELETE FROM {table} t USING doomed d WHERE t.ctid = d.ctid RETURNING t.*)"
    ).format(
        table=table,
        doomed=_doomed(rule),
        lock=sql.SQL("FOR UPDATE SKIP LOCKED" if rule.skip_locked else ""),
    )
    if rule.releases_payloads:
        delete = sql.SQL(
            "{}, released AS (DELETE FROM payload_ref r USING gone WHERE r.execution_id = gone.id)"
        ).format(delete)
    if rule.deletes_parts:
        for number, (part, column) in enumerate(rule.parts):
            delete = sql.SQL(
                "{}, {name} AS (DELETE FROM {part} p USING gone WHERE p.{column} = gone.id)"
            ).format(
                delete,
                name=sql.Identifier(f"part_{number}"),
                part=sql.Identifier(part),
                column=sql.Identifier(column),
            )
    if rule.archive_to is None:
        return sql.SQL("{} SELECT count(*) FROM gone").format(delete)
    return sql.SQL(
        "{}, moved AS (INSERT INTO {} SELECT gone.* FROM gone ON CONFLICT DO NOTHING) "
        "SELECT count(*) FROM gone"
    ).format(delete, sql.Identifier(rule.archive_to))


def _record(conn: psycopg.Connection[Any], rule: Rule, cutoff: datetime, rows: int) -> None:
    """Remember the cutoff applied (it only moves forward), for rebuilds to apply it again."""
    conn.execute(
        "INSERT INTO retention_cutoff (rule, table_name, cutoff, applied_at, rows_pruned) "
        "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (rule) DO UPDATE SET "
        "table_name = EXCLUDED.table_name, "
        "cutoff = greatest(retention_cutoff.cutoff, EXCLUDED.cutoff), "
        "applied_at = EXCLUDED.applied_at, rows_pruned = EXCLUDED.rows_pruned",
        (rule.name, rule.table, cutoff, rows),
    )


def prune_rebuilt(cur: psycopg.Cursor[Any], tables: Collection[str]) -> None:
    """Delete from freshly rebuilt `tables` (found first on the search path: a rebuild's shadow
    copies) what retention already pruned from the live ones: the rows past each rule's
    recorded cutoff, and the rows that belonged to them. Archived rows are already archived."""
    recorded = dict(cur.execute("SELECT rule, cutoff FROM public.retention_cutoff").fetchall())
    for rule in RULES:
        cutoff = recorded.get(rule.name)
        if cutoff is None or rule.table not in tables:
            continue
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(rule.table), _doomed(rule)),
            {"cutoff": cutoff},
        )
        for part, column in rule.parts:
            if part in tables:
                cur.execute(
                    sql.SQL(
                        "DELETE FROM {part} p WHERE NOT EXISTS "
                        "(SELECT 1 FROM {table} t WHERE t.id = p.{column})"
                    ).format(
                        part=sql.Identifier(part),
                        table=sql.Identifier(rule.table),
                        column=sql.Identifier(column),
                    )
                )
