"""The execution engine: runs one queued execution to its end.

A worker claims the execution (`Started`, or `Resumed` when it takes over from a worker that
died), then walks the run graph: every node whose inputs are settled starts at once, so
independent branches run in parallel as asyncio tasks. Only this loop touches the aggregate;
node tasks return outcomes. Events are saved at checkpoints, many per save, because each save
takes the executions log's write lock: when the run ends, when a respond_to_webhook node chose
the answer, and otherwise once events have waited `checkpoint_seconds` unsaved. So a run of fast
nodes is claimed, run and ended in one save, and a slow node is on record as started shortly
after it began. A node's start is recorded only when something must follow it on record (a
save, or another event); an attempt that succeeds before then is one NodeSucceeded carrying its
start, instead of a NodeStarted and a NodeSucceeded: each event is a row in the store, in
audit_log and in every projection that follows the log. A worker that dies loses what it had
not saved: the run is resumed (or started afresh) from the last checkpoint, and the nodes it had
settled since run again.

Someone else writing to the execution (a cancel command, another worker resuming it) makes the
next save conflict, and a heartbeat compares the stored revision every second so a long node is
stopped promptly too: the run then stops here without writing anything more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import structlog
from anyio import to_thread
from eventsourcing.persistence import IntegrityError

from application.credentials.vault import CredentialVault
from application.crypto import DecryptionFailed
from application.errors import Forbidden, NotFound
from application.eventstore import EventMetadata
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.nodes.base import (
    DeclaresOutputs,
    NodeCall,
    NodeFailure,
    NodeResult,
    NodeRuntime,
    RuntimeLimits,
)
from application.logs import redact_text
from domain.credentials.credential import CredentialUnavailable
from domain.errors import InvalidState, ValidationFailed
from domain.executions.execution import Execution, ExecutionStatus, Item, NodeStatus
from domain.executions.graph import RunGraph, pass_through

log = structlog.get_logger(__name__)

Definitions = Callable[[str, int], dict[str, Any]]
"""(workflow id, version) -> that version's definition."""


@dataclass(frozen=True)
class WorkerServices:
    """What a worker lends its node runs: one HTTP client, the limits, and the execution use
    cases (an execute_workflow node starts a child run)."""

    http: httpx.AsyncClient
    limits: RuntimeLimits
    executions: ExecutionService
    credentials: CredentialVault


@dataclass(frozen=True)
class EngineLimits:
    """Bounds on one run, from settings; a definition's own settings may only lower them."""

    execution_timeout_ms: int = 3_600_000
    node_output_bytes: int = 1024 * 1024
    max_retries: int = 10
    max_retry_delay_ms: int = 5 * 60_000
    heartbeat_seconds: float = 1.0
    checkpoint_seconds: float = 0.1
    """Longest a run's events wait unsaved while its nodes work (see the module's docstring)."""


@dataclass(frozen=True)
class RetryPolicy:
    """A definition's `settings.retryPolicy`: retryable node failures are tried again after
    `delay_ms * 2^(attempt-1)`, with jitter, at most `max_retries` times."""

    max_retries: int = 0
    delay_ms: int = 1000

    @classmethod
    def of(cls, settings: Mapping[str, Any], limits: EngineLimits) -> RetryPolicy:
        policy = settings.get("retryPolicy")
        if not isinstance(policy, Mapping) or policy.get("enabled") is not True:
            return cls()
        retries = policy.get("maxRetries", 3)
        delay = policy.get("retryDelay", 1000)
        return cls(
            max_retries=min(retries, limits.max_retries) if isinstance(retries, int) else 3,
            delay_ms=delay if isinstance(delay, int) and delay >= 0 else 1000,
        )

    def delay_before(self, attempt: int, limits: EngineLimits) -> int:
        """Milliseconds to wait before attempt `attempt + 1`: exponential, jittered ±50%."""
        base = min(self.delay_ms * 2 ** (attempt - 1), limits.max_retry_delay_ms)
        return int(base * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class _Start:
    """An attempt under way that no event records yet (see `_Run.record_starts`)."""

    input_count: int
    at: datetime


@dataclass
class Outcome:
    """What one node task came back with."""

    node_id: str
    result: NodeResult | None = None
    failure: NodeFailure | None = None
    duration_ms: int = 0
    retry_ready: bool = False  # a retry's back-off is over; start the next attempt


class RunStopped(Exception):
    """Someone else wrote to the execution: it was cancelled or another worker took over."""


@dataclass
class Engine:
    """Runs executions; one instance per worker process, shared by its concurrent runs."""

    app: ExecutionsApp
    definitions: Definitions
    runtimes: Mapping[str, NodeRuntime]
    services: WorkerServices
    worker_id: str
    limits: EngineLimits = field(default_factory=EngineLimits)

    async def run(
        self, given: Execution | str, definition: dict[str, Any] | None = None
    ) -> Execution:
        """Run the execution to its end (or until someone else takes it); return it. Given the
        aggregate itself (as saved by this process a moment ago, or not saved yet: its Queued
        then goes with the first checkpoint), it is run without reading its events again, and
        given its version's definition too, without a thread hop to look that up; given an id,
        it is loaded.

        A run that cannot even start (its start node is gone) or that hits a bug of the engine
        ends FAILED with the reason, rather than being handed from worker to worker forever."""
        if isinstance(given, str) or definition is None:
            execution, definition = await to_thread.run_sync(self._load, given)
        else:
            execution = given
        execution_id = execution.id
        if definition is None:
            return execution
        disabled: dict[str, tuple[str, ...]] = {}
        if any(n.get("disabled") is True for n in definition.get("nodes", [])):
            disabled = await to_thread.run_sync(self._disabled_handles, definition)
        try:
            graph = RunGraph.of(definition, execution.start_node_id)
        except InvalidState as refused:
            return await self._give_up(execution, f"the run cannot start: {refused}")
        if execution.nodes:
            execution.resume(self.worker_id)
        else:
            execution.start(self.worker_id, graph.node_list())
        run = _Run(self, execution, graph, definition, disabled)
        try:
            await run.go()
        except RunStopped:
            log.info("execution.stopped", execution_id=execution_id, worker_id=self.worker_id)
        except Exception as bug:  # a bug here must end the run, not bounce it between workers
            log.exception("execution.engine_failed", execution_id=execution_id)
            return await self._give_up(execution, f"the engine failed: {type(bug).__name__}")
        return run.execution

    def _load(self, given: Execution | str) -> tuple[Execution, dict[str, Any] | None]:
        """The execution (loaded when given its id), and the definition it runs unless it has
        ended (one thread hop). A run loaded here was queued by another process (`a2n serve`):
        its origin is kept for this process's managers, which ask for it when the run ends."""
        if isinstance(given, str):
            execution = self.app.load(given, Execution)
            self.services.executions.keep_origin(execution.id, execution)
        else:
            execution = given
        if execution.is_final:
            return execution, None
        return execution, self.definitions(execution.workflow_id, execution.workflow_version)

    def _disabled_handles(self, definition: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        """The output handles of the disabled nodes whose runtime alone knows them (custom
        types), so that they pass their items on where the workflow expects them."""
        found: dict[str, tuple[str, ...]] = {}
        for node in definition.get("nodes", []):
            runtime: object = self.runtimes.get(str(node.get("type")))
            if node.get("disabled") is True and isinstance(runtime, DeclaresOutputs):
                found[str(node["id"])] = runtime.output_handles()
        return found

    async def _give_up(self, execution: Execution, reason: str) -> Execution:
        """End the execution FAILED with `reason` (claiming it first if it is queued): the
        stored one, or this one as it is when it was never saved (its Queued still pending)."""

        def fail(execution: Execution) -> None:
            if execution.is_final:
                return
            if not execution.nodes:
                execution.start(self.worker_id, [])
            execution.fail(reason, {"reason": reason}, 0)

        meta = EventMetadata(actor_id="system", causation_id=execution.id)
        if execution.never_saved:
            fail(execution)
            await to_thread.run_sync(self.app.record, meta, execution)
            return execution
        recorded = await to_thread.run_sync(self.app.change, execution.id, Execution, fail, meta)
        return recorded.aggregate


@dataclass
class _Run:
    """One execution being run by this worker."""

    engine: Engine
    execution: Execution
    graph: RunGraph
    definition: Mapping[str, Any]
    disabled_handles: Mapping[str, tuple[str, ...]]
    """Output handles of disabled custom nodes (see `Engine._disabled_handles`)."""
    tasks: dict[str, asyncio.Task[Outcome]] = field(default_factory=dict)
    unrecorded: dict[str, _Start] = field(default_factory=dict)
    """Attempts begun here whose NodeStarted is not recorded yet, in the order they began."""

    def __post_init__(self) -> None:
        settings = self.definition.get("settings", {})
        limits = self.engine.limits
        self.retry = RetryPolicy.of(settings, limits)
        timeout = settings.get("timeout")
        self.timeout_ms = (
            min(timeout, limits.execution_timeout_ms)
            if isinstance(timeout, int) and timeout > 0
            else limits.execution_timeout_ms
        )
        self.began = self.checked_at = time.monotonic()
        """When the stored run was last known to be this one's (saved, or checked)."""
        self.unsaved_since: float | None = None
        """Since when events have waited to be saved."""
        self.names = self.graph.names()

    # -- the loop -----------------------------------------------------------------------------

    async def go(self) -> None:
        deadline = self.began + self.timeout_ms / 1000
        try:
            while True:
                failed = self._failed_node()
                if failed is not None:
                    await self._end_failed(failed)
                    return
                self._start_ready_nodes()
                if not self.tasks:
                    self.execution.succeed(self.graph.result(self._outputs()), self._elapsed())
                    await self.save()
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.record_starts()
                    self.execution.time_out(self.timeout_ms, self._elapsed())
                    await self.save()
                    return
                done, _ = await asyncio.wait(
                    self.tasks.values(),
                    timeout=min(remaining, await self._checkpoint()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    self._settle(task.result())
        finally:
            for task in self.tasks.values():
                task.cancel()

    def _start_ready_nodes(self) -> None:
        """Start every node that may run; skip those no items reach (and so, in turn, what
        only they feed)."""
        while True:
            ready = self.graph.ready(self._statuses())
            if not ready:
                return
            for node_id in ready:
                node = self.graph.nodes[node_id]
                inputs = self.graph.inputs_of(node_id, self._outputs(), self.execution.input_items)
                count = sum(len(items) for items in inputs.values())
                if node.get("disabled") is True:
                    handles = self.disabled_handles.get(node_id, ())
                    passed = pass_through(node, inputs, handles)
                    self.record_starts()
                    self.execution.node_skipped(node_id, "disabled", passed)
                elif count == 0 and node_id != self.graph.start_node_id:
                    self.record_starts()
                    self.execution.node_skipped(node_id, "no input items")
                else:
                    self._begin(node_id, inputs)

    def _begin(self, node_id: str, inputs: dict[str, list[Item]]) -> None:
        """Start the node's next attempt; its start goes on record later (`record_starts`)."""
        count = sum(len(items) for items in inputs.values())
        self.unrecorded[node_id] = _Start(count, datetime.now(UTC))
        if self.unsaved_since is None:
            self.unsaved_since = time.monotonic()
        self.tasks[node_id] = asyncio.create_task(self._attempt(node_id, inputs))

    def record_starts(self, but: str | None = None) -> None:
        """Put the attempts under way on record (NodeStarted at the time each began), all but
        `but`'s: before any other event, so the run's events stay in the order things
        happened, and before a save, so a stored run shows what it is doing."""
        for node_id, start in list(self.unrecorded.items()):
            if node_id != but:
                del self.unrecorded[node_id]
                self.execution.node_started(node_id, start.input_count, at=start.at)

    def _settle(self, outcome: Outcome) -> None:
        node_id = outcome.node_id
        del self.tasks[node_id]
        if outcome.retry_ready:
            inputs = self.graph.inputs_of(node_id, self._outputs(), self.execution.input_items)
            self._begin(node_id, inputs)
            return
        if outcome.result is not None:
            result = outcome.result
            self.record_starts(but=node_id)
            start = self.unrecorded.pop(node_id, None)
            if start is None:
                self.execution.node_succeeded(
                    node_id, result.outputs, outcome.duration_ms, _log_dicts(result)
                )
            else:
                self.execution.node_started_and_succeeded(
                    node_id,
                    start.input_count,
                    result.outputs,
                    outcome.duration_ms,
                    _log_dicts(result),
                )
            if result.response is not None:
                answer = result.response
                self.execution.respond(node_id, answer.status, answer.headers, answer.body)
            return
        failure = outcome.failure or NodeFailure("the node stopped without a result")
        error = _error_dict(failure)
        self.record_starts()
        attempt = self.execution.nodes[node_id].attempt
        if failure.retryable and attempt <= self.retry.max_retries:
            delay = self.retry.delay_before(attempt, self.engine.limits)
            self.execution.node_retrying(node_id, delay, error, outcome.duration_ms, [])
            self.tasks[node_id] = asyncio.create_task(_after(delay, node_id))
            return
        self.execution.node_failed(node_id, error, outcome.duration_ms, [])

    def _failed_node(self) -> str | None:
        for node_id, run in self.execution.nodes.items():
            if run.status is NodeStatus.FAILED:
                return node_id
        return None

    async def _end_failed(self, node_id: str) -> None:
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()
        self.record_starts()
        name = self.names.get(node_id, node_id)
        message = str((self.execution.nodes[node_id].error or {}).get("message", "failed"))
        self.execution.fail(
            f"node {name!r} failed: {message}",
            {"nodeId": node_id, "nodeName": name, "message": message},
            self._elapsed(),
        )
        await self.save()

    # -- one node -----------------------------------------------------------------------------

    async def _attempt(self, node_id: str, inputs: dict[str, list[Item]]) -> Outcome:
        node = self.graph.nodes[node_id]
        runtime = self.engine.runtimes.get(str(node["type"]))
        began = time.monotonic()
        if runtime is None:
            missing = NodeFailure(f"no runtime for node type {node['type']!r} on this worker")
            return Outcome(node_id, failure=missing)
        call = NodeCall(
            node=node,
            inputs=inputs,
            execution={
                "id": self.execution.id,
                "mode": str(self.execution.mode),
                "workflowId": self.execution.workflow_id,
                "workflowVersion": self.execution.workflow_version,
            },
            variables=_variables(self.definition),
            node_items=self._items_by_name(),
            now=datetime.now(UTC).isoformat(),
            services=_RunServices(self),
        )
        try:
            result = await runtime.run(call)
            self._check_size(result)
        except NodeFailure as refused:
            return Outcome(node_id, failure=refused, duration_ms=_since(began))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a node runtime must not kill the worker
            log.exception("node.crashed", node_type=node["type"], execution_id=self.execution.id)
            crashed = NodeFailure(redact_text(f"the node crashed: {type(exc).__name__}: {exc}"))
            return Outcome(node_id, failure=crashed, duration_ms=_since(began))
        return Outcome(node_id, result=result, duration_ms=_since(began))

    def _check_size(self, result: NodeResult) -> None:
        size = len(json.dumps(result.outputs, separators=(",", ":"), default=str))
        limit = self.engine.limits.node_output_bytes
        if size > limit:
            raise NodeFailure(f"the node's output is {size} bytes of JSON; the limit is {limit}")

    # -- state ----------------------------------------------------------------------------------

    def _statuses(self) -> dict[str, NodeStatus]:
        """Each node's status, the attempts under way here RUNNING though not yet on record."""
        running = dict.fromkeys(self.unrecorded, NodeStatus.RUNNING)
        return {node_id: run.status for node_id, run in self.execution.nodes.items()} | running

    def _outputs(self) -> dict[str, dict[str, list[Item]]]:
        return self.execution.node_outputs()

    def _items_by_name(self) -> dict[str, list[Item]]:
        """Each settled node's items, by the name expressions use (`$node["Name"]`)."""
        return {
            self.names.get(node_id, node_id): [i for items in outputs.values() for i in items]
            for node_id, outputs in self._outputs().items()
        }

    def _elapsed(self) -> int:
        return _since(self.began)

    async def _checkpoint(self) -> float:
        """Save the pending events once they have waited `checkpoint_seconds` unsaved (at once
        when they hold the webhook's answer); with nothing pending, check every
        `heartbeat_seconds` that nobody else wrote. Return how long to wait for the nodes under
        way before the next checkpoint."""
        limits = self.engine.limits
        now = time.monotonic()
        pending = self.execution.pending_events
        if pending or self.unrecorded:
            if self.unsaved_since is None:
                self.unsaved_since = now
            due = self.unsaved_since + limits.checkpoint_seconds
            if now >= due or any(isinstance(e, Execution.Responded) for e in pending):
                await self.save()
                return limits.heartbeat_seconds
            return due - now
        due = self.checked_at + limits.heartbeat_seconds
        if now >= due:
            await self._heartbeat()
            return limits.heartbeat_seconds
        return due - now

    async def save(self) -> None:
        """Save the pending events, or stop if someone else wrote first."""
        self.record_starts()
        if not self.execution.pending_events:
            return
        meta = EventMetadata(actor_id=self.execution.user_id, causation_id=self.execution.id)
        try:
            await to_thread.run_sync(self.engine.app.record, meta, self.execution)
        except IntegrityError:
            raise RunStopped(self.execution.id) from None
        self.unsaved_since = None
        self.checked_at = time.monotonic()

    async def _heartbeat(self) -> None:
        """Stop promptly when the stored execution moved on without us (cancelled, resumed)."""
        revision = await to_thread.run_sync(self.engine.app.revision, self.execution.id)
        if revision != self.execution.version:
            raise RunStopped(self.execution.id)
        self.checked_at = time.monotonic()


class _RunServices:
    """The NodeServices of one run: the worker's, with sub-workflows started as its children."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._worker = run.engine.services

    @property
    def http(self) -> httpx.AsyncClient:
        return self._worker.http

    @property
    def limits(self) -> RuntimeLimits:
        return self._worker.limits

    def emit(self, node_id: str, items: list[Item]) -> None:
        """Record items a STREAM node sent on so far; saved at the next checkpoint, so live
        progress shows them within a heartbeat. Synchronous on the loop's own thread, so it
        never interleaves with the loop's changes (the one change a node task makes)."""
        with contextlib.suppress(InvalidState):  # the run ended under the node
            self._run.record_starts()
            self._run.execution.node_items_emitted(node_id, items)

    async def run_workflow(self, workflow_id: str, items: list[Item], *, wait: bool) -> list[Item]:
        """Start the sub-workflow; with `wait`, run it here and now (a parent holding a worker
        slot must not wait for a queue the busy workers drain) and return its result."""
        try:
            child = await to_thread.run_sync(
                partial(
                    self._worker.executions.start_child,
                    self._run.execution,
                    workflow_id,
                    items,
                    submit=not wait,
                )
            )
        except (NotFound, Forbidden):
            raise NodeFailure(
                f"workflow {workflow_id} does not exist or this run's user may not execute it"
            ) from None
        except (InvalidState, ValidationFailed) as refused:
            raise NodeFailure(f"workflow {workflow_id} cannot run: {refused}") from None
        if not wait:
            return items
        ended = await self._run.engine.run(child.aggregate)
        if ended.status is not ExecutionStatus.SUCCESS:
            raise NodeFailure(
                f"sub-workflow execution {ended.id} ended {ended.status}: {ended.error_message}",
                details={"executionId": ended.id},
            )
        return ended.output_items

    async def credential(self, credential_id: str, *, node_id: str) -> Mapping[str, Any]:
        execution = self._run.execution
        try:
            return await to_thread.run_sync(
                partial(
                    self._worker.credentials.use,
                    execution.user_id,
                    credential_id,
                    execution_id=execution.id,
                    node_id=node_id,
                )
            )
        except NotFound:
            raise NodeFailure(
                f"credential {credential_id} does not exist or this run's user may not use it"
            ) from None
        except CredentialUnavailable as refused:
            raise NodeFailure(f"credential {credential_id}: {refused}") from None
        except DecryptionFailed:
            raise NodeFailure(
                f"credential {credential_id} cannot be opened: the master key that sealed it is "
                "not in A2N_MASTER_KEYS"
            ) from None


async def _after(delay_ms: int, node_id: str) -> Outcome:
    await asyncio.sleep(delay_ms / 1000)
    return Outcome(node_id, retry_ready=True)


def _since(began: float) -> int:
    return int((time.monotonic() - began) * 1000)


def _variables(definition: Mapping[str, Any]) -> dict[str, Any]:
    """`$vars`: the definition's global variables, overridden by its workflow variables."""
    variables = definition.get("variables", {})
    merged: dict[str, Any] = {}
    for scope in ("global", "workflow"):
        values = variables.get(scope) if isinstance(variables, Mapping) else None
        if isinstance(values, Mapping):
            merged.update(values)
    return merged


def _log_dicts(result: NodeResult) -> list[dict[str, str]]:
    return [{"level": line.level, "message": line.message} for line in result.logs]


def _error_dict(failure: NodeFailure) -> dict[str, Any]:
    return {
        "message": str(failure),
        "retryable": failure.retryable,
        **({"details": dict(failure.details)} if failure.details else {}),
    }
