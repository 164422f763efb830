"""Execution use cases: start a run, cancel it, retry it, and read one from its events.

Who may do what follows the workflow: running needs EXECUTE on it (a test run of the draft needs
EDIT), reading an execution needs VIEW or having started it, cancelling and retrying need EXECUTE
or having started it. An execution the caller may not read does not exist for them (404).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from application.caller import Caller
from application.errors import NotFound
from application.eventstore import EventMetadata, Recorded
from application.executions.app import ExecutionsApp
from application.executions.queue import ExecutionQueue
from application.ids import new_id
from application.payloads import is_pruned
from application.workflows.commands import WorkflowService
from domain.aggregate import Aggregate
from domain.errors import InvalidState, ValidationFailed, Violation
from domain.executions.execution import Execution, ExecutionMode, Item
from domain.executions.graph import start_node, trigger_node_ids
from domain.text import MAX_JSON_DEPTH, text_violations
from domain.workflows.permissions import Permission
from domain.workflows.workflow import RunnableVersion

MAX_INPUT_ITEMS = 10_000
MAX_SUBWORKFLOW_DEPTH = 10
CHAIN_DEPTH = "chainDepth"
"""Trigger data: how many runs, each started by the end of the previous one, led to this run
(see event_triggers.py); a sub-workflow inherits its parent's."""
WAIT_POLL_SECONDS = 1.0
"""How long a caller waiting for a run reads nothing without a progress notice: only a lost
notice (Redis briefly away) makes it wait this long."""


def checked_items(items: Any) -> list[Item]:
    """Input items: a list of JSON objects (an absent body runs with one empty item)."""
    if items is None:
        return [{}]
    if not isinstance(items, list):
        raise ValidationFailed([Violation("", "must be an array of objects (the input items)")])
    if len(items) > MAX_INPUT_ITEMS:
        raise ValidationFailed(
            [Violation("", f"has {len(items)} items; the limit is {MAX_INPUT_ITEMS}")]
        )
    wrong = [
        Violation(f"/{index}", "must be an object")
        for index, item in enumerate(items)
        if not isinstance(item, dict)
    ]
    wrong += [
        v.under(f"/{index}")
        for index, item in enumerate(items)
        if isinstance(item, dict)
        for v in text_violations(item, MAX_JSON_DEPTH)
    ]
    if wrong:
        raise ValidationFailed(wrong[:20])
    return items


ORIGINS_KEPT = 1024
"""Runs whose origin `ExecutionService.origin` keeps in memory, the most recently asked."""


@dataclass(frozen=True)
class RunOrigin:
    """What a run's first event (Queued) says of it: never changes once stored."""

    workflow_id: str
    workflow_version: int
    user_id: str
    mode: ExecutionMode
    chain_depth: int


class ExecutionService:
    def __init__(
        self, app: ExecutionsApp, workflows: WorkflowService, queue: ExecutionQueue
    ) -> None:
        self.app = app
        self.workflows = workflows
        self.queue = queue
        self._origins: OrderedDict[str, RunOrigin] = OrderedDict()
        self._origins_lock = threading.Lock()

    def origin(self, execution_id: str) -> RunOrigin:
        """The run's origin, read from its first event once and then kept for a while: each
        process manager asks for it when the run ends (event triggers, notifications). A run
        this service queued (`_queue`), or this process's worker loaded, is known without
        reading (`keep_origin`)."""
        with self._origins_lock:
            known = self._origins.get(execution_id)
            if known is not None:
                self._origins.move_to_end(execution_id)
                return known
        queued = next(iter(self.app.events.get(execution_id, lte=1)))
        assert isinstance(queued, Execution.Queued)
        return self.keep_origin(execution_id, queued)

    def keep_origin(self, execution_id: str, queued: Execution | Execution.Queued) -> RunOrigin:
        """Remember the origin of a run from its Queued event or its aggregate, for this
        process's managers to find when it ends."""
        depth = queued.trigger_data.get(CHAIN_DEPTH, 0)
        found = RunOrigin(
            workflow_id=queued.workflow_id,
            workflow_version=queued.workflow_version,
            user_id=queued.user_id,
            mode=ExecutionMode(queued.mode),
            chain_depth=depth if isinstance(depth, int) else 0,
        )
        with self._origins_lock:
            self._origins[execution_id] = found
            while len(self._origins) > ORIGINS_KEPT:
                self._origins.popitem(last=False)
        return found

    def start(
        self,
        caller: Caller,
        workflow_id: str,
        items: Any,
        *,
        test: bool = False,
        priority: int = 0,
        mode: ExecutionMode | None = None,
        parent_execution_id: str | None = None,
        trigger_data: Mapping[str, Any] | None = None,
        trigger: tuple[str, str | None] | None = None,
        submit: bool = True,
        execution_id: str | None = None,
        together: Callable[[Execution], Iterable[Aggregate]] | None = None,
        runnable: RunnableVersion | None = None,
        deferred: bool = False,
    ) -> Recorded[Execution]:
        """Queue a run of the workflow's published version (the latest draft when `test`)
        with `items`, starting at its manual trigger, or at the trigger node `trigger` names
        (node id, workflow_trigger id) when a webhook, schedule or event fired it. Without
        `submit` the caller runs it itself (a sub-workflow its parent waits for) or submits it
        later. A given `execution_id` that is taken already raises IntegrityError: the run was
        started before (how a trigger that may fire twice starts one run). `together` is given
        the new run once it passed every check, and returns aggregates of this context to save
        with it, atomically (a schedule recording that it fired). A trigger acting for the
        workflow's owner that resolved the version to run already (`WorkflowService.runnable`,
        an active or listening workflow) passes it as `runnable`, which spares reading it again.
        With `deferred` (not `submit`: a caller that runs it here at once and answers only once
        it ended) nothing is saved now: the Queued event, stamped with `caller`'s metadata, is
        saved with the run's first checkpoint (`save_deferred` if it cannot run here after all);
        the position returned is then 0."""
        input_items = checked_items(items)
        if runnable is None:
            runnable = self.workflows.definition_to_run(caller, workflow_id, test=test)
        start_node_id, trigger_id = trigger or (start_node(runnable.definition), None)
        if start_node_id not in trigger_node_ids(runnable.definition):
            raise InvalidState(f"node {start_node_id!r} is not an enabled trigger of this version")
        execution = Execution.queue(
            execution_id=execution_id or new_id(),
            workflow_id=workflow_id,
            workflow_version=runnable.version,
            user_id=caller.user_id,
            mode=mode or (ExecutionMode.TEST if test else ExecutionMode.MANUAL),
            start_node_id=start_node_id,
            trigger_id=trigger_id,
            input_items=input_items,
            trigger_data=trigger_data,
            priority=priority,
            parent_execution_id=parent_execution_id,
        )
        others = tuple(together(execution)) if together is not None else ()
        if deferred and not submit and not others:
            self.app.stamp(caller.metadata(), execution)
            self.keep_origin(execution.id, execution)
            return Recorded(execution, 0)
        return self._queue(caller, execution, *others, submit=submit)

    def save_deferred(self, execution: Execution) -> int:
        """Save a `deferred` run as it is (its events keep the metadata they were stamped
        with); the position reached."""
        return self.app.record(EventMetadata(actor_id=execution.user_id), execution)

    def start_child(
        self, parent: Execution, workflow_id: str, items: list[Item], *, submit: bool
    ) -> Recorded[Execution]:
        """A sub-workflow run for an execute_workflow node, as the parent run's user."""
        if self._depth(parent) >= MAX_SUBWORKFLOW_DEPTH:
            raise InvalidState(
                f"sub-workflows nest deeper than {MAX_SUBWORKFLOW_DEPTH} levels; "
                "is a workflow calling itself?"
            )
        depth = parent.trigger_data.get(CHAIN_DEPTH)
        return self.start(
            Caller(parent.user_id, correlation_id=parent.id),
            workflow_id,
            items,
            mode=ExecutionMode.SUBWORKFLOW,
            parent_execution_id=parent.id,
            priority=parent.priority,
            trigger_data={CHAIN_DEPTH: depth} if depth else None,
            submit=submit,
        )

    def retry(self, caller: Caller, execution_id: str) -> Recorded[Execution]:
        """A new run of the same workflow version with the same input, after this one ended."""
        original = self.get(caller, execution_id)
        if not original.is_final:
            raise InvalidState(f"the execution is {original.status}; only an ended one is retried")
        if is_pruned(original.input_items) or is_pruned(original.trigger_data):
            raise InvalidState("retention pruned this execution's input: it cannot be retried")
        head = self.workflows.check_access(caller, original.workflow_id, needs=Permission.EXECUTE)
        if head.is_archived:
            raise InvalidState("the workflow is archived and can no longer run")
        execution = Execution.queue(
            execution_id=new_id(),
            workflow_id=original.workflow_id,
            workflow_version=original.workflow_version,
            user_id=caller.user_id,
            mode=ExecutionMode.RETRY,
            start_node_id=original.start_node_id,
            input_items=original.input_items,
            trigger_id=original.trigger_id,
            trigger_data=original.trigger_data,
            priority=original.priority,
            parent_execution_id=original.parent_execution_id,
            retry_of=original.id,
        )
        return self._queue(caller, execution, submit=True)

    def cancel(self, caller: Caller, execution_id: str) -> Recorded[Execution]:
        """Cancel a queued or running execution; its worker stops within about a second."""

        def cancel(execution: Execution) -> None:
            elapsed = None
            if execution.started_at is not None:
                elapsed = max(0, int((time.time() - execution.started_at.timestamp()) * 1000))
            execution.cancel(f"cancelled by {caller.user_id}", elapsed)

        return self.app.change(
            execution_id,
            Execution,
            cancel,
            caller.metadata(),
            visible=lambda execution: self._may(caller, execution, Permission.EXECUTE),
        )

    def get(
        self, caller: Caller, execution_id: str, *, needs: Permission = Permission.VIEW
    ) -> Execution:
        """The execution from its events, if the caller may see it (and holds `needs`)."""
        execution = self.app.load(execution_id, Execution)
        if not self._may(caller, execution, needs):
            raise NotFound(execution_id)
        return execution

    async def wait_for_end(self, execution: Execution | str, timeout: float) -> Execution:
        """The execution once it ended, or as it is after `timeout` seconds."""
        return await self.wait_until(execution, _ended, timeout)

    async def wait_until(
        self, execution: Execution | str, done: Callable[[Execution], bool], timeout: float
    ) -> Execution:
        """The execution (as given, brought up to date, or loaded by id) once `done` holds for
        it, or as it is after `timeout` seconds: for callers on the event loop, which must not
        hold a thread while they wait (webhooks waiting for their answer). It reads the new
        events whenever a progress notice of the run comes (see progress.py; the hub remembers
        notices that came before the wait began), and every WAIT_POLL_SECONDS in case one was
        lost: a run saved in another process while Redis was away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        execution_id = execution if isinstance(execution, str) else execution.id
        async with self.app.progress.hub.watch(execution_id) as watch:
            # Watching first: a save between this read and the first wait is not missed.
            if isinstance(execution, str):
                execution = await to_thread.run_sync(self.app.load, execution_id, Execution)
            elif watch.latest > execution.version:  # saved since, as this process heard
                execution = await to_thread.run_sync(self.app.caught_up, execution)
            while not done(execution) and (left := deadline - loop.time()) > 0:
                noticed = await watch.wait(min(left, WAIT_POLL_SECONDS))
                if noticed and watch.latest <= execution.version:
                    continue  # a save already read (relayed back through Redis)
                execution = await to_thread.run_sync(self.app.caught_up, execution)
        return execution

    def _queue(
        self, caller: Caller, execution: Execution, *others: Aggregate, submit: bool
    ) -> Recorded[Execution]:
        position = self.app.record(caller.metadata(), execution, *others)
        # The process managers ask for it when the run ends: read from memory, not the store.
        self.keep_origin(execution.id, execution)
        if submit:
            self.queue.submit(execution.id, execution.priority)
        return Recorded(execution, position)

    def _may(self, caller: Caller, execution: Execution, needs: Permission) -> bool:
        """Whoever started the run may see, cancel and retry it; others need `needs` on the
        workflow (403 when they hold less, False when they hold nothing)."""
        if execution.user_id == caller.user_id:
            return True
        try:
            self.workflows.check_access(caller, execution.workflow_id, needs=needs, public=False)
        except NotFound:
            return False
        return True

    def _depth(self, execution: Execution) -> int:
        depth = 0
        while execution.parent_execution_id is not None and depth < MAX_SUBWORKFLOW_DEPTH:
            execution = self.app.load(execution.parent_execution_id, Execution)
            depth += 1
        return depth


def _ended(execution: Execution) -> bool:
    return execution.is_final
