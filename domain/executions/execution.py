"""The Execution aggregate: one run of one workflow version, node by node.

An execution is queued by a trigger, claimed by a worker, and settles every node it reaches
(succeeded, failed, skipped) before it ends as SUCCESS, FAILED, CANCELLED or TIMEOUT. Node
results (their output items and log lines) are in the events, so a worker that takes over a run
whose worker died resumes from the nodes already settled instead of running them again, and an
auditor can replay exactly what each node produced.

Item fields and log lines (`payload_fields` of an event class, and each output handle's items
of its `payload_maps`) may be large; the event store keeps them in its payload store and the stored
event only a reference (version 2 of those events). Once retention has pruned a finished run's
payloads, such a value reads as a marker `{"pruned": true, "hash": ..., "size": ...}` instead of
its items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState
from domain.text import clean_json, clean_text

Item = dict[str, Any]
"""One JSON item: what flows between nodes (n8n style; `$json` is the item itself)."""

MIN_PRIORITY = -100
MAX_PRIORITY = 100
MAX_MESSAGE_LENGTH = 10_000
"""Longest log line, error message or reason kept in an event (longer ones are cut)."""


class ExecutionStatus(StrEnum):
    """The spec's execution_status: QUEUED until a worker claims it, then RUNNING until it ends."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"

    @property
    def is_final(self) -> bool:
        return self not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


class NodeStatus(StrEnum):
    """Where one node of a run is (execution_node_state.status)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def is_settled(self) -> bool:
        return self in (NodeStatus.SUCCESS, NodeStatus.FAILED, NodeStatus.SKIPPED)


class ExecutionMode(StrEnum):
    """What started the run."""

    MANUAL = "manual"  # POST /workflows/{id}/executions: the published version
    TEST = "test"  # a try-out of the latest draft
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    EVENT = "event"
    RETRY = "retry"  # POST /executions/{id}/retry
    SUBWORKFLOW = "subworkflow"  # an execute_workflow node of a parent run


@dataclass
class NodeRun:
    """What the aggregate knows of one node of the run."""

    node_id: str
    status: NodeStatus = NodeStatus.PENDING
    attempt: int = 0
    outputs: dict[str, list[Item]] = field(default_factory=dict)
    error: dict[str, Any] | None = None


def _inline_is_v2(state: dict[str, Any]) -> None:
    """Version 1 of an event with payload fields always held them inline, which version 2
    (inline, or a reference to the payload store) allows as they are."""


class Execution(Aggregate):
    """One run of a workflow version."""

    class Queued(Aggregate.Created):
        class_version = 2
        payload_fields: ClassVar[tuple[str, ...]] = ("trigger_data", "input_items")
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        workflow_id: str
        workflow_version: int
        user_id: str
        mode: str
        start_node_id: str
        trigger_id: str | None
        trigger_data: dict[str, Any]
        input_items: list[Item]
        priority: int
        parent_execution_id: str | None
        retry_of: str | None

    class Started(Aggregate.Event):
        """A worker claimed the run; `nodes` are the nodes it may reach, in definition order."""

        worker_id: str
        nodes: list[dict[str, str]]

    class Resumed(Aggregate.Event):
        """Another worker took over a run whose worker stopped answering."""

        worker_id: str
        previous_worker_id: str

    class NodeStarted(Aggregate.Event):
        node_id: str
        attempt: int
        input_count: int

    class NodeSucceeded(Aggregate.Event):
        """The attempt succeeded. `input_count` is set when this event records the attempt's
        start too (it started and ended with no save between, so no NodeStarted precedes
        it): it started `duration_ms` before this event's timestamp with that many items in.
        Version 3 added it; the events before it always followed their NodeStarted."""

        class_version = 3
        payload_fields: ClassVar[tuple[str, ...]] = ("logs",)
        payload_maps: ClassVar[tuple[str, ...]] = ("outputs",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["input_count"] = None

        node_id: str
        attempt: int
        outputs: dict[str, list[Item]]
        duration_ms: int
        logs: list[dict[str, str]]
        input_count: int | None

    class NodeFailed(Aggregate.Event):
        class_version = 2
        payload_fields: ClassVar[tuple[str, ...]] = ("logs",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        node_id: str
        attempt: int
        error: dict[str, Any]
        duration_ms: int
        logs: list[dict[str, str]]

    class NodeRetrying(Aggregate.Event):
        """Attempt `attempt` failed with a retryable error; the next starts after `delay_ms`."""

        class_version = 2
        payload_fields: ClassVar[tuple[str, ...]] = ("logs",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        node_id: str
        attempt: int
        delay_ms: int
        error: dict[str, Any]
        duration_ms: int
        logs: list[dict[str, str]]

    class NodeSkipped(Aggregate.Event):
        """The node did not run: no items reached it, or it is disabled and passes its input
        items through unchanged (`outputs`)."""

        class_version = 2
        payload_maps: ClassVar[tuple[str, ...]] = ("outputs",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        node_id: str
        reason: str
        outputs: dict[str, list[Item]]

    class NodeItemsEmitted(Aggregate.Event):
        """A STREAM node sent these items on before it finished (its NodeSucceeded still
        carries all of them): what live progress shows as they come."""

        node_id: str
        attempt: int
        items: list[Item]

    class Responded(Aggregate.Event):
        """A respond_to_webhook node chose the answer to the webhook request that started
        the run (only the first such answer counts)."""

        class_version = 2
        payload_fields: ClassVar[tuple[str, ...]] = ("body",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        node_id: str
        status: int
        headers: dict[str, str]
        body: Any

    class Succeeded(Aggregate.Event):
        class_version = 2
        payload_fields: ClassVar[tuple[str, ...]] = ("output_items",)
        upcast_v1_v2 = staticmethod(_inline_is_v2)

        output_items: list[Item]
        duration_ms: int

    class Failed(Aggregate.Event):
        error_message: str
        error_details: dict[str, Any]
        duration_ms: int

    class Cancelled(Aggregate.Event):
        reason: str
        duration_ms: int | None

    class TimedOut(Aggregate.Event):
        timeout_ms: int
        duration_ms: int

    @event(Queued)
    def __init__(
        self,
        workflow_id: str,
        workflow_version: int,
        user_id: str,
        mode: str,
        start_node_id: str,
        trigger_id: str | None,
        trigger_data: dict[str, Any],
        input_items: list[Item],
        priority: int,
        parent_execution_id: str | None,
        retry_of: str | None,
    ) -> None:
        self.workflow_id = workflow_id
        self.workflow_version = workflow_version
        self.user_id = user_id
        self.mode = ExecutionMode(mode)
        self.start_node_id = start_node_id
        self.trigger_id = trigger_id
        self.trigger_data = trigger_data
        self.input_items = input_items
        self.priority = priority
        self.parent_execution_id = parent_execution_id
        self.retry_of = retry_of
        self.status = ExecutionStatus.QUEUED
        self.worker_id: str | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.nodes: dict[str, NodeRun] = {}
        self.output_items: list[Item] = []
        self.error_message: str | None = None
        self.response: dict[str, Any] | None = None

    @classmethod
    def queue(
        cls,
        *,
        execution_id: str,
        workflow_id: str,
        workflow_version: int,
        user_id: str,
        mode: ExecutionMode,
        start_node_id: str,
        input_items: list[Item],
        trigger_id: str | None = None,
        trigger_data: Mapping[str, Any] | None = None,
        priority: int = 0,
        parent_execution_id: str | None = None,
        retry_of: str | None = None,
    ) -> Execution:
        """A new run waiting for a worker. Checking the input (items are JSON objects, sizes)
        is the caller's job: this records what it was given, made storable (`clean_json`)."""
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidState(f"priority must be from {MIN_PRIORITY} to {MAX_PRIORITY}")
        return cls._create(
            cls.Queued,
            id=execution_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            user_id=user_id,
            mode=str(mode),
            start_node_id=start_node_id,
            trigger_id=trigger_id,
            trigger_data=clean_json(dict(trigger_data or {})),
            input_items=_items(input_items),
            priority=priority,
            parent_execution_id=parent_execution_id,
            retry_of=retry_of,
        )

    # -- the run ------------------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    @property
    def never_saved(self) -> bool:
        """Its Queued event is still pending: nothing of the run is stored yet (a webhook's
        lastNode run is saved with its first checkpoint)."""
        return any(isinstance(e, Execution.Queued) for e in self.pending_events)

    def start(self, worker_id: str, nodes: list[dict[str, str]]) -> None:
        """Claim a queued run for `worker_id`; `nodes` ({id, name, type}) it may reach."""
        if self.status is not ExecutionStatus.QUEUED:
            raise InvalidState(f"the execution is {self.status}, not QUEUED")
        self._started(worker_id=worker_id, nodes=nodes)

    def resume(self, worker_id: str) -> None:
        """Take over a RUNNING run: nodes that were running start again from scratch."""
        self._refuse_unless_running()
        self._resumed(worker_id=worker_id, previous_worker_id=self.worker_id or "")

    def node_started(self, node_id: str, input_count: int, at: datetime | None = None) -> int:
        """Record the next attempt of `node_id`, begun `at` (now if not given); returns its
        number (1 for the first)."""
        attempt = self._next_attempt(node_id)
        self._node_started(node_id=node_id, attempt=attempt, input_count=input_count, timestamp=at)
        return attempt

    def node_succeeded(
        self,
        node_id: str,
        outputs: dict[str, list[Item]],
        duration_ms: int,
        logs: list[dict[str, str]],
    ) -> None:
        run = self._running_node(node_id)
        self._node_succeeded(
            node_id=node_id,
            attempt=run.attempt,
            outputs=_outputs(outputs),
            duration_ms=duration_ms,
            logs=_logs(logs),
            input_count=None,
        )

    def node_started_and_succeeded(
        self,
        node_id: str,
        input_count: int,
        outputs: dict[str, list[Item]],
        duration_ms: int,
        logs: list[dict[str, str]],
    ) -> int:
        """Record the next attempt of `node_id` as begun and succeeded in one event: for an
        attempt that ended before anything saved its start, one fact instead of two. Returns
        the attempt's number."""
        attempt = self._next_attempt(node_id)
        self._node_succeeded(
            node_id=node_id,
            attempt=attempt,
            outputs=_outputs(outputs),
            duration_ms=duration_ms,
            logs=_logs(logs),
            input_count=input_count,
        )
        return attempt

    def node_failed(
        self, node_id: str, error: dict[str, Any], duration_ms: int, logs: list[dict[str, str]]
    ) -> None:
        run = self._running_node(node_id)
        self._node_failed(
            node_id=node_id,
            attempt=run.attempt,
            error=_details(error),
            duration_ms=duration_ms,
            logs=_logs(logs),
        )

    def node_retrying(
        self,
        node_id: str,
        delay_ms: int,
        error: dict[str, Any],
        duration_ms: int,
        logs: list[dict[str, str]],
    ) -> None:
        run = self._running_node(node_id)
        self._node_retrying(
            node_id=node_id,
            attempt=run.attempt,
            delay_ms=delay_ms,
            error=_details(error),
            duration_ms=duration_ms,
            logs=_logs(logs),
        )

    def node_skipped(
        self, node_id: str, reason: str, outputs: dict[str, list[Item]] | None = None
    ) -> None:
        self._open_node(node_id)
        self._node_skipped(
            node_id=node_id, reason=_message(reason), outputs=_outputs(outputs or {})
        )

    def node_items_emitted(self, node_id: str, items: list[Item]) -> None:
        """Record items a running node streamed out so far."""
        run = self._running_node(node_id)
        self._node_items_emitted(node_id=node_id, attempt=run.attempt, items=_items(items))

    def respond(self, node_id: str, status: int, headers: dict[str, str], body: Any) -> bool:
        """Record the webhook answer a node chose; False (nothing recorded) when the run
        already has one."""
        self._refuse_unless_running()
        if self.response is not None:
            return False
        self._responded(
            node_id=node_id, status=status, headers=clean_json(headers), body=clean_json(body)
        )
        return True

    def succeed(self, output_items: list[Item], duration_ms: int) -> None:
        self._refuse_unless_running()
        unsettled = [n for n, run in self.nodes.items() if not run.status.is_settled]
        if unsettled:
            raise InvalidState(f"nodes {', '.join(unsettled)} have not finished")
        self._succeeded(output_items=_items(output_items), duration_ms=duration_ms)

    def fail(self, error_message: str, error_details: dict[str, Any], duration_ms: int) -> None:
        self._refuse_unless_running()
        self._failed(
            error_message=_message(error_message),
            error_details=_details(error_details),
            duration_ms=duration_ms,
        )

    def time_out(self, timeout_ms: int, duration_ms: int) -> None:
        self._refuse_unless_running()
        self._timed_out(timeout_ms=timeout_ms, duration_ms=duration_ms)

    def cancel(self, reason: str, duration_ms: int | None) -> None:
        """Stop the run, queued or running; the worker notices at its next save."""
        if self.is_final:
            raise InvalidState(f"the execution already ended: {self.status}")
        self._cancelled(reason=_message(reason), duration_ms=duration_ms)

    def node_outputs(self) -> dict[str, dict[str, list[Item]]]:
        """The outputs of every settled node, by node id (a skipped node has none, or its
        input items when it is disabled)."""
        return {
            node_id: run.outputs for node_id, run in self.nodes.items() if run.status.is_settled
        }

    # -- rules --------------------------------------------------------------------------------

    def _refuse_unless_running(self) -> None:
        if self.status is not ExecutionStatus.RUNNING:
            raise InvalidState(f"the execution is {self.status}, not RUNNING")

    def _open_node(self, node_id: str) -> NodeRun:
        """A node of this run that has not settled yet."""
        self._refuse_unless_running()
        run = self.nodes.get(node_id)
        if run is None:
            raise InvalidState(f"node {node_id!r} is not part of this run")
        if run.status.is_settled:
            raise InvalidState(f"node {node_id!r} already finished: {run.status}")
        return run

    def _next_attempt(self, node_id: str) -> int:
        """The number of the attempt that may start now (the node is not running)."""
        run = self._open_node(node_id)
        if run.status is NodeStatus.RUNNING:
            raise InvalidState(f"node {node_id!r} is already running")
        return run.attempt + 1

    def _running_node(self, node_id: str) -> NodeRun:
        run = self._open_node(node_id)
        if run.status is not NodeStatus.RUNNING:
            raise InvalidState(f"node {node_id!r} is {run.status}, not RUNNING")
        return run

    # -- state changes (re-run on replay: no rules, no I/O) ------------------------------------

    @event(Started)
    def _started(
        self, worker_id: str, nodes: list[dict[str, str]], timestamp: datetime | None = None
    ) -> None:
        self.status = ExecutionStatus.RUNNING
        self.worker_id = worker_id
        self.started_at = timestamp
        self.nodes = {node["id"]: NodeRun(node["id"]) for node in nodes}

    @event(Resumed)
    def _resumed(self, worker_id: str, previous_worker_id: str) -> None:
        self.worker_id = worker_id
        for run in self.nodes.values():
            if not run.status.is_settled:
                run.status = NodeStatus.PENDING

    @event(NodeStarted)
    def _node_started(
        self, node_id: str, attempt: int, input_count: int, timestamp: datetime | None = None
    ) -> None:
        run = self.nodes[node_id]
        run.status = NodeStatus.RUNNING
        run.attempt = attempt

    @event(NodeSucceeded)
    def _node_succeeded(
        self,
        node_id: str,
        attempt: int,
        outputs: dict[str, list[Item]],
        duration_ms: int,
        logs: list[dict[str, str]],
        input_count: int | None,
    ) -> None:
        run = self.nodes[node_id]
        run.status = NodeStatus.SUCCESS
        run.attempt = attempt
        run.outputs = outputs

    @event(NodeFailed)
    def _node_failed(
        self,
        node_id: str,
        attempt: int,
        error: dict[str, Any],
        duration_ms: int,
        logs: list[dict[str, str]],
    ) -> None:
        run = self.nodes[node_id]
        run.status = NodeStatus.FAILED
        run.error = error

    @event(NodeRetrying)
    def _node_retrying(
        self,
        node_id: str,
        attempt: int,
        delay_ms: int,
        error: dict[str, Any],
        duration_ms: int,
        logs: list[dict[str, str]],
    ) -> None:
        self.nodes[node_id].status = NodeStatus.RETRYING

    @event(NodeSkipped)
    def _node_skipped(self, node_id: str, reason: str, outputs: dict[str, list[Item]]) -> None:
        run = self.nodes[node_id]
        run.status = NodeStatus.SKIPPED
        run.outputs = outputs

    @event(NodeItemsEmitted)
    def _node_items_emitted(self, node_id: str, attempt: int, items: list[Item]) -> None:
        pass  # progress only: the node's outputs are recorded when it succeeds

    @event(Responded)
    def _responded(self, node_id: str, status: int, headers: dict[str, str], body: Any) -> None:
        self.response = {"nodeId": node_id, "status": status, "headers": headers, "body": body}

    @event(Succeeded)
    def _succeeded(
        self, output_items: list[Item], duration_ms: int, timestamp: datetime | None = None
    ) -> None:
        self.status = ExecutionStatus.SUCCESS
        self.output_items = output_items
        self.ended_at = timestamp

    @event(Failed)
    def _failed(
        self,
        error_message: str,
        error_details: dict[str, Any],
        duration_ms: int,
        timestamp: datetime | None = None,
    ) -> None:
        self.status = ExecutionStatus.FAILED
        self.error_message = error_message
        self._end(timestamp)

    @event(TimedOut)
    def _timed_out(
        self, timeout_ms: int, duration_ms: int, timestamp: datetime | None = None
    ) -> None:
        self.status = ExecutionStatus.TIMEOUT
        self.error_message = timeout_message(timeout_ms)
        self._end(timestamp)

    @event(Cancelled)
    def _cancelled(
        self, reason: str, duration_ms: int | None, timestamp: datetime | None = None
    ) -> None:
        self.status = ExecutionStatus.CANCELLED
        self.error_message = reason
        self._end(timestamp)

    def _end(self, timestamp: datetime | None) -> None:
        """A run that ends early stops the nodes still going: they end CANCELLED."""
        self.ended_at = timestamp
        for run in self.nodes.values():
            if not run.status.is_settled:
                run.status = NodeStatus.CANCELLED


def _message(text: str) -> str:
    return clean_text(text, MAX_MESSAGE_LENGTH)


def _items(items: list[Item]) -> list[Item]:
    """Items as stored: each made storable on its own, so nesting is counted from the item."""
    cleaned = [clean_json(item) for item in items]
    return items if all(a is b for a, b in zip(cleaned, items, strict=True)) else cleaned


def _outputs(outputs: dict[str, list[Item]]) -> dict[str, list[Item]]:
    return {clean_text(handle): _items(items) for handle, items in outputs.items()}


def _details(details: dict[str, Any]) -> dict[str, Any]:
    """An error or its details: storable, with its `message` cut like any message."""
    cleaned: dict[str, Any] = clean_json(details, max_string=MAX_MESSAGE_LENGTH)
    return cleaned


def _logs(logs: list[dict[str, str]]) -> list[dict[str, str]]:
    """Log lines as stored: each field storable and at most MAX_MESSAGE_LENGTH long."""
    return [clean_json(line, max_string=MAX_MESSAGE_LENGTH) for line in logs]


FINAL_EVENTS: dict[type[Aggregate.Event], ExecutionStatus] = {
    Execution.Succeeded: ExecutionStatus.SUCCESS,
    Execution.Failed: ExecutionStatus.FAILED,
    Execution.Cancelled: ExecutionStatus.CANCELLED,
    Execution.TimedOut: ExecutionStatus.TIMEOUT,
}
"""The events that end a run (nothing follows them), and the status each leaves it in."""


def timeout_message(timeout_ms: int) -> str:
    return f"the execution took longer than its timeout of {timeout_ms} ms"


def ending_error(event: Aggregate.Event) -> dict[str, Any] | None:
    """What went wrong, as a final event says (None for Succeeded): `message`, and for a
    failed node `nodeId` and `nodeName`."""
    if isinstance(event, Execution.Failed):
        return {**event.error_details, "message": event.error_message}
    if isinstance(event, Execution.TimedOut):
        return {"message": timeout_message(event.timeout_ms)}
    if isinstance(event, Execution.Cancelled):
        return {"message": event.reason}
    return None
