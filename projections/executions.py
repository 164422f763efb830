"""execution, execution_node_state, execution_log and execution_metrics, from the Executions
context's events.

The execution row follows the aggregate's status; node state rows are created from the node list
of `Started` (PENDING) and follow each node's attempts. Log lines are the nodes' own lines (carried
by their NodeSucceeded / NodeFailed / NodeRetrying events) plus one line for each start and end of
a node or of the run; metrics are each node attempt's duration and item counts and the run's
duration. Derived rows take ids from the execution id and the event's version in the execution's
stream, so a rebuild writes the same rows with the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import Cursor

from application.payloads import is_pruned
from domain.executions.execution import Execution
from domain.executions.logs import LogLevel
from domain.text import clean_text
from projections.projector import (
    EventContext,
    PageCursor,
    Projector,
    append_rows,
    expect_one,
    jsonb,
    update_stamped,
)

projector = Projector(
    "executions",
    applications=("executions",),
    tables=("execution", "execution_node_state", "execution_log", "execution_metrics"),
    about="execution, execution_node_state, execution_log and execution_metrics tables",
)

_NODE_STATE_IDS = uuid.UUID("00a8ff69-296a-4c3e-a566-50e87bc95bf5")
_LOG_IDS = uuid.UUID("eb003b09-a7a9-4c5e-ae18-826a1945d98d")
_METRIC_IDS = uuid.UUID("300addc3-c35a-4765-843e-12f72ea91bc1")

_PRIVATE_META = frozenset({"ip", "user_agent"})
"""Request facts kept out of execution.metadata (personal data; audit_log has them)."""
_LINE_FIELDS = frozenset({"level", "message", "timestamp"})
_LOG_COLUMNS = (
    ("id", "text"),
    ("execution_id", "text"),
    ("node_id", "text"),
    ("level", "log_level"),
    ("message", "text"),
    ("details", "jsonb"),
    ("timestamp", "timestamptz"),
    ("event_version", "integer"),
    ("seq", "integer"),
)
_METRIC_COLUMNS = (
    ("id", "text"),
    ("execution_id", "text"),
    ("node_id", "text"),
    ("metric_name", "text"),
    ("metric_value", "double precision"),
    ("unit", "text"),
    ("tags", "jsonb"),
    ("timestamp", "timestamptz"),
    ("event_version", "integer"),
    ("seq", "integer"),
)
"""execution_log and execution_metrics: only ever appended to here (see `append_rows`)."""


@dataclass(frozen=True)
class Line:
    level: LogLevel
    message: str
    node_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    """When the node logged it, if it said; else the event's time."""


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    unit: str
    node_id: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)


# -- the run ----------------------------------------------------------------------------------


@projector.on(Execution.Queued)
def queued(cur: Cursor[Any], event: Execution.Queued, ctx: EventContext) -> None:
    cur.execute(
        "INSERT INTO execution (id, status, trigger_data, input_data, priority, "
        "parent_execution_id, context_data, metadata, created_at, updated_at, workflow_id, "
        "workflow_version, user_id, trigger_id, mode, retry_of, revision) "
        "VALUES (%s, 'QUEUED', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event.originator_id,
            jsonb(event.trigger_data),
            jsonb(event.input_items),
            event.priority,
            event.parent_execution_id,
            jsonb({"startNodeId": event.start_node_id}),
            jsonb({k: v for k, v in ctx.meta.items() if k not in _PRIVATE_META}),
            event.timestamp,
            event.timestamp,
            event.workflow_id,
            event.workflow_version,
            event.user_id,
            event.trigger_id,
            event.mode,
            event.retry_of,
            event.originator_version,
        ),
    )


@projector.on(Execution.Started)
def started(cur: Cursor[Any], event: Execution.Started, ctx: EventContext) -> None:
    _update_execution(
        cur,
        event,
        "status = 'RUNNING', start_time = %s, worker_id = %s",
        event.timestamp,
        event.worker_id,
    )
    execution_id = event.originator_id
    names = _node_names(cur)
    for node in event.nodes:
        name = node.get("name")  # as coalesce(node_name, node_id) reads the stored row
        names[(execution_id, node["id"])] = clean_text(node["id"] if name is None else name)
    cur.executemany(
        "INSERT INTO execution_node_state (id, execution_id, node_id, node_name, node_type, "
        "sequence, status, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, 'PENDING', %s, %s)",
        [
            (
                str(uuid.uuid5(_NODE_STATE_IDS, f"{execution_id}/{node['id']}")),
                execution_id,
                node["id"],
                node.get("name"),
                node["type"],
                sequence,
                event.timestamp,
                event.timestamp,
            )
            for sequence, node in enumerate(event.nodes)
        ],
    )
    _log(
        cur,
        event,
        [
            Line(
                LogLevel.INFO,
                f"Execution started on worker {event.worker_id}, {len(event.nodes)} nodes to run",
            )
        ],
    )


@projector.on(Execution.Resumed)
def resumed(cur: Cursor[Any], event: Execution.Resumed, ctx: EventContext) -> None:
    _update_execution(cur, event, "worker_id = %s", event.worker_id)
    _update_unsettled_nodes(cur, event, "status = 'PENDING'")
    _log(
        cur,
        event,
        [
            Line(
                LogLevel.WARN,
                f"Execution resumed on worker {event.worker_id} "
                f"(worker {event.previous_worker_id or 'unknown'} stopped answering)",
            )
        ],
    )


@projector.on(Execution.Succeeded)
def succeeded(cur: Cursor[Any], event: Execution.Succeeded, ctx: EventContext) -> None:
    _end(
        cur,
        event,
        "SUCCESS",
        event.duration_ms,
        Line(LogLevel.INFO, f"Execution succeeded in {event.duration_ms} ms"),
        "output_data = %s",
        jsonb(event.output_items),
    )


@projector.on(Execution.Failed)
def failed(cur: Cursor[Any], event: Execution.Failed, ctx: EventContext) -> None:
    _end(
        cur,
        event,
        "FAILED",
        event.duration_ms,
        Line(LogLevel.ERROR, f"Execution failed: {event.error_message}"),
        "error_message = %s, error_details = %s",
        event.error_message,
        jsonb(event.error_details),
    )


@projector.on(Execution.TimedOut)
def timed_out(cur: Cursor[Any], event: Execution.TimedOut, ctx: EventContext) -> None:
    message = f"the execution took longer than its timeout of {event.timeout_ms} ms"
    _end(
        cur,
        event,
        "TIMEOUT",
        event.duration_ms,
        Line(LogLevel.ERROR, f"Execution timed out: {message}"),
        "error_message = %s, error_details = %s",
        message,
        jsonb({"timeoutMs": event.timeout_ms}),
    )


@projector.on(Execution.Cancelled)
def cancelled(cur: Cursor[Any], event: Execution.Cancelled, ctx: EventContext) -> None:
    _end(
        cur,
        event,
        "CANCELLED",
        event.duration_ms,
        Line(LogLevel.WARN, f"Execution cancelled: {event.reason}"),
        "error_message = %s",
        event.reason,
    )


def _end(
    cur: Cursor[Any],
    event: Any,
    status: str,
    duration_ms: int | None,
    line: Line,
    assignments: str,
    *values: Any,
) -> None:
    """The run ended with `status`: its row, the nodes still going (they end CANCELLED, as in
    the aggregate; those that never started get no end time), its last log line and its
    duration metric."""
    _update_unsettled_nodes(
        cur,
        event,
        "status = 'CANCELLED', end_time = CASE WHEN start_time IS NULL THEN NULL ELSE %s END",
        event.timestamp,
    )
    _update_execution(
        cur,
        event,
        f"status = %s, end_time = %s, duration = %s, {assignments}",
        status,
        event.timestamp,
        duration_ms,
        *values,
    )
    _log(cur, event, [line])
    if duration_ms is not None:
        _measure(cur, event, [Sample("duration_ms", duration_ms, "ms")])


# -- nodes ------------------------------------------------------------------------------------


@projector.on(Execution.NodeStarted)
def node_started(cur: Cursor[Any], event: Execution.NodeStarted, ctx: EventContext) -> None:
    name = _update_node(
        cur,
        event,
        "status = 'RUNNING', attempt = %s, retry_count = %s, input_count = %s, "
        "start_time = coalesce(start_time, %s), end_time = NULL",
        event.attempt,
        event.attempt - 1,
        event.input_count,
        event.timestamp,
    )
    _update_execution(cur, event)
    _log(
        cur,
        event,
        [
            Line(
                LogLevel.INFO,
                f"Node {name} started (attempt {event.attempt}, {event.input_count} items in)",
                event.node_id,
            )
        ],
    )
    _measure(
        cur,
        event,
        [Sample("items_in", event.input_count, "items", event.node_id, {"attempt": event.attempt})],
    )


@projector.on(Execution.NodeSucceeded)
def node_succeeded(cur: Cursor[Any], event: Execution.NodeSucceeded, ctx: EventContext) -> None:
    # A rebuild after retention finds the output pruned: its count is gone with it.
    handles = event.outputs.values()
    items_out = None if any(map(is_pruned, handles)) else sum(map(len, handles))
    name = _update_node(
        cur,
        event,
        "status = 'SUCCESS', end_time = %s, duration = coalesce(duration, 0) + %s, "
        "output_data = %s, error_message = NULL, error_details = NULL",
        event.timestamp,
        event.duration_ms,
        jsonb(event.outputs),
    )
    _update_execution(cur, event)
    done = Line(
        LogLevel.INFO,
        f"Node {name} succeeded in {event.duration_ms} ms "
        + ("(output pruned)" if items_out is None else f"({items_out} items out)"),
        event.node_id,
    )
    _log(cur, event, [*_node_lines(event), done])
    samples = [Sample("duration_ms", event.duration_ms, "ms", event.node_id, _attempt(event))]
    if items_out is not None:
        samples.append(Sample("items_out", items_out, "items", event.node_id, _attempt(event)))
    _measure(cur, event, samples)


@projector.on(Execution.NodeFailed, Execution.NodeRetrying)
def node_attempt_failed(
    cur: Cursor[Any], event: Execution.NodeFailed | Execution.NodeRetrying, ctx: EventContext
) -> None:
    """An attempt failed: for good (FAILED), or to be tried again (RETRYING)."""
    message = _error_message(event.error)
    retrying = isinstance(event, Execution.NodeRetrying)
    name = _update_node(
        cur,
        event,
        "status = %s, end_time = %s, duration = coalesce(duration, 0) + %s, "
        "error_message = %s, error_details = %s",
        "RETRYING" if retrying else "FAILED",
        None if retrying else event.timestamp,
        event.duration_ms,
        message,
        jsonb(event.error),
    )
    if isinstance(event, Execution.NodeRetrying):
        _update_execution(cur, event, "retry_count = retry_count + 1")
        last = Line(
            LogLevel.WARN,
            f"Node {name} attempt {event.attempt} failed: {message}; "
            f"retrying in {event.delay_ms} ms",
            event.node_id,
        )
    else:
        _update_execution(cur, event)
        last = Line(LogLevel.ERROR, f"Node {name} failed: {message}", event.node_id)
    _log(cur, event, [*_node_lines(event), last])
    _measure(
        cur, event, [Sample("duration_ms", event.duration_ms, "ms", event.node_id, _attempt(event))]
    )


@projector.on(Execution.NodeSkipped)
def node_skipped(cur: Cursor[Any], event: Execution.NodeSkipped, ctx: EventContext) -> None:
    name = _update_node(
        cur,
        event,
        "status = 'SKIPPED', end_time = %s, skip_reason = %s, output_data = %s",
        event.timestamp,
        event.reason,
        jsonb(event.outputs),
    )
    _update_execution(cur, event)
    _log(cur, event, [Line(LogLevel.INFO, f"Node {name} skipped: {event.reason}", event.node_id)])


def _attempt(event: Any) -> dict[str, int]:
    return {"attempt": event.attempt}


def _error_message(error: Mapping[str, Any]) -> str:
    return str(error.get("message") or error.get("type") or "the node failed")


def _node_lines(
    event: Execution.NodeSucceeded | Execution.NodeFailed | Execution.NodeRetrying,
) -> list[Line]:
    """The lines the node itself logged, filed under the spec's levels (none once pruned)."""
    if is_pruned(event.logs):
        return []
    return [
        Line(
            LogLevel.of(line.get("level")),
            str(line.get("message", "")),
            event.node_id,
            {k: v for k, v in line.items() if k not in _LINE_FIELDS},
            _time_of(line.get("timestamp")),
        )
        for line in event.logs
    ]


def _time_of(value: object) -> datetime | None:
    """A time the node gave with a line, if it is an ISO time with a zone."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# -- writing ----------------------------------------------------------------------------------


def _update_execution(
    cur: Cursor[Any], event: Any, assignments: str | None = None, *values: Any
) -> None:
    update_stamped(cur, "execution", event, assignments, *values)


def _update_node(cur: Cursor[Any], event: Any, assignments: str, *values: Any) -> str:
    """Apply `assignments` to the event's node; returns the node's name for log lines (from
    the page's memo when its Started event was in the same page: no wait for the row)."""
    query = (
        f"UPDATE execution_node_state SET {assignments}, updated_at = %s "
        "WHERE execution_id = %s AND node_id = %s"
    )
    params = (*values, event.timestamp, event.originator_id, event.node_id)
    missing = f"execution {event.originator_id} has no node {event.node_id!r}"
    name = _node_names(cur).get((event.originator_id, event.node_id))
    if name is not None:
        expect_one(cur, query, params, missing)
        return name
    row = cur.execute(f"{query} RETURNING coalesce(node_name, node_id)", params).fetchone()
    if row is None:
        raise LookupError(missing)
    return str(row[0])


def _node_names(cur: Cursor[Any]) -> dict[tuple[str, str], str]:
    """Node names by (execution, node) that Started events of this page created."""
    memo: dict[tuple[str, str], str] = {}
    if isinstance(cur, PageCursor):
        memo = cur.memo.setdefault("executions.node_names", memo)
    return memo


def _update_unsettled_nodes(cur: Cursor[Any], event: Any, assignments: str, *values: Any) -> None:
    cur.execute(
        f"UPDATE execution_node_state SET {assignments}, updated_at = %s "
        "WHERE execution_id = %s AND status NOT IN ('SUCCESS', 'FAILED', 'SKIPPED')",
        (*values, event.timestamp, event.originator_id),
    )


def _derived_id(namespace: uuid.UUID, event: Any, seq: int) -> str:
    return str(uuid.uuid5(namespace, f"{event.originator_id}/{event.originator_version}/{seq}"))


def _log(cur: Cursor[Any], event: Any, lines: Sequence[Line]) -> None:
    append_rows(
        cur,
        "execution_log",
        _LOG_COLUMNS,
        [
            (
                _derived_id(_LOG_IDS, event, seq),
                event.originator_id,
                line.node_id,
                str(line.level),
                line.message,
                jsonb(dict(line.details)),
                line.at or event.timestamp,
                event.originator_version,
                seq,
            )
            for seq, line in enumerate(lines)
        ],
    )


def _measure(cur: Cursor[Any], event: Any, samples: Sequence[Sample]) -> None:
    append_rows(
        cur,
        "execution_metrics",
        _METRIC_COLUMNS,
        [
            (
                _derived_id(_METRIC_IDS, event, seq),
                event.originator_id,
                sample.node_id,
                sample.name,
                float(sample.value),
                sample.unit,
                jsonb(dict(sample.tags)),
                event.timestamp,
                event.originator_version,
                seq,
            )
            for seq, sample in enumerate(samples)
        ],
    )
