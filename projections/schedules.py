"""execution_schedule, from the ExecutionSchedule events of the Executions context."""

from __future__ import annotations

from typing import Any

from psycopg import Cursor

from domain.executions.schedule import ExecutionSchedule
from projections.projector import EventContext, Projector, update_stamped

projector = Projector(
    "schedules",
    applications=("executions",),
    # Its few events share the busiest log; the scheduler plans in seconds, not milliseconds.
    background=("executions",),
    tables=("execution_schedule",),
    about="execution_schedule table (when each schedule trigger runs next)",
)

_ARMED = (
    "status = 'ARMED', cron = %s, interval_seconds = %s, timezone = %s, misfire = %s, "
    "retries = %s, next_run_at = %s, retry_at = NULL, attempts = 0, disarmed_reason = NULL"
)


@projector.on(ExecutionSchedule.Armed)
def armed(cur: Cursor[Any], event: ExecutionSchedule.Armed, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO execution_schedule (id, workflow_id, trigger_id, node_id, status, cron, "
        "interval_seconds, timezone, misfire, next_run_at, retries, created_at, updated_at, "
        "revision) VALUES (%s, %s, %s, %s, 'ARMED', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            event.workflow_id,
            event.trigger_id,
            event.node_id,
            event.cron,
            event.interval_seconds,
            event.timezone,
            event.misfire,
            event.next_run_at,
            event.retries,
            event.timestamp,
            event.timestamp,
            event.originator_version,
        ),
    )


@projector.on(ExecutionSchedule.Rearmed)
def rearmed(cur: Cursor[Any], event: ExecutionSchedule.Rearmed, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        _ARMED,
        event.cron,
        event.interval_seconds,
        event.timezone,
        event.misfire,
        event.retries,
        event.next_run_at,
    )


@projector.on(ExecutionSchedule.Fired)
def fired(cur: Cursor[Any], event: ExecutionSchedule.Fired, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        "next_run_at = %s, last_run_at = %s, last_execution_id = %s, "
        "run_count = run_count + 1, attempts = 0, retry_at = NULL",
        event.next_run_at,
        event.fired_at,
        event.execution_id,
    )


@projector.on(ExecutionSchedule.Missed)
def missed(cur: Cursor[Any], event: ExecutionSchedule.Missed, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        "next_run_at = %s, missed_count = missed_count + %s, attempts = 0, retry_at = NULL",
        event.next_run_at,
        event.count,
    )


@projector.on(ExecutionSchedule.FireFailed)
def fire_failed(cur: Cursor[Any], event: ExecutionSchedule.FireFailed, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        "next_run_at = %s, attempts = %s, retry_at = %s, last_error = %s",
        event.next_run_at,
        event.attempt,
        event.retry_at,
        event.error,
    )


@projector.on(ExecutionSchedule.Disarmed)
def disarmed(cur: Cursor[Any], event: ExecutionSchedule.Disarmed, ctx: EventContext) -> None:
    _update(
        cur,
        event,
        "status = 'DISARMED', next_run_at = NULL, retry_at = NULL, attempts = 0, "
        "disarmed_reason = %s",
        event.reason,
    )


def _update(cur: Cursor[Any], event: Any, assignments: str, *values: Any) -> None:
    update_stamped(cur, "execution_schedule", event, assignments, *values)
