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

import contextlib
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import Cursor

from application.payloads import is_pruned
from domain.executions.execution import Execution
from domain.executions.logs import LogLevel
from domain.text import clean_text
from projections.projector import (
    Columns,
    EventContext,
    PageCursor,
    Projector,
    append_rows,
    expect_one,
    expect_rows,
    held,
    insert_rows,
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
    at: datetime | None = None
    """When it was taken, if not at the event's time."""


# -- the run ----------------------------------------------------------------------------------


@projector.on(Execution.Queued)
def queued(cur: Cursor[Any], event: Execution.Queued, ctx: EventContext) -> None:
    row = {
        "id": event.originator_id,
        "status": "QUEUED",
        "trigger_data": jsonb(event.trigger_data),
        "input_data": jsonb(event.input_items),
        "priority": event.priority,
        "parent_execution_id": event.parent_execution_id,
        "context_data": jsonb({"startNodeId": event.start_node_id}),
        "metadata": jsonb({k: v for k, v in ctx.meta.items() if k not in _PRIVATE_META}),
        "created_at": event.timestamp,
        "updated_at": event.timestamp,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "user_id": event.user_id,
        "trigger_id": event.trigger_id,
        "mode": event.mode,
        "retry_of": event.retry_of,
        "revision": event.originator_version,
    }
    page = _page(cur)
    if page is not None:
        page.runs[event.originator_id] = {**_RUN_DEFAULTS, **row}
        return
    cur.execute(
        f"INSERT INTO execution ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


@projector.on(Execution.Started)
def started(cur: Cursor[Any], event: Execution.Started, ctx: EventContext) -> None:
    _update_execution(
        cur,
        event,
        {"status": "RUNNING", "start_time": event.timestamp, "worker_id": event.worker_id},
    )
    execution_id = event.originator_id
    rows = [
        {
            "id": _uuid5(_NODE_STATE_IDS, f"{execution_id}/{node['id']}"),
            "execution_id": execution_id,
            "node_id": node["id"],
            "node_name": node.get("name"),
            "node_type": node["type"],
            "sequence": sequence,
            "status": "PENDING",
            "created_at": event.timestamp,
            "updated_at": event.timestamp,
        }
        for sequence, node in enumerate(event.nodes)
    ]
    for node in event.nodes:
        _remember(execution_id, node["id"], node.get("name"))
    page = _page(cur)
    if page is not None:
        held = page.started[execution_id] = [{**_NODE_DEFAULTS, **row} for row in rows]
        for row in held:
            page.nodes[(execution_id, row["node_id"])] = row
    elif rows:
        cur.executemany(
            f"INSERT INTO execution_node_state ({', '.join(rows[0])}) "
            f"VALUES ({', '.join(['%s'] * len(rows[0]))})",
            [list(row.values()) for row in rows],
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
    _update_execution(cur, event, {"worker_id": event.worker_id})
    _update_unsettled_nodes(cur, event, {"status": "PENDING"})
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
        {"output_data": jsonb(event.output_items)},
    )


@projector.on(Execution.Failed)
def failed(cur: Cursor[Any], event: Execution.Failed, ctx: EventContext) -> None:
    _end(
        cur,
        event,
        "FAILED",
        event.duration_ms,
        Line(LogLevel.ERROR, f"Execution failed: {event.error_message}"),
        {"error_message": event.error_message, "error_details": jsonb(event.error_details)},
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
        {"error_message": message, "error_details": jsonb({"timeoutMs": event.timeout_ms})},
    )


@projector.on(Execution.Cancelled)
def cancelled(cur: Cursor[Any], event: Execution.Cancelled, ctx: EventContext) -> None:
    _end(
        cur,
        event,
        "CANCELLED",
        event.duration_ms,
        Line(LogLevel.WARN, f"Execution cancelled: {event.reason}"),
        {"error_message": event.reason},
    )


def _end(
    cur: Cursor[Any],
    event: Any,
    status: str,
    duration_ms: int | None,
    line: Line,
    changes: Changes,
) -> None:
    """The run ended with `status`: its row, the nodes still going (they end CANCELLED, as in
    the aggregate; those that never started get no end time), its last log line and its
    duration metric."""
    _update_unsettled_nodes(
        cur, event, {"status": "CANCELLED", "end_time": IfStarted(event.timestamp)}
    )
    _update_execution(
        cur,
        event,
        {"status": status, "end_time": event.timestamp, "duration": duration_ms, **changes},
    )
    _log(cur, event, [line])
    if duration_ms is not None:
        _measure(cur, event, [Sample("duration_ms", duration_ms, "ms")])


# -- nodes ------------------------------------------------------------------------------------


@projector.on(Execution.NodeStarted)
def node_started(cur: Cursor[Any], event: Execution.NodeStarted, ctx: EventContext) -> None:
    began = _Began(event.node_id, event.attempt, event.input_count, event.timestamp)
    name = _update_node(cur, event, {**began.changes(), "status": "RUNNING", "end_time": None})
    _update_execution(cur, event)
    _log(cur, event, [began.line(name)])
    _measure(cur, event, [began.sample()])


@projector.on(Execution.NodeSucceeded)
def node_succeeded(cur: Cursor[Any], event: Execution.NodeSucceeded, ctx: EventContext) -> None:
    """The attempt's end; and its start, when the event records that too (`input_count`):
    then the node's row, lines and samples are those a NodeStarted at the time it began would
    have added (under this event's version)."""
    # A rebuild after retention finds the output pruned: its count is gone with it.
    handles = event.outputs.values()
    items_out = None if any(map(is_pruned, handles)) else sum(map(len, handles))
    began = None
    if event.input_count is not None:
        at = event.timestamp - timedelta(milliseconds=event.duration_ms)
        began = _Began(event.node_id, event.attempt, event.input_count, at)
    name = _update_node(
        cur,
        event,
        {
            **(began.changes() if began else {}),
            "status": "SUCCESS",
            "end_time": event.timestamp,
            "duration": Add(event.duration_ms),
            "output_data": jsonb(event.outputs),
            "error_message": None,
            "error_details": None,
        },
    )
    _update_execution(cur, event)
    done = Line(
        LogLevel.INFO,
        f"Node {name} succeeded in {event.duration_ms} ms "
        + ("(output pruned)" if items_out is None else f"({items_out} items out)"),
        event.node_id,
    )
    _log(cur, event, [*([began.line(name)] if began else []), *_node_lines(event), done])
    samples = [Sample("duration_ms", event.duration_ms, "ms", event.node_id, _attempt(event))]
    if items_out is not None:
        samples.append(Sample("items_out", items_out, "items", event.node_id, _attempt(event)))
    _measure(cur, event, [*([began.sample()] if began else []), *samples])


@dataclass(frozen=True)
class _Began:
    """An attempt's start, as a NodeStarted or a NodeSucceeded that records it writes it."""

    node_id: str
    attempt: int
    input_count: int
    at: datetime

    def changes(self) -> Changes:
        return {
            "attempt": self.attempt,
            "retry_count": self.attempt - 1,
            "input_count": self.input_count,
            "start_time": IfUnset(self.at),
        }

    def line(self, name: str) -> Line:
        text = f"Node {name} started (attempt {self.attempt}, {self.input_count} items in)"
        return Line(LogLevel.INFO, text, self.node_id, at=self.at)

    def sample(self) -> Sample:
        tags = {"attempt": self.attempt}
        return Sample("items_in", self.input_count, "items", self.node_id, tags, self.at)


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
        {
            "status": "RETRYING" if retrying else "FAILED",
            "end_time": None if retrying else event.timestamp,
            "duration": Add(event.duration_ms),
            "error_message": message,
            "error_details": jsonb(event.error),
        },
    )
    if isinstance(event, Execution.NodeRetrying):
        _update_execution(cur, event, {"retry_count": Add(1)})
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
        {
            "status": "SKIPPED",
            "end_time": event.timestamp,
            "skip_reason": event.reason,
            "output_data": jsonb(event.outputs),
        },
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


@dataclass(frozen=True)
class Add:
    """`column = coalesce(column, 0) + amount`."""

    amount: Any


@dataclass(frozen=True)
class IfUnset:
    """`column = coalesce(column, value)`."""

    value: Any


@dataclass(frozen=True)
class IfStarted:
    """`column = value` if the node has a start time, else NULL."""

    value: Any


Changes = Mapping[str, Any]
"""New values by column (names from the code): a value, or `Add`, `IfUnset`, `IfStarted`."""


def _assignments(changes: Changes) -> tuple[str, list[Any]]:
    """The SQL of `changes` for an UPDATE's SET, with its values."""
    parts: list[str] = []
    values: list[Any] = []
    for column, change in changes.items():
        if isinstance(change, Add):
            parts.append(f"{column} = coalesce({column}, 0) + %s")
            values.append(change.amount)
        elif isinstance(change, IfUnset):
            parts.append(f"{column} = coalesce({column}, %s)")
            values.append(change.value)
        elif isinstance(change, IfStarted):
            parts.append(f"{column} = CASE WHEN start_time IS NULL THEN NULL ELSE %s END")
            values.append(change.value)
        else:
            parts.append(f"{column} = %s")
            values.append(change)
    return ", ".join(parts), values


def _change(row: dict[str, Any], changes: Changes) -> None:
    """`changes` applied to a row held in the page, as the UPDATE would (from the old values)."""
    old = dict(row)
    for column, change in changes.items():
        if isinstance(change, Add):
            row[column] = (old[column] or 0) + change.amount
        elif isinstance(change, IfUnset):
            row[column] = change.value if old[column] is None else old[column]
        elif isinstance(change, IfStarted):
            row[column] = None if old["start_time"] is None else change.value
        else:
            row[column] = change


_RUN_COLUMNS = (
    ("id", "text"),
    ("status", "execution_status"),
    ("trigger_data", "jsonb"),
    ("input_data", "jsonb"),
    ("priority", "integer"),
    ("parent_execution_id", "text"),
    ("context_data", "jsonb"),
    ("metadata", "jsonb"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("workflow_id", "text"),
    ("workflow_version", "integer"),
    ("user_id", "text"),
    ("trigger_id", "text"),
    ("mode", "text"),
    ("retry_of", "text"),
    ("revision", "integer"),
    ("start_time", "timestamptz"),
    ("end_time", "timestamptz"),
    ("duration", "integer"),
    ("output_data", "jsonb"),
    ("error_message", "text"),
    ("error_details", "jsonb"),
    ("retry_count", "integer"),
    ("worker_id", "text"),
)
_RUN_DEFAULTS: dict[str, Any] = {
    "start_time": None,
    "end_time": None,
    "duration": None,
    "output_data": None,
    "error_message": None,
    "error_details": None,
    "retry_count": 0,
    "worker_id": None,
}
"""The execution columns Queued leaves to their defaults (max_retries stays NULL)."""
_NODE_COLUMNS = (
    ("id", "text"),
    ("execution_id", "text"),
    ("node_id", "text"),
    ("node_name", "text"),
    ("node_type", "text"),
    ("sequence", "integer"),
    ("status", "node_execution_status"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("start_time", "timestamptz"),
    ("end_time", "timestamptz"),
    ("duration", "integer"),
    ("input_count", "integer"),
    ("output_data", "jsonb"),
    ("error_message", "text"),
    ("error_details", "jsonb"),
    ("attempt", "integer"),
    ("retry_count", "integer"),
    ("skip_reason", "text"),
)
_NODE_DEFAULTS: dict[str, Any] = {
    "start_time": None,
    "end_time": None,
    "duration": None,
    "input_count": None,
    "output_data": None,
    "error_message": None,
    "error_details": None,
    "attempt": 0,
    "retry_count": 0,
    "skip_reason": None,
}
_SETTLED = frozenset({"SUCCESS", "FAILED", "SKIPPED"})
_PAGE = "executions.page"


@dataclass
class _Page:
    """What a pipelined page holds back and writes set-based at its end (`_flush`): the runs
    Queued in it and the node rows of the runs Started in it, changed in place by the page's
    later events, and the newest stamp of the other runs that only events of their nodes
    touch. Every other change is a statement as it comes, so the page's rows end as the
    statements one by one would leave them."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    started: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The node rows of each run Started in the page (all of them are in `nodes`)."""
    stamps: dict[str, tuple[datetime, int]] = field(default_factory=dict)


def _page(cur: Cursor[Any]) -> _Page | None:
    """The page's held-back rows on a pipelined `PageCursor`; None: write as it comes."""
    return held(cur, _PAGE, _Page, _flush)


def _flush(cur: PageCursor, page: _Page) -> None:
    """Write what the page held back: its new runs, their node rows, the other runs' stamps."""
    insert_rows(
        cur, "execution", _RUN_COLUMNS, [_values(r, _RUN_COLUMNS) for r in page.runs.values()]
    )
    insert_rows(
        cur,
        "execution_node_state",
        _NODE_COLUMNS,
        [_values(r, _NODE_COLUMNS) for r in page.nodes.values()],
    )
    if page.stamps:
        ids = list(page.stamps)
        expect_rows(
            cur,
            "UPDATE execution e SET updated_at = v.at, revision = v.revision "
            "FROM unnest(%b::text[], %b::timestamptz[], %b::integer[]) AS v(id, at, revision) "
            "WHERE e.id = v.id",
            (ids, [at for at, _ in page.stamps.values()], [v for _, v in page.stamps.values()]),
            len(ids),
            f"one of the executions {', '.join(ids)} is not in the execution table",
        )
    page.runs.clear()
    page.nodes.clear()
    page.started.clear()
    page.stamps.clear()


def _values(row: Mapping[str, Any], columns: Columns) -> list[Any]:
    return [row[name] for name, _ in columns]


def _update_execution(cur: Cursor[Any], event: Any, changes: Changes | None = None) -> None:
    """Apply `changes` to the event's run and stamp it with the event's time and version."""
    execution_id = event.originator_id
    page = _page(cur)
    if page is not None:
        run = page.runs.get(execution_id)
        if run is not None:
            _change(run, {**(changes or {}), "updated_at": event.timestamp})
            run["revision"] = event.originator_version
            return
        if not changes:
            page.stamps[execution_id] = (event.timestamp, event.originator_version)
            return
        page.stamps.pop(execution_id, None)  # this update stamps it later still
    if changes:
        assignments, values = _assignments(changes)
        update_stamped(cur, "execution", event, assignments, *values)
    else:
        update_stamped(cur, "execution", event)


def _update_node(cur: Cursor[Any], event: Any, changes: Changes) -> str:
    """Apply `changes` to the event's node; returns the node's name for log lines."""
    page = _page(cur)
    row = None if page is None else page.nodes.get((event.originator_id, event.node_id))
    key = (event.originator_id, event.node_id)
    if row is not None:
        _change(row, {**changes, "updated_at": event.timestamp})
        # As coalesce(node_name, node_id) reads the stored row, whose text is cleaned.
        return clean_text(row["node_id"] if row["node_name"] is None else row["node_name"])
    assignments, values = _assignments(changes)
    query = (
        f"UPDATE execution_node_state SET {assignments}, updated_at = %s "
        "WHERE execution_id = %s AND node_id = %s"
    )
    params = (*values, event.timestamp, event.originator_id, event.node_id)
    missing = f"execution {event.originator_id} has no node {event.node_id!r}"
    name = _NAMES.get(key)
    if name is not None:  # no need to wait for the row to read it back
        expect_one(cur, query, params, missing)
        return name
    found = cur.execute(f"{query} RETURNING coalesce(node_name, node_id)", params).fetchone()
    if found is None:
        raise LookupError(missing)
    return str(found[0])


_NAMES: OrderedDict[tuple[str, str], str] = OrderedDict()
"""Node names for log lines by (execution, node), as the runs' Started events gave them (a
node row's name never changes): a node event of a run that started in an earlier page need not
read its row back. The `_MAX_NAMES` latest, enough for the runs under way: a name forgotten is
read back from its row. (A bound of 100,000 let a busy process grow by some 25 MB before it
cleared: benchmarks/memory.py.)"""
_MAX_NAMES = 8192


def _remember(execution_id: str, node_id: str, name: str | None) -> None:
    # As coalesce(node_name, node_id) reads the stored row, whose text is cleaned.
    _NAMES[(execution_id, node_id)] = clean_text(node_id if name is None else name)
    if len(_NAMES) > _MAX_NAMES:
        with contextlib.suppress(KeyError):  # a rebuild's thread may have taken it
            _NAMES.popitem(last=False)


def _update_unsettled_nodes(cur: Cursor[Any], event: Any, changes: Changes) -> None:
    page = _page(cur)
    held = None if page is None else page.started.get(event.originator_id)
    if held is not None:
        for row in held:
            if row["status"] not in _SETTLED:
                _change(row, {**changes, "updated_at": event.timestamp})
        return
    assignments, values = _assignments(changes)
    cur.execute(
        f"UPDATE execution_node_state SET {assignments}, updated_at = %s "
        "WHERE execution_id = %s AND status NOT IN ('SUCCESS', 'FAILED', 'SKIPPED')",
        (*values, event.timestamp, event.originator_id),
    )


def _derived_id(namespace: uuid.UUID, event: Any, seq: int) -> str:
    return _uuid5(namespace, f"{event.originator_id}/{event.originator_version}/{seq}")


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` without the UUID object: a third of the time, and a
    rebuild makes two ids an event (tests/unit/test_execution_ids.py holds them equal)."""
    digits = hashlib.sha1(namespace.bytes + name.encode()).hexdigest()  # noqa: S324 - RFC 9562
    # Version 5 in the 13th digit, the RFC's variant (binary 10xx) in the 17th.
    return (
        f"{digits[:8]}-{digits[8:12]}-5{digits[13:16]}-"
        f"{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:32]}"
    )


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
                sample.at or event.timestamp,
                event.originator_version,
                seq,
            )
            for seq, sample in enumerate(samples)
        ],
    )
