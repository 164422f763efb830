"""workflow, workflow_version, workflow_trigger and workflow_share tables, from the Workflows
context's events; the workflows' execution counters from Executions events.

The counters are kept in workflow_execution_stats as well as on the workflow row, so that runs
read before their workflow's row exists (the two logs are read independently) are not lost: the
row takes them when it is inserted. Events after Execution.Queued do not name the workflow, so
workflow_execution_run remembers it for each run until the run ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import Cursor, sql

from domain.executions.durations import bucket_of
from domain.executions.execution import Execution
from domain.workflows.triggers import trigger_id, trigger_specs
from domain.workflows.workflow import Workflow
from projections.projector import (
    Columns,
    EventContext,
    PageCursor,
    Projector,
    expect_one,
    expect_rows,
    held,
    insert_rows,
    jsonb,
)

projector = Projector(
    "workflows",
    applications=("workflows", "executions"),
    background=("executions",),  # run statistics
    tables=(
        "workflow",
        "workflow_version",
        "workflow_trigger",
        "workflow_share",
        "workflow_execution_stats",
        "workflow_execution_run",
        "execution_duration_bucket",
    ),
    about="workflow, workflow_version, workflow_trigger and workflow_share tables "
    "(with workflows' execution counters and the run duration histogram)",
)

_JSON_DETAILS = frozenset({"tags"})

_COUNTERS = "execution_count, success_count, failure_count, last_executed_at, avg_execution_time"
_COUNTER_VALUES = (
    "coalesce(s.execution_count, 0), coalesce(s.success_count, 0), "
    "coalesce(s.failure_count, 0), s.last_executed_at, "
    "CASE WHEN s.timed_count > 0 THEN round(s.total_duration_ms::numeric / s.timed_count) END"
)
"""The workflow's counter columns, and their values from workflow_execution_stats `s`."""


@projector.on(Workflow.Created)
def workflow_created(cur: Cursor[Any], event: Workflow.Created, ctx: EventContext) -> None:
    definition = event.definition
    # Runs counted before this row was (the Executions log read first) are taken over here.
    cur.execute(
        "INSERT INTO workflow (id, name, description, definition, is_template, visibility, "
        "version, tags, category, variables, settings, created_at, updated_at, user_id, "
        "revision, duplicated_from, " + _COUNTERS + ") "
        "SELECT %(id)s, %(name)s, %(description)s, %(definition)s, %(is_template)s, "
        "%(visibility)s, 1, %(tags)s, %(category)s, %(variables)s, %(settings)s, %(at)s, %(at)s, "
        "%(owner)s, %(revision)s, %(duplicated_from)s, " + _COUNTER_VALUES + " "
        "FROM (SELECT 1) one LEFT JOIN workflow_execution_stats s ON s.workflow_id = %(id)s",
        {
            "id": event.originator_id,
            "name": event.name,
            "description": event.description,
            "definition": jsonb(definition),
            "is_template": event.is_template,
            "visibility": event.visibility,
            "tags": jsonb(event.tags),
            "category": event.category,
            "variables": jsonb(definition.get("variables", {})),
            "settings": jsonb(definition.get("settings", {})),
            "at": event.timestamp,
            "owner": event.owner_id,
            "revision": event.originator_version,
            "duplicated_from": event.duplicated_from,
        },
    )
    _insert_version(cur, event.originator_id, event.version_id, 1, definition, None, event, ctx)
    # A new workflow is inactive and runs version 1: no need to wait for the rows just written.
    _refresh_triggers(cur, event, (False, event.owner_id, 1, definition))


@projector.on(Workflow.DetailsChanged)
def details_changed(cur: Cursor[Any], event: Workflow.DetailsChanged, ctx: EventContext) -> None:
    assignments = [
        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in sorted(event.changes)
    ]
    values = [
        jsonb(event.changes[c]) if c in _JSON_DETAILS else event.changes[c]
        for c in sorted(event.changes)
    ]
    _update(cur, event, sql.SQL(", ").join(assignments), values)


@projector.on(Workflow.VersionCreated)
def version_created(cur: Cursor[Any], event: Workflow.VersionCreated, ctx: EventContext) -> None:
    definition = event.definition
    _update(
        cur,
        event,
        sql.SQL("definition = %s, version = %s, variables = %s, settings = %s"),
        [
            jsonb(definition),
            event.version,
            jsonb(definition.get("variables", {})),
            jsonb(definition.get("settings", {})),
        ],
    )
    _insert_version(
        cur,
        event.originator_id,
        event.version_id,
        event.version,
        definition,
        event.change_message,
        event,
        ctx,
    )
    _refresh_triggers(cur, event)


@projector.on(Workflow.Activated)
def activated(cur: Cursor[Any], event: Workflow.Activated, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = true"), [])
    _refresh_triggers(cur, event)


@projector.on(Workflow.Deactivated)
def deactivated(cur: Cursor[Any], event: Workflow.Deactivated, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = false"), [])
    _refresh_triggers(cur, event)


@projector.on(Workflow.Archived)
def archived(cur: Cursor[Any], event: Workflow.Archived, ctx: EventContext) -> None:
    _update(cur, event, sql.SQL("is_active = false, archived_at = %s"), [event.timestamp])
    _refresh_triggers(cur, event)


@projector.on(Workflow.VersionPublished)
def version_published(
    cur: Cursor[Any], event: Workflow.VersionPublished, ctx: EventContext
) -> None:
    _update(
        cur,
        event,
        sql.SQL("published_version = %s, published_at = %s"),
        [event.version, event.timestamp],
    )
    # Unmark the old row first: a unique index allows one published row per workflow.
    cur.execute(
        "UPDATE workflow_version SET is_published = false, published_at = NULL "
        "WHERE workflow_id = %s AND is_published",
        (event.originator_id,),
    )
    expect_one(
        cur,
        "UPDATE workflow_version SET is_published = true, published_at = %s "
        "WHERE workflow_id = %s AND version = %s",
        (event.timestamp, event.originator_id, event.version),
        f"workflow {event.originator_id} has no version {event.version} row",
    )
    _refresh_triggers(cur, event)


def _update(
    cur: Cursor[Any],
    event: Any,
    assignments: sql.Composable | None = None,
    values: tuple[Any, ...] | list[Any] = (),
) -> None:
    """Apply `assignments` (if any) and stamp the row with the event's time and revision."""
    stamp = sql.SQL("updated_at = %s, revision = %s")
    expect_one(
        cur,
        sql.SQL("UPDATE workflow SET {} WHERE id = %s").format(
            stamp if assignments is None else sql.SQL(", ").join([assignments, stamp])
        ),
        [*values, event.timestamp, event.originator_version, event.originator_id],
        f"workflow {event.originator_id} is not in the workflow table",
    )


def _insert_version(
    cur: Cursor[Any],
    workflow_id: str,
    version_id: str,
    version: int,
    definition: dict[str, Any],
    change_log: str | None,
    event: Any,
    ctx: EventContext,
) -> None:
    cur.execute(
        "INSERT INTO workflow_version "
        "(id, workflow_id, version, definition, change_log, created_at, user_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            version_id,
            workflow_id,
            version,
            jsonb(definition),
            change_log,
            event.timestamp,
            ctx.actor_id,
        ),
    )


def _refresh_triggers(
    cur: Cursor[Any], event: Any, known: tuple[bool, str, int, dict[str, Any]] | None = None
) -> None:
    """Make workflow_trigger hold the trigger nodes of the definition that runs, with the
    workflow's active flag: rows of nodes that left it go, the others are upserted. `known`:
    (is_active, user_id, version, definition) when the event says them, else they are read."""
    workflow_id = event.originator_id
    row = (
        known
        or cur.execute(
            "SELECT w.is_active, w.user_id, v.version, v.definition FROM workflow w "
            "JOIN workflow_version v ON v.workflow_id = w.id "
            "AND v.version = coalesce(w.published_version, w.version) WHERE w.id = %s",
            (workflow_id,),
        ).fetchone()
    )
    if row is None:
        raise LookupError(f"workflow {workflow_id} has no version to take triggers from")
    is_active, user_id, version, definition = row
    specs = trigger_specs(definition)
    cur.execute(
        "DELETE FROM workflow_trigger WHERE workflow_id = %s AND NOT node_id = ANY(%s)",
        (workflow_id, [spec.node_id for spec in specs]),
    )
    for spec in specs:
        cur.execute(
            "INSERT INTO workflow_trigger (id, workflow_id, node_id, node_name, type, config, "
            "is_active, workflow_version, webhook_path, webhook_methods, webhook_auth_mode, "
            "response_mode, cron, interval_seconds, timezone, misfire, event_workflow_id, "
            "event_status, event_name, created_at, updated_at, user_id) "
            "VALUES (%(id)s, %(workflow_id)s, %(node_id)s, %(node_name)s, %(type)s, %(config)s, "
            "%(is_active)s, %(version)s, %(webhook_path)s, %(webhook_methods)s, "
            "%(webhook_auth_mode)s, %(response_mode)s, %(cron)s, %(interval_seconds)s, "
            "%(timezone)s, %(misfire)s, %(event_workflow_id)s, %(event_status)s, %(event_name)s, "
            "%(at)s, %(at)s, %(user_id)s) "
            "ON CONFLICT (workflow_id, node_id) DO UPDATE SET node_name = EXCLUDED.node_name, "
            "type = EXCLUDED.type, config = EXCLUDED.config, is_active = EXCLUDED.is_active, "
            "workflow_version = EXCLUDED.workflow_version, webhook_path = EXCLUDED.webhook_path, "
            "webhook_methods = EXCLUDED.webhook_methods, "
            "webhook_auth_mode = EXCLUDED.webhook_auth_mode, "
            "response_mode = EXCLUDED.response_mode, cron = EXCLUDED.cron, "
            "interval_seconds = EXCLUDED.interval_seconds, timezone = EXCLUDED.timezone, "
            "misfire = EXCLUDED.misfire, event_workflow_id = EXCLUDED.event_workflow_id, "
            "event_status = EXCLUDED.event_status, event_name = EXCLUDED.event_name, "
            "updated_at = EXCLUDED.updated_at, user_id = EXCLUDED.user_id",
            {
                "id": trigger_id(workflow_id, spec.node_id),
                "workflow_id": workflow_id,
                "node_id": spec.node_id,
                "node_name": spec.node_name,
                "type": str(spec.type),
                "config": jsonb(spec.config),
                "is_active": is_active,
                "version": version,
                "webhook_path": spec.webhook_path,
                "webhook_methods": list(spec.webhook_methods) if spec.webhook_methods else None,
                "webhook_auth_mode": spec.webhook_auth_mode,
                "response_mode": spec.response_mode,
                "cron": spec.cron,
                "interval_seconds": spec.interval_seconds,
                "timezone": spec.timezone,
                "misfire": spec.misfire,
                "event_workflow_id": spec.event_workflow_id,
                "event_status": spec.event_status,
                "event_name": spec.event_name,
                "at": event.timestamp,
                "user_id": user_id,
            },
        )


# -- sharing ---------------------------------------------------------------------------------


@projector.on(Workflow.Shared)
def shared(cur: Cursor[Any], event: Workflow.Shared, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO workflow_share "
        "(id, workflow_id, user_id, permission, shared_by, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (workflow_id, user_id) DO UPDATE SET permission = EXCLUDED.permission, "
        "shared_by = EXCLUDED.shared_by, updated_at = EXCLUDED.updated_at",
        (
            event.share_id,
            event.originator_id,
            event.user_id,
            event.permission,
            ctx.actor_id,
            event.timestamp,
            event.timestamp,
        ),
    )
    _update(cur, event)


@projector.on(Workflow.Unshared)
def unshared(cur: Cursor[Any], event: Workflow.Unshared, ctx: EventContext) -> None:
    cur.execute(
        "DELETE FROM workflow_share WHERE workflow_id = %s AND user_id = %s",
        (event.originator_id, event.user_id),
    )
    _update(cur, event)


@projector.on(Workflow.OwnershipTransferred)
def ownership_transferred(
    cur: Cursor[Any], event: Workflow.OwnershipTransferred, ctx: EventContext
) -> None:
    _update(cur, event, sql.SQL("user_id = %s"), [event.owner_id])
    _refresh_triggers(cur, event)


# -- execution counters ----------------------------------------------------------------------


@projector.on(Execution.Queued)
def execution_queued(cur: Cursor[Any], event: Execution.Queued, ctx: EventContext) -> None:
    page = _runs(cur)
    if page is not None:
        page.queued[event.originator_id] = event.workflow_id
        return
    cur.execute(
        "INSERT INTO workflow_execution_run (execution_id, workflow_id) VALUES (%s, %s)",
        (event.originator_id, event.workflow_id),
    )
    cur.execute(
        "INSERT INTO workflow_execution_stats (workflow_id) VALUES (%s) ON CONFLICT DO NOTHING",
        (event.workflow_id,),
    )


@projector.on(Execution.Started)
def execution_started(cur: Cursor[Any], event: Execution.Started, ctx: EventContext) -> None:
    page = _runs(cur)
    if page is not None:
        page.runs.setdefault(event.originator_id, _Run()).started_at = event.timestamp
        return
    row = cur.execute(
        "UPDATE workflow_execution_stats s "
        "SET last_executed_at = greatest(s.last_executed_at, %s) FROM workflow_execution_run r "
        "WHERE r.execution_id = %s AND s.workflow_id = r.workflow_id RETURNING s.workflow_id",
        (event.timestamp, event.originator_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"execution {event.originator_id} was not queued")
    _copy_counters(cur, row[0])


_OUTCOMES: dict[type, tuple[int, int]] = {
    Execution.Succeeded: (1, 0),
    Execution.Failed: (0, 1),
    Execution.TimedOut: (0, 1),
    Execution.Cancelled: (0, 0),
}
"""What an ending adds to (success_count, failure_count)."""


@projector.on(*_OUTCOMES)
def execution_ended(
    cur: Cursor[Any],
    event: Execution.Succeeded | Execution.Failed | Execution.TimedOut | Execution.Cancelled,
    ctx: EventContext,
) -> None:
    successes, failures = _OUTCOMES[type(event)]
    duration = event.duration_ms
    page = _runs(cur)
    if page is not None:
        run = page.runs.setdefault(event.originator_id, _Run())
        if run.ended is not None:
            raise LookupError(f"execution {event.originator_id} was not queued or already ended")
        run.ended = (successes, failures, int(duration is not None), duration or 0)
        if duration is not None:
            page.buckets[bucket_of(duration)] += 1
        return
    row = cur.execute(
        "DELETE FROM workflow_execution_run WHERE execution_id = %s RETURNING workflow_id",
        (event.originator_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"execution {event.originator_id} was not queued or already ended")
    cur.execute(
        "UPDATE workflow_execution_stats SET execution_count = execution_count + 1, "
        "success_count = success_count + %s, failure_count = failure_count + %s, "
        "timed_count = timed_count + %s, total_duration_ms = total_duration_ms + %s "
        "WHERE workflow_id = %s",
        (successes, failures, int(duration is not None), duration or 0, row[0]),
    )
    if duration is not None:
        cur.execute(
            "INSERT INTO execution_duration_bucket (le_seconds, runs) VALUES (%s, 1) "
            "ON CONFLICT (le_seconds) DO UPDATE SET runs = execution_duration_bucket.runs + 1",
            (bucket_of(duration),),
        )
    _copy_counters(cur, row[0])


@dataclass
class _Run:
    """A run Started or ended in a page: when it started, and what its end adds to (successes,
    failures, timed runs, total duration)."""

    started_at: datetime | None = None
    ended: tuple[int, int, int, int] | None = None


@dataclass
class _RunsPage:
    """What a pipelined page of the Executions log holds back for the counters, written at its
    end set-based (`_write_runs`): four statements a page instead of eight a run, and no wait
    for a run's workflow. The counters only add up (last_executed_at takes the greatest) and
    the workflow rows take them once they are written, so the rows end as run by run."""

    queued: dict[str, str] = field(default_factory=dict)
    """The workflow of each run Queued in the page."""
    runs: dict[str, _Run] = field(default_factory=dict)
    buckets: Counter[float] = field(default_factory=Counter)


_RUNS = "workflows.runs"


def _runs(cur: Cursor[Any]) -> _RunsPage | None:
    return held(cur, _RUNS, _RunsPage, _write_runs)


_COUNT_RUNS = (
    "WITH v AS (SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::boolean[], "
    "%b::integer[], %b::integer[], %b::integer[], %b::bigint[]) "
    "AS v(id, workflow_id, started_at, ended, successes, failures, timed, duration)), "
    # Ended runs Queued in an earlier page: their rows go (both CTEs read the rows from before).
    "gone AS (DELETE FROM workflow_execution_run r USING v "
    "WHERE v.ended AND v.workflow_id IS NULL AND r.execution_id = v.id), "
    "runs AS (SELECT coalesce(v.workflow_id, r.workflow_id) AS workflow, v.started_at, v.ended, "
    "v.successes, v.failures, v.timed, v.duration FROM v "
    "LEFT JOIN workflow_execution_run r ON v.workflow_id IS NULL AND r.execution_id = v.id), "
    "counted AS (UPDATE workflow_execution_stats s SET "
    "execution_count = s.execution_count + t.ended, success_count = s.success_count + t.successes, "
    "failure_count = s.failure_count + t.failures, timed_count = s.timed_count + t.timed, "
    "total_duration_ms = s.total_duration_ms + t.duration, "
    "last_executed_at = greatest(s.last_executed_at, t.started_at) "
    "FROM (SELECT workflow, count(*) FILTER (WHERE ended) AS ended, "
    "sum(successes) AS successes, sum(failures) AS failures, sum(timed) AS timed, "
    "sum(duration) AS duration, max(started_at) AS started_at FROM runs "
    "WHERE workflow IS NOT NULL GROUP BY workflow) t "
    "WHERE s.workflow_id = t.workflow RETURNING s.*), "
    # The workflow rows take the counts just written (RETURNING gives the new values).
    "copied AS (UPDATE workflow w SET (" + _COUNTERS + ") = (SELECT " + _COUNTER_VALUES + ") "
    "FROM counted s WHERE w.id = s.workflow_id) "
    "SELECT FROM runs WHERE workflow IS NOT NULL"
)
"""Count the page's Started and ended runs (ids, workflow if Queued in the page, start time,
ended?, what the end adds); one row per run whose workflow is known, to check they all were."""


def _write_runs(cur: PageCursor, page: _RunsPage) -> None:
    queued, page.queued = page.queued, {}
    runs, page.runs = page.runs, {}
    buckets, page.buckets = page.buckets, Counter()
    if queued:
        cur.execute(
            "INSERT INTO workflow_execution_stats (workflow_id) "
            "SELECT DISTINCT unnest(%b::text[]) ON CONFLICT DO NOTHING",
            (list(queued.values()),),
        )
        still = [
            (run, workflow_id)
            for run, workflow_id in queued.items()
            if run not in runs or runs[run].ended is None
        ]
        insert_rows(cur, "workflow_execution_run", _RUN_COLUMNS, still)
    if runs:
        ids = list(runs)
        ended = [run.ended or (0, 0, 0, 0) for run in runs.values()]
        expect_rows(
            cur,
            _COUNT_RUNS,
            (
                ids,
                [queued.get(run) for run in ids],
                [run.started_at for run in runs.values()],
                [run.ended is not None for run in runs.values()],
                *([counts[i] for counts in ended] for i in range(4)),
            ),
            len(ids),
            f"one of the executions {', '.join(ids)} was not queued or already ended",
        )
    if buckets:
        cur.execute(
            "INSERT INTO execution_duration_bucket (le_seconds, runs) "
            "SELECT * FROM unnest(%b::double precision[], %b::bigint[]) "
            "ON CONFLICT (le_seconds) DO UPDATE "
            "SET runs = execution_duration_bucket.runs + EXCLUDED.runs",
            (list(buckets), list(buckets.values())),
        )


_RUN_COLUMNS: Columns = (("execution_id", "text"), ("workflow_id", "text"))


def _copy_counters(cur: Cursor[Any], workflow_id: str) -> None:
    """Set the workflow row's counters (if the row is there yet) from its stats row; the
    workflow's revision and updated_at stay: runs are not changes of the workflow."""
    cur.execute(
        "UPDATE workflow w SET (" + _COUNTERS + ") = (SELECT " + _COUNTER_VALUES + " "
        "FROM workflow_execution_stats s WHERE s.workflow_id = w.id) WHERE w.id = %s",
        (workflow_id,),
    )
