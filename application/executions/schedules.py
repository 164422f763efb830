"""Schedule use cases: keep a schedule in step with its workflow, and fire it when it is due.

Both decide from the event store, never from read models (which may lag): the workflow's head
says whether it is active and who owns it, its published version which schedule triggers it has
and with which timing. The scheduler (application/executions/scheduler.py) only uses the read
models to find schedules worth looking at.

A firing queues the run as the workflow's owner (the user a trigger runs for), starting at the
schedule trigger node with one item `{firedAt}`, and records `Fired` in the same save as the
run's `Queued`: the two happen together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import structlog
from eventsourcing.persistence import IntegrityError

from application.caller import Caller
from application.errors import Forbidden, NotFound
from application.eventstore import EventMetadata
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.workflows.commands import WorkflowService
from domain.errors import DomainError
from domain.executions.execution import Execution, ExecutionMode
from domain.executions.schedule import (
    DEFAULT_RETRIES,
    ExecutionSchedule,
    Firing,
    Timing,
    schedule_id,
)
from domain.workflows.triggers import TriggerType

log = structlog.get_logger(__name__)

SYSTEM = EventMetadata("system", correlation_id="scheduler")
"""Who arms, disarms and records missed or failed firings: the scheduler, not a user."""
DEFAULT_MISFIRE_GRACE = timedelta(seconds=60)

REFUSALS = (DomainError, NotFound, Forbidden)
"""Errors that say the workflow cannot run (retrying does not help), as opposed to passing
failures (a database or queue error)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Change(StrEnum):
    """What `sync` did to a schedule."""

    ARMED = "armed"
    DISARMED = "disarmed"


class Outcome(StrEnum):
    """What `fire` did with a due schedule."""

    FIRED = "fired"
    SKIPPED = "skipped"  # missed occurrences, policy skip: nothing runs
    FAILED = "failed"
    CHANGED = "changed"  # the workflow changed: re-armed or disarmed instead of firing


@dataclass(frozen=True)
class Fire:
    outcome: Outcome
    execution_id: str | None = None
    missed: int = 0


@dataclass(frozen=True)
class _Wanted:
    """The timing a schedule should be armed with and whom it runs for, or None and why it
    should not be armed."""

    timing: Timing | None
    reason: str = ""
    owner_id: str = ""


class ScheduleService:
    def __init__(
        self,
        executions: ExecutionService,
        workflows: WorkflowService,
        *,
        misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE,
        retries: int = DEFAULT_RETRIES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.executions = executions
        self.workflows = workflows
        self.misfire_grace = misfire_grace
        self.retries = retries
        self.clock = clock

    @property
    def app(self) -> ExecutionsApp:
        return self.executions.app

    def get(self, workflow_id: str, node_id: str) -> ExecutionSchedule | None:
        """The schedule of that trigger node, if it was ever armed."""
        try:
            return self.app.load(schedule_id(workflow_id, node_id), ExecutionSchedule)
        except NotFound:
            return None

    def sync(self, workflow_id: str, node_id: str) -> Change | None:
        """Arm, re-arm or disarm the schedule of trigger node `node_id` so that it matches the
        workflow now: armed with the node's timing while the workflow is active and its
        published version has that enabled schedule trigger, disarmed otherwise."""
        wanted = self._wanted(workflow_id, node_id)
        return self._align(self.get(workflow_id, node_id), workflow_id, node_id, wanted)

    def _align(
        self,
        schedule: ExecutionSchedule | None,
        workflow_id: str,
        node_id: str,
        wanted: _Wanted,
    ) -> Change | None:
        now = self.clock()
        if wanted.timing is None:
            if schedule is None or not schedule.disarm(wanted.reason):
                return None
            change = Change.DISARMED
        elif schedule is None:
            schedule = ExecutionSchedule.arm_new(
                workflow_id=workflow_id,
                node_id=node_id,
                timing=wanted.timing,
                now=now,
                retries=self.retries,
            )
            change = Change.ARMED
        elif schedule.arm(wanted.timing, now, self.retries):
            change = Change.ARMED
        else:
            return None
        try:
            self.app.record(SYSTEM, schedule)
        except IntegrityError:
            return None  # another scheduler changed it first; the next pass looks again
        return change

    def fire(self, schedule_id: str) -> Fire | None:
        """Queue the run the schedule owes now, if any (None: nothing was due, or another
        scheduler got there first). Missed occurrences are recorded first; a workflow that
        changed since the schedule was armed gets its schedule re-armed or disarmed instead."""
        schedule = self.app.load(schedule_id, ExecutionSchedule)
        now = self.clock()
        firing = schedule.due(now, self.misfire_grace)
        if firing is None:
            return None
        wanted = self._wanted(schedule.workflow_id, schedule.node_id)
        if wanted.timing != schedule.timing:
            changed = self._align(schedule, schedule.workflow_id, schedule.node_id, wanted)
            return None if changed is None else Fire(Outcome.CHANGED)
        schedule.record_missed(firing)
        if firing.due_at is None:
            return self._record(schedule, Fire(Outcome.SKIPPED, missed=_count(firing)))
        return self._queue_run(schedule, firing, now, wanted.owner_id)

    def _queue_run(
        self, schedule: ExecutionSchedule, firing: Firing, now: datetime, owner_id: str
    ) -> Fire | None:
        assert firing.due_at is not None
        fired_at = now.isoformat()
        saving = False

        def fired(execution: Execution) -> tuple[ExecutionSchedule]:
            nonlocal saving
            saving = True
            schedule.fired(firing, execution.id, now)
            return (schedule,)

        try:
            queued = self.executions.start(
                Caller(owner_id, correlation_id=schedule.id),
                schedule.workflow_id,
                [{"firedAt": fired_at}],
                mode=ExecutionMode.SCHEDULE,
                trigger=(schedule.node_id, schedule.trigger_id),
                trigger_data={
                    "scheduleId": schedule.id,
                    "dueAt": firing.due_at.isoformat(),
                    "firedAt": fired_at,
                    "catchUp": firing.catch_up,
                },
                submit=False,
                together=fired,
            )
        except IntegrityError:
            return None  # another scheduler recorded this occurrence first
        except Exception as exc:
            if saving:
                raise  # the save itself failed: nothing was recorded, the next round retries
            schedule.fire_failed(
                firing, _described(exc), now, retryable=not isinstance(exc, REFUSALS)
            )
            log.warning("schedule.fire_failed", schedule_id=schedule.id, error=_described(exc))
            return self._record(schedule, Fire(Outcome.FAILED, missed=_count(firing)))
        execution = queued.aggregate
        try:
            self.executions.queue.submit(execution.id, execution.priority)
        except Exception:
            # Recorded as queued: the workers' reconciler hands it to the queue later.
            log.warning("schedule.submit_failed", execution_id=execution.id, exc_info=True)
        return Fire(Outcome.FIRED, execution.id, _count(firing))

    def _record(self, schedule: ExecutionSchedule, result: Fire) -> Fire | None:
        try:
            self.app.record(SYSTEM, schedule)
        except IntegrityError:
            return None
        return result

    def _wanted(self, workflow_id: str, node_id: str) -> _Wanted:
        """How the workflow, as its events have it now, wants the node's schedule."""
        try:
            head, specs = self.workflows.running_triggers(workflow_id)
        except NotFound:
            return _Wanted(None, "the workflow no longer exists")
        if head.is_archived:
            return _Wanted(None, "the workflow was archived")
        if not head.is_active:
            return _Wanted(None, "the workflow was deactivated")
        for spec in specs:
            if spec.node_id == node_id and spec.type is TriggerType.SCHEDULE:
                return _Wanted(Timing.of(spec), owner_id=head.owner_id)
        return _Wanted(None, "the running version has no such schedule trigger")


def _count(firing: Firing) -> int:
    return 0 if firing.missed is None else firing.missed.count


def _described(exc: Exception) -> str:
    """What to record about a failed firing: our own refusals say why; other errors give only
    their type (their text may hold connection details)."""
    if isinstance(exc, REFUSALS):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
