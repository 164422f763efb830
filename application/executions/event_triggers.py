"""Runs that start because another run ended: event triggers and error workflows.

A process manager follows the Executions log through the projection runtime (projections/
event_triggers.py), which records how far it got in `projection_tracking` and lets one process at a
time apply it. For each run that ends it starts
- every active workflow with an `event_trigger` node whose `workflowId` + `status` match the
  ending, or whose `event` names it (`execution.failed`...: EXECUTION_EVENTS), provided the
  workflow's owner may see the run that ended (the item describes it);
- the `settings.errorWorkflow` of the version that ran, when the run FAILED or timed out.

Starting and moving the tracked position cannot share one transaction (the event store writes
on its own connections), so the position moves after the starts, and each start is idempotent
instead: the new run's id is derived from the ended run and the trigger, so an ending handled again
after a crash finds the id taken and starts nothing. Every ending thus starts each of its runs at
most once, across restarts and however many processes run the manager.

Loops: a run started by the end of another is one link further down a chain (`chainDepth` in its
trigger data, inherited by its sub-workflows and retries); chains stop after MAX_CHAIN_DEPTH
links, which bounds a workflow triggered by its own end, directly or through others. A named
event fires only for runs of other workflows that no event started (two `execution.succeeded`
listeners would otherwise feed each other). Runs of a draft (test mode) start nothing.

The triggers are read from `workflow_trigger`, which the workflows projector keeps: before
matching a page of endings, the manager waits (up to TRIGGERS_WAIT_SECONDS) until that projector
has applied the workflows log as far as it went when the page was read, so an activation saved
before a run ended is never missed because its projection was a few milliseconds behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from eventsourcing.persistence import IntegrityError
from psycopg import Cursor, sql

from application.caller import Caller
from application.contexts import events_table
from application.errors import Forbidden, NotFound
from application.executions.commands import CHAIN_DEPTH, ExecutionService
from application.ids import derived_id
from domain.errors import InvalidState, UnknownPart, ValidationFailed
from domain.executions.execution import (
    FINAL_EVENTS,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    Item,
    ending_error,
)
from domain.workflows.nodes.triggers import EXECUTION_EVENTS

log = structlog.get_logger(__name__)

MAX_CHAIN_DEPTH = 10
ERROR_WORKFLOW_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)

_MATCHING_TRIGGERS = (
    "SELECT v.n, t.id, t.workflow_id, t.node_id, t.user_id, t.event_name "
    "FROM unnest(%(workflows)s::text[], %(statuses)s::text[], %(depths)s::integer[], "
    "%(runners)s::text[]) WITH ORDINALITY AS v(workflow, status, depth, runner, n) "
    "JOIN workflow_trigger t ON t.type = 'EVENT' AND t.is_active "
    "AND ((t.event_workflow_id = v.workflow AND t.event_status = v.status) "
    "  OR (t.workflow_id <> v.workflow AND v.depth = 0 AND t.event_name IN ("
    "      SELECT e.name FROM unnest(%(names)s::text[], %(named)s::text[]) AS e(name, status) "
    "      WHERE e.status = v.status))) "
    "AND (t.user_id = v.runner "
    "  OR EXISTS (SELECT 1 FROM workflow w WHERE w.id = v.workflow AND w.user_id = t.user_id) "
    "  OR EXISTS (SELECT 1 FROM workflow_share s "
    "             WHERE s.workflow_id = v.workflow AND s.user_id = t.user_id)) "
    "ORDER BY v.n, t.id"
)
"""Active event triggers listening for each of some endings (numbered from 1), of owners who
may see the run (who started it, own its workflow or have it shared: the rule of GET
/executions/{id}); `names` and `named` pair each named event with a status it stands for."""
_NAMED = [(name, status) for name, statuses in EXECUTION_EVENTS.items() for status in statuses]
_TRIGGERS_BEHIND = (
    "SELECT %(head)s::bigint > coalesce((SELECT position FROM projection_tracking "
    "WHERE projector = 'workflows' AND application = 'workflows'), 0)"
)
"""Whether the workflows projector (workflow_trigger's) has not reached `head` yet."""
TRIGGERS_POLL_SECONDS = 0.01
TRIGGERS_WAIT_SECONDS = 5.0
"""Longest a page of endings waits for workflow_trigger to catch up; then it is matched as is
(a projector that is stopped or parked must not stop event triggers altogether)."""


@dataclass(frozen=True)
class Ending:
    """A run that ended, as the item of the runs it starts describes it."""

    execution_id: str
    workflow_id: str
    workflow_version: int
    user_id: str
    mode: ExecutionMode
    status: ExecutionStatus
    ended_at: datetime
    error: dict[str, Any] | None
    chain_depth: int

    def item(self) -> Item:
        return {
            "executionId": self.execution_id,
            "workflowId": self.workflow_id,
            "workflowVersion": self.workflow_version,
            "mode": str(self.mode),
            "status": str(self.status),
            "endTime": self.ended_at.isoformat(),
            "error": self.error,
        }


def _await_triggers(cur: Cursor[Any]) -> None:
    """Wait until workflow_trigger holds what the workflows log held now (see the module's
    docstring); each check is a statement of its own, so it sees the projector's latest commit."""
    row = cur.execute(
        sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(events_table("workflows"))
        )
    ).fetchone()
    head = int(row[0]) if row else 0
    deadline = time.monotonic() + TRIGGERS_WAIT_SECONDS
    while _triggers_behind(cur, head):
        if time.monotonic() >= deadline:
            log.warning("event_trigger.triggers_behind", waited_seconds=TRIGGERS_WAIT_SECONDS)
            return
        time.sleep(TRIGGERS_POLL_SECONDS)


def _triggers_behind(cur: Cursor[Any], head: int) -> bool:
    row = cur.execute(_TRIGGERS_BEHIND, {"head": head}).fetchone()
    return bool(row and row[0])


def ending_of(executions: ExecutionService, event: Execution.Event) -> Ending:
    """The run `event` (a final event) ended: its first event (Queued) says which run it was,
    `event` how it ended."""
    origin = executions.origin(str(event.originator_id))
    return Ending(
        execution_id=str(event.originator_id),
        workflow_id=origin.workflow_id,
        workflow_version=origin.workflow_version,
        user_id=origin.user_id,
        mode=origin.mode,
        status=FINAL_EVENTS[type(event)],
        ended_at=event.timestamp,
        error=ending_error(event),
        chain_depth=origin.chain_depth,
    )


@dataclass(frozen=True)
class Start:
    """A run an ending asks for."""

    workflow_id: str
    user_id: str
    """Whom the run is attributed to: the started workflow's owner (error workflow: the owner of
    the workflow that failed, who chose it)."""
    key: str
    """What tells it apart from the other runs of the same ending."""
    source: str
    trigger: tuple[str, str] | None = None
    """(node id, workflow_trigger id) to start at; None: the workflow's manual trigger."""
    event: str | None = None


class EventTriggers:
    """Starts the runs an ended run asks for (see the module docstring)."""

    def __init__(self, executions: ExecutionService) -> None:
        self.executions = executions

    def execution_ended(self, cur: Cursor[Any], event: Execution.Event) -> list[str]:
        """Start what `event` (a final event) asks for; the ids of the runs it asked for (also
        those started before, by an earlier delivery of the same event)."""
        return self.executions_ended(cur, [event])

    def executions_ended(self, cur: Cursor[Any], events: Sequence[Execution.Event]) -> list[str]:
        """`execution_ended` for each of `events` in turn, with the event triggers they match
        read in one statement (a page of the log's endings: one wait instead of one each)."""
        endings = [ending_of(self.executions, event) for event in events]
        endings = [ending for ending in endings if ending.mode is not ExecutionMode.TEST]
        if endings:
            _await_triggers(cur)
        started: list[str] = []
        for ending, matched in zip(endings, self._event_triggers(cur, endings), strict=True):
            starts = matched + self._error_workflow(cur, ending)
            if starts and ending.chain_depth >= MAX_CHAIN_DEPTH:
                log.warning(
                    "event_trigger.chain_too_long",
                    execution_id=ending.execution_id,
                    workflow_id=ending.workflow_id,
                    chain_depth=ending.chain_depth,
                    refused=[start.workflow_id for start in starts],
                )
                continue
            started += [
                found for start in starts if (found := self._start(ending, start)) is not None
            ]
        return started

    def _event_triggers(self, cur: Cursor[Any], endings: Sequence[Ending]) -> list[list[Start]]:
        """The event trigger starts each of `endings` asks for."""
        matched: list[list[Start]] = [[] for _ in endings]
        if not endings:
            return matched
        rows = cur.execute(
            _MATCHING_TRIGGERS,
            {
                "workflows": [ending.workflow_id for ending in endings],
                "statuses": [str(ending.status) for ending in endings],
                "depths": [ending.chain_depth for ending in endings],
                "runners": [ending.user_id for ending in endings],
                "names": [name for name, _ in _NAMED],
                "named": [str(status) for _, status in _NAMED],
            },
        ).fetchall()
        for n, trigger_id, workflow_id, node_id, owner_id, event_name in rows:
            matched[n - 1].append(
                Start(
                    workflow_id=workflow_id,
                    user_id=owner_id,
                    key=trigger_id,
                    source="event_trigger",
                    trigger=(node_id, trigger_id),
                    event=event_name,
                )
            )
        return matched

    def _error_workflow(self, cur: Cursor[Any], ending: Ending) -> list[Start]:
        if ending.status not in ERROR_WORKFLOW_STATUSES:
            return []
        try:
            definition = self.executions.workflows.version_definition(
                ending.workflow_id, ending.workflow_version
            )
        except (NotFound, UnknownPart):  # no such version to read settings from
            return []
        target = (definition.get("settings") or {}).get("errorWorkflow")
        if not isinstance(target, str):
            return []
        row = cur.execute("SELECT user_id FROM workflow WHERE id = %s", (ending.workflow_id,))
        owner = row.fetchone()
        if owner is None:
            log.warning("error_workflow.owner_unknown", workflow_id=ending.workflow_id)
            return []
        return [Start(target, owner[0], key=f"error-workflow/{target}", source="error_workflow")]

    def _start(self, ending: Ending, start: Start) -> str | None:
        execution_id = derived_id(ending.ended_at, f"{ending.execution_id}/{start.key}")
        trigger_data = {
            "source": start.source,
            "event": start.event,
            "executionId": ending.execution_id,
            "workflowId": ending.workflow_id,
            "status": str(ending.status),
            CHAIN_DEPTH: ending.chain_depth + 1,
        }
        try:
            queued = self.executions.start(
                Caller(start.user_id, correlation_id=ending.execution_id),
                start.workflow_id,
                [ending.item()],
                mode=ExecutionMode.EVENT,
                trigger=start.trigger,
                trigger_data={k: v for k, v in trigger_data.items() if v is not None},
                execution_id=execution_id,
                submit=False,
            )
            priority = queued.aggregate.priority
        except IntegrityError:
            priority = 0  # started by an earlier delivery that stopped before moving on
        except (NotFound, Forbidden, InvalidState, ValidationFailed) as refused:
            log.warning(
                f"{start.source}.refused",
                execution_id=ending.execution_id,
                workflow_id=start.workflow_id,
                reason=str(refused) or type(refused).__name__,
            )
            return None
        try:
            self.executions.queue.submit(execution_id, priority)
        except Exception as exc:  # the run is queued in the store: the reconciler submits it
            log.warning("event_trigger.submit_failed", execution_id=execution_id, error=str(exc))
        return execution_id
