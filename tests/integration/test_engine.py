"""The execution engine against the real event store: DAG order, parallel branches, retries,
timeouts, cancellation, resuming a dead worker's run, sub-workflows and the worker loop.

Node behaviour here comes from small runtimes defined in this file (the engine takes its
runtimes as a parameter), so each test controls exactly when a node fails, waits or succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import httpx
import psycopg
import pytest
import redis
import redis.asyncio as aioredis

from application.caller import Caller
from application.eventstore import EventMetadata, event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, EngineLimits, WorkerServices
from application.executions.leases import MemoryLeases, RedisLeases
from application.executions.nodes.base import (
    NodeCall,
    NodeFailure,
    NodeResult,
    RuntimeLimits,
    passed_on,
)
from application.executions.progress import ProgressHub
from application.executions.queue import MemoryQueue
from application.executions.redis_queue import RedisStreamQueue
from application.executions.worker import Worker
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionMode, ExecutionStatus, NodeStatus
from tests.integration.helpers import credential_vault

OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62", correlation_id="req-engine")


@dataclass
class Behaviour:
    """What the `noop`, `wait` and `set` test runtimes do, by node id."""

    calls: dict[str, int] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)  # node id -> failures before success
    retryable: bool = True
    hang: set[str] = field(default_factory=set)
    rendezvous: dict[str, asyncio.Event] = field(default_factory=dict)
    empty: set[str] = field(default_factory=set)
    sleep: dict[str, float] = field(default_factory=dict)  # node id -> seconds it takes

    async def run(self, call: NodeCall) -> NodeResult:
        node_id = str(call.node["id"])
        self.calls[node_id] = self.calls.get(node_id, 0) + 1
        if node_id in self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.sleep.get(node_id, 0))
        if node_id in self.rendezvous:
            # Both branches must be running at once for either to pass.
            mine = self.rendezvous[node_id]
            mine.set()
            others = [e for n, e in self.rendezvous.items() if n != node_id]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in others)), 5)
        if self.calls[node_id] <= self.fail_first.get(node_id, 0):
            raise NodeFailure(
                f"{node_id} failed on call {self.calls[node_id]}", retryable=self.retryable
            )
        if node_id in self.empty:
            return passed_on([])
        items = [{**item, node_id: True} for items in call.inputs.values() for item in items]
        return passed_on(items)


class SubWorkflow:
    async def run(self, call: NodeCall) -> NodeResult:
        items = await call.services.run_workflow(
            str(call.config["workflowId"]), call.items, wait=bool(call.config.get("wait", True))
        )
        return passed_on(items)


class Saves(ProgressHub):
    """The progress notices of the runs' saves: (execution id, version reached)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def announce(self, execution_id: str, version: int) -> None:
        self.seen.append((execution_id, version))
        super().announce(execution_id, version)

    def of(self, execution_id: str) -> list[int]:
        return [version for saved, version in self.seen if saved == execution_id]


@dataclass
class Rig:
    workflows: WorkflowService
    executions: ExecutionService
    queue: MemoryQueue
    behaviour: Behaviour
    make_engine: Callable[..., Engine]
    saves: Saves

    def workflow(self, definition: dict[str, Any]) -> str:
        made = self.workflows.create(OWNER, name="engine test", definition=definition)
        self.workflows.publish_version(OWNER, made.aggregate.id, 1)
        return made.aggregate.id

    def run(self, definition: dict[str, Any], items: list[Any] | None = None) -> Execution:
        workflow_id = self.workflow(definition)
        queued = self.executions.start(OWNER, workflow_id, items)
        return asyncio.run(self.make_engine("worker-1").run(queued.aggregate.id))

    def events(self, execution_id: str) -> list[str]:
        return [type(e).__name__ for e in self.history(execution_id)]

    def history(self, execution_id: str) -> list[Any]:
        return list(self.executions.app.history(execution_id))


@contextlib.asynccontextmanager
async def on_redis(
    redis_url: str, **lease: Any
) -> AsyncIterator[tuple[RedisStreamQueue, RedisLeases]]:
    """The Redis queue and leases of a worker `w`, under a key prefix of this test's own,
    removed afterwards."""
    prefix = f"a2n:test-{uuid.uuid4().hex[:12]}:"
    client = aioredis.from_url(redis_url)
    sync_client = redis.Redis.from_url(redis_url)
    leases = RedisLeases(client, prefix=prefix, **lease)
    try:
        yield RedisStreamQueue(sync_client, client, leases, prefix=prefix, consumer="w"), leases
    finally:
        for key in sync_client.scan_iter(f"{prefix}*"):
            sync_client.delete(key)
        await client.aclose()
        sync_client.close()


@pytest.fixture
def rig(database_url: str) -> Iterator[Rig]:
    env = event_store_env(database_url, pool_size=3)
    saves = Saves()
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env, progress=saves)
    workflows = WorkflowService(workflows_app)
    queue = MemoryQueue()
    executions = ExecutionService(executions_app, workflows, queue)
    behaviour = Behaviour()
    runtimes = {
        "manual_trigger": behaviour,
        "noop": behaviour,
        "merge": behaviour,
        "execute_workflow": SubWorkflow(),
    }

    vault = credential_vault(database_url)

    def make_engine(worker_id: str, checkpoint_seconds: float = 0.1) -> Engine:
        services = WorkerServices(httpx.AsyncClient(), RuntimeLimits(), executions, vault)
        limits = EngineLimits(heartbeat_seconds=0.05, checkpoint_seconds=checkpoint_seconds)
        return Engine(
            executions_app, workflows.version_definition, runtimes, services, worker_id, limits
        )

    yield Rig(workflows, executions, queue, behaviour, make_engine, saves)
    workflows_app.close()
    executions_app.close()
    vault.app.close()


def chain(*ids: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """manual trigger `m` followed by noop nodes `ids`, one after the other."""
    nodes = [{"id": "m", "name": "Start", "type": "manual_trigger"}]
    nodes += [{"id": i, "name": i.upper(), "type": "noop"} for i in ids]
    order = ["m", *ids]
    connections = [{"source": a, "target": b} for a, b in pairwise(order)]
    return {"nodes": nodes, "connections": connections, "settings": settings or {}}


def diamond() -> dict[str, Any]:
    """m -> a, m -> b, a -> j.input1, b -> j.input2"""
    return {
        "nodes": [
            {"id": "m", "type": "manual_trigger"},
            {"id": "a", "type": "noop"},
            {"id": "b", "type": "noop"},
            {"id": "j", "type": "merge"},
        ],
        "connections": [
            {"source": "m", "target": "a"},
            {"source": "m", "target": "b"},
            {"source": "a", "target": "j", "targetHandle": "input1"},
            {"source": "b", "target": "j", "targetHandle": "input2"},
        ],
    }


RETRY = {"retryPolicy": {"enabled": True, "maxRetries": 3, "retryDelay": 1}}


def test_a_chain_runs_in_order_and_ends_with_the_last_nodes_items(rig: Rig) -> None:
    ended = rig.run(chain("a", "b"), [{"n": 1}, {"n": 2}])
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [
        {"n": 1, "m": True, "a": True, "b": True},
        {"n": 2, "m": True, "a": True, "b": True},
    ]
    # Each node ended before anything saved its start: one event records both.
    assert rig.events(ended.id) == ["Queued", "Started", *["NodeSucceeded"] * 3, "Succeeded"]
    succeeded = [e for e in rig.history(ended.id) if isinstance(e, Execution.NodeSucceeded)]
    assert [(e.node_id, e.attempt, e.input_count) for e in succeeded] == [
        ("m", 1, 2),
        ("a", 1, 2),
        ("b", 1, 2),
    ]


def test_a_node_still_running_goes_on_record_before_a_branch_that_ended(rig: Rig) -> None:
    """Parallel branches: when `a` ends while `b` works, b's start is recorded first, at the
    time b began, so the run's events stay in the order things happened."""
    rig.behaviour.sleep = {"b": 0.3}
    ended = rig.run(diamond())
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    history = rig.history(ended.id)
    names = [(type(e).__name__, getattr(e, "node_id", None)) for e in history]
    assert names[2:] == [
        ("NodeSucceeded", "m"),
        ("NodeStarted", "b"),
        ("NodeSucceeded", "a"),
        ("NodeSucceeded", "b"),
        ("NodeSucceeded", "j"),
        ("Succeeded", None),
    ]
    times = [e.timestamp for e in history]
    assert times == sorted(times)
    b_started, b_succeeded = history[3], history[5]
    assert isinstance(b_succeeded, Execution.NodeSucceeded)
    assert b_succeeded.input_count is None  # its NodeStarted has it
    assert b_started.timestamp < history[4].timestamp  # b began before a ended
    assert (b_succeeded.timestamp - b_started.timestamp).total_seconds() >= 0.3


def test_independent_branches_run_at_the_same_time(rig: Rig) -> None:
    rig.behaviour.rendezvous = {"a": asyncio.Event(), "b": asyncio.Event()}
    ended = rig.run(diamond())
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert ended.output_items == [
        {"m": True, "a": True, "j": True},
        {"m": True, "b": True, "j": True},
    ]


def test_a_branch_without_items_is_skipped_with_what_only_it_feeds(rig: Rig) -> None:
    rig.behaviour.empty = {"a"}
    ended = rig.run(chain("a", "b"))
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.nodes["b"].status is NodeStatus.SKIPPED
    assert "b" not in rig.behaviour.calls
    assert ended.output_items == []


def test_a_disabled_node_passes_its_items_through(rig: Rig) -> None:
    definition = chain("a", "b")
    definition["nodes"][1]["disabled"] = True
    ended = rig.run(definition)
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.nodes["a"].status is NodeStatus.SKIPPED
    assert ended.output_items == [{"m": True, "b": True}]


def test_a_retryable_failure_is_retried_per_the_retry_policy(rig: Rig) -> None:
    rig.behaviour.fail_first = {"a": 2}
    ended = rig.run(chain("a", settings=RETRY))
    assert ended.status is ExecutionStatus.SUCCESS
    assert rig.behaviour.calls["a"] == 3
    assert ended.nodes["a"].attempt == 3
    attempts = [
        (type(e).__name__, e.attempt, getattr(e, "input_count", None))
        for e in rig.history(ended.id)
        if getattr(e, "node_id", None) == "a"
    ]
    # A failed attempt's start is on record before its failure; the last attempt succeeded
    # before anything saved its start, so its NodeSucceeded records it.
    assert attempts == [
        ("NodeStarted", 1, 1),
        ("NodeRetrying", 1, None),
        ("NodeStarted", 2, 1),
        ("NodeRetrying", 2, None),
        ("NodeSucceeded", 3, 1),
    ]


def test_retries_stop_at_max_retries_and_the_run_fails_naming_the_node(rig: Rig) -> None:
    rig.behaviour.fail_first = {"a": 10}
    ended = rig.run(chain("a", "b", settings=RETRY))
    assert ended.status is ExecutionStatus.FAILED
    assert rig.behaviour.calls["a"] == 4  # the first attempt and three retries
    assert ended.error_message == "node 'A' failed: a failed on call 4"
    assert "b" not in rig.behaviour.calls


def test_a_failure_that_is_not_retryable_fails_at_once(rig: Rig) -> None:
    rig.behaviour.fail_first = {"a": 1}
    rig.behaviour.retryable = False
    ended = rig.run(chain("a", settings=RETRY))
    assert ended.status is ExecutionStatus.FAILED
    assert rig.behaviour.calls["a"] == 1


def test_a_run_longer_than_its_timeout_times_out(rig: Rig) -> None:
    rig.behaviour.hang = {"a"}
    ended = rig.run(chain("a", settings={"timeout": 200}))
    assert ended.status is ExecutionStatus.TIMEOUT
    assert ended.nodes["a"].status is NodeStatus.CANCELLED
    assert rig.events(ended.id)[-1] == "TimedOut"


def test_cancelling_a_running_execution_stops_its_worker(rig: Rig) -> None:
    rig.behaviour.hang = {"a"}
    workflow_id = rig.workflow(chain("a", "b"))
    queued = rig.executions.start(OWNER, workflow_id, None)
    execution_id = queued.aggregate.id

    def cancel_once_running() -> None:
        while Execution.NodeStarted.__name__ not in rig.events(execution_id)[3:]:
            threading.Event().wait(0.02)
        rig.executions.cancel(OWNER, execution_id)

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    ended = asyncio.run(asyncio.wait_for(rig.make_engine("w").run(execution_id), 10))
    canceller.join()
    stored = rig.executions.get(OWNER, execution_id)
    assert stored.status is ExecutionStatus.CANCELLED
    assert rig.events(execution_id)[-1] == "Cancelled"
    assert ended.status is not ExecutionStatus.SUCCESS
    assert "b" not in rig.behaviour.calls


@pytest.mark.parametrize("text", ["small", "large " * 20_000], ids=["inline", "payload store"])
def test_a_run_whose_worker_died_resumes_without_rerunning_settled_nodes(
    rig: Rig, text: str
) -> None:
    """Large items (120 KB here) are in the payload store, and the resume reads them back."""
    workflow_id = rig.workflow(chain("a", "b"))
    execution_id = rig.executions.start(OWNER, workflow_id, [{"n": 1, "text": text}]).aggregate.id
    app = rig.executions.app
    # worker-1 ran the trigger and started `a`, then died before saving more.
    execution = app.load(execution_id, Execution)
    execution.start("worker-1", [{"id": i, "name": i, "type": "noop"} for i in ("m", "a", "b")])
    execution.node_started("m", 1)
    execution.node_succeeded("m", {"output": [{"n": 1, "text": text, "m": True}]}, 1, [])
    execution.node_started("a", 1)
    app.record(EventMetadata(actor_id="system"), execution)

    ended = asyncio.run(rig.make_engine("worker-2").run(execution_id))
    assert ended.status is ExecutionStatus.SUCCESS
    assert "m" not in rig.behaviour.calls
    assert ended.output_items == [{"n": 1, "text": text, "m": True, "a": True, "b": True}]
    assert "Resumed" in rig.events(execution_id)
    assert ended.nodes["a"].attempt == 2
    assert app.load(execution_id, Execution).output_items == ended.output_items


def test_a_run_never_saved_that_cannot_start_is_saved_failed(rig: Rig) -> None:
    """A webhook's lastNode run is saved with its first checkpoint; one that cannot even start
    is saved as it ended, Queued included, rather than lost."""
    workflow_id = rig.workflow(chain("a"))
    unsaved = rig.executions.start(OWNER, workflow_id, None, submit=False, deferred=True)
    assert unsaved.position == 0
    broken = {"nodes": [{"id": "x", "type": "noop"}], "connections": []}
    ended = asyncio.run(rig.make_engine("w").run(unsaved.aggregate, broken))
    assert ended.status is ExecutionStatus.FAILED
    assert rig.events(ended.id) == ["Queued", "Started", "Failed"]
    stored = rig.executions.get(OWNER, ended.id)
    assert stored.error_message is not None
    assert "cannot start" in stored.error_message


def test_a_run_of_fast_nodes_is_claimed_run_and_ended_in_one_save(rig: Rig) -> None:
    ended = rig.run(chain("a", "b"))
    assert ended.status is ExecutionStatus.SUCCESS
    assert rig.saves.of(ended.id) == [1, ended.version]  # Queued, then everything else
    assert rig.events(ended.id) == ["Queued", "Started", *["NodeSucceeded"] * 3, "Succeeded"]


def test_a_slow_node_is_on_record_as_started_while_it_works(rig: Rig) -> None:
    rig.behaviour.hang = {"b"}
    workflow_id = rig.workflow(chain("a", "b", settings={"timeout": 1500}))
    execution_id = rig.executions.start(OWNER, workflow_id, None).aggregate.id

    async def scenario() -> list[str]:
        running = asyncio.create_task(rig.make_engine("w").run(execution_id))
        while len(rig.saves.of(execution_id)) < 2:
            await asyncio.sleep(0.02)
        seen = await asyncio.to_thread(rig.events, execution_id)
        await running
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert seen[-1] == "NodeStarted"  # b, saved with what came before it
    assert seen.count("NodeSucceeded") == 2
    assert rig.events(execution_id)[-1] == "TimedOut"


def test_a_fast_run_whose_worker_died_before_saving_runs_again_from_the_start(
    rig: Rig,
) -> None:
    rig.behaviour.hang = {"b"}
    workflow_id = rig.workflow(chain("a", "b"))
    execution_id = rig.executions.start(OWNER, workflow_id, [{"n": 1}]).aggregate.id

    async def die_at_b() -> None:
        # A checkpoint far away: the worker dies with everything it did unsaved.
        dying = asyncio.create_task(rig.make_engine("w1", checkpoint_seconds=600).run(execution_id))
        while "b" not in rig.behaviour.calls:
            await asyncio.sleep(0.01)
        dying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dying

    asyncio.run(asyncio.wait_for(die_at_b(), 30))
    assert rig.events(execution_id) == ["Queued"]
    rig.behaviour.hang = set()
    ended = asyncio.run(rig.make_engine("w2").run(execution_id))
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [{"n": 1, "m": True, "a": True, "b": True}]
    assert rig.behaviour.calls == {"m": 2, "a": 2, "b": 2}
    assert "Resumed" not in rig.events(execution_id)


def test_a_sub_workflow_runs_as_a_child_and_returns_its_result(rig: Rig) -> None:
    child = rig.workflow(chain("c"))
    parent = chain()
    parent["nodes"].append(
        {"id": "x", "type": "execute_workflow", "config": {"workflowId": child, "wait": True}}
    )
    parent["connections"].append({"source": "m", "target": "x"})
    ended = rig.run(parent, [{"n": 1}])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    # The child's trigger and `c` ran on the parent's items.
    assert ended.output_items == [{"n": 1, "m": True, "c": True}]


def test_a_sub_workflow_the_user_may_not_run_fails_the_node(rig: Rig) -> None:
    parent = chain()
    missing = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f99"
    parent["nodes"].append(
        {"id": "x", "type": "execute_workflow", "config": {"workflowId": missing}}
    )
    parent["connections"].append({"source": "m", "target": "x"})
    ended = rig.run(parent)
    assert ended.status is ExecutionStatus.FAILED
    assert "may not execute it" in (ended.error_message or "")


def test_the_worker_takes_runs_off_the_queue(rig: Rig) -> None:
    workflow_id = rig.workflow(chain("a"))
    ids = [rig.executions.start(OWNER, workflow_id, [{"i": i}]).aggregate.id for i in range(3)]

    async def work() -> None:
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), rig.queue, MemoryLeases(), concurrency=2)
        running = asyncio.create_task(worker.run(stop))
        for execution_id in ids:
            await rig.executions.wait_for_end(execution_id, 10)
        stop.set()
        await running

    asyncio.run(work())
    assert [rig.executions.get(OWNER, i).status for i in ids] == [ExecutionStatus.SUCCESS] * 3


class FailingFirst:
    """The rig's queue, whose first `failures` receives fail as Redis does when it is slow."""

    def __init__(self, queue: Any, failures: int) -> None:
        self.queue, self.failures = queue, failures

    async def receive(self, timeout: float, most: int = 1) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise TimeoutError("Timeout reading from 127.0.0.1:6379")
        return await self.queue.receive(timeout, most)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queue, name)


def test_the_worker_outlives_a_queue_that_fails_to_answer(rig: Rig) -> None:
    workflow_id = rig.workflow(chain("a"))
    execution_id = rig.executions.start(OWNER, workflow_id, [{"i": 1}]).aggregate.id
    queue = FailingFirst(rig.queue, failures=2)

    async def work() -> None:
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), queue, MemoryLeases(), concurrency=2)  # type: ignore[arg-type]
        running = asyncio.create_task(worker.run(stop))
        await rig.executions.wait_for_end(execution_id, 10)
        stop.set()
        await running

    asyncio.run(work())
    assert queue.failures == 0
    assert rig.executions.get(OWNER, execution_id).status is ExecutionStatus.SUCCESS


def test_the_worker_runs_leased_deliveries_of_the_redis_queue_and_gives_each_lease_back(
    rig: Rig, redis_url: str
) -> None:
    """Runs taken several at a time with their leases, each run once and acknowledged with its
    lease given back; a second delivery of a run (submitted twice) does not run it again."""
    workflow_id = rig.workflow(chain("a"))
    ids = [rig.executions.start(OWNER, workflow_id, [{"i": i}]).aggregate.id for i in range(5)]

    async def work() -> tuple[set[str], int]:
        async with on_redis(redis_url) as (queue, leases):
            for execution_id in [*ids, ids[0]]:
                queue.submit(execution_id, 0)
            stop = asyncio.Event()
            worker = Worker(rig.make_engine("w"), queue, leases, concurrency=3)
            running = asyncio.create_task(worker.run(stop))
            for execution_id in ids:
                await rig.executions.wait_for_end(execution_id, 10)
            stop.set()
            await running
            return await leases.held(ids), await queue.depth()

    assert asyncio.run(work()) == (set(), 0)
    assert [rig.executions.get(OWNER, i).status for i in ids] == [ExecutionStatus.SUCCESS] * 5
    assert all(rig.events(i).count("Started") == 1 for i in ids)


def busy_and_given(rig: Rig) -> tuple[Execution, Execution, dict[str, Any]]:
    """A run whose node `h` holds a slot, and a webhook's lastNode run given unsaved (saved
    with its run) with its version's definition."""
    busy = rig.executions.start(OWNER, rig.workflow(chain("h")), [{}], submit=False).aggregate
    workflow_id = rig.workflow(chain("a"))
    _, runnable = rig.workflows.runnable(workflow_id, test=False)
    later = rig.executions.start(
        OWNER, workflow_id, [{"i": 2}], submit=False, deferred=True
    ).aggregate
    return busy, later, runnable.definition


def given_here_on_redis(
    rig: Rig, redis_url: str, *, frees_after: float | None, unsaved_wait: float
) -> tuple[Execution, Execution, list[int]]:
    """A Redis queue and a worker of two slots, one held by its own wait for the queue, the
    other by a run that waits (for `frees_after` seconds, or for good); a webhook's lastNode
    run given unsaved then. What its caller's future ended with, the run once it ended, and
    the versions its saves reached."""
    busy, later, definition = busy_and_given(rig)
    if frees_after is None:
        rig.behaviour.hang.add("h")

    async def work() -> tuple[Execution, Execution]:
        async with on_redis(redis_url) as (queue, leases):
            stop = asyncio.Event()
            worker = Worker(
                rig.make_engine("w"),
                queue,
                leases,
                concurrency=2,
                unsaved_wait_seconds=unsaved_wait,
            )
            running = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0.3)  # waiting for work
            if frees_after is not None:
                rig.behaviour.sleep["h"] = frees_after
            assert worker.start_here(busy) is not None
            await asyncio.sleep(0.05)
            waiting = worker.start_here(later, definition)
            assert waiting is not None
            answered = await asyncio.wait_for(waiting, 10)
            ended = await rig.executions.wait_for_end(later.id, 10)
            stop.set()
            await running
            return answered, ended

    answered, ended = asyncio.run(work())
    return answered, ended, rig.saves.of(later.id)


def test_a_run_given_here_on_a_shared_queue_waits_for_a_slot_here_then_goes_to_the_queue(
    rig: Rig, redis_url: str
) -> None:
    """No slot frees within the wait: the run is saved as it is and handed to the queue, for
    whichever worker has room (this one's own loop took it here); its caller is given the run
    as it was, to follow it in the store."""
    answered, ended, saves = given_here_on_redis(rig, redis_url, frees_after=None, unsaved_wait=0.2)
    assert answered.status is ExecutionStatus.QUEUED
    assert ended.status is ExecutionStatus.SUCCESS
    assert saves == [1, ended.version]  # Queued alone, then the run


def test_a_run_given_here_on_a_shared_queue_runs_here_when_a_slot_frees_within_the_wait(
    rig: Rig, redis_url: str
) -> None:
    answered, ended, saves = given_here_on_redis(rig, redis_url, frees_after=0.2, unsaved_wait=5)
    assert answered.status is ExecutionStatus.SUCCESS
    assert saves == [ended.version]  # saved once, with its run


def test_a_run_the_shared_queue_cannot_take_when_its_wait_ends_runs_here_after_all(
    rig: Rig,
) -> None:
    """Redis away (nothing listens on its port): the hand-over fails, so the run, saved by
    then, waits here for a slot and runs here (the worker's own loop keeps failing to read the
    queue meanwhile, and takes nothing)."""
    busy, later, definition = busy_and_given(rig)
    rig.behaviour.sleep["h"] = 1.0
    away = "redis://127.0.0.1:1/0"

    async def work() -> Execution:
        client = aioredis.from_url(away)
        sync_client = redis.Redis.from_url(away)
        leases = RedisLeases(client, prefix="a2n:test-away:")
        queue = RedisStreamQueue(sync_client, client, leases, prefix="a2n:test-away:", consumer="w")
        try:
            stop = asyncio.Event()
            worker = Worker(
                rig.make_engine("w"), queue, leases, concurrency=1, unsaved_wait_seconds=0.1
            )
            running = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0.05)
            assert worker.start_here(busy) is not None
            await asyncio.sleep(0.05)
            waiting = worker.start_here(later, definition)
            assert waiting is not None
            answered = await asyncio.wait_for(waiting, 10)
            stop.set()
            await running
            return answered
        finally:
            await client.aclose()
            sync_client.close()

    answered = asyncio.run(work())
    assert answered.status is ExecutionStatus.SUCCESS
    assert rig.saves.of(later.id) == [1, answered.version]  # saved alone, then its run here


def test_a_delivery_that_waited_for_a_slot_runs_only_if_its_lease_is_still_its_own(
    rig: Rig, redis_url: str
) -> None:
    """The worker asked for two runs while it had two free slots; a run started here took one
    meanwhile. The second run waits for a slot past its lease, another worker takes the lease:
    once a slot frees, the run is not run here."""
    rig.behaviour.hang.add("h")
    hanging, other = rig.workflow(chain("h")), rig.workflow(chain("a"))
    here = rig.executions.start(OWNER, hanging, [{}], submit=False).aggregate
    first = rig.executions.start(OWNER, hanging, [{}], submit=False).aggregate.id
    second = rig.executions.start(OWNER, other, [{}], submit=False).aggregate.id

    async def work() -> tuple[bool, set[str]]:
        async with on_redis(redis_url, seconds=1) as (queue, leases):
            stop = asyncio.Event()
            worker = Worker(rig.make_engine("w"), queue, leases, concurrency=2)
            running = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0.3)  # waiting for work, for two runs
            started_here = worker.start_here(here)
            assert started_here is not None
            await asyncio.sleep(0.1)  # it took a slot
            queue.submit(first, 0)
            queue.submit(second, 0)
            deadline = asyncio.get_running_loop().time() + 5
            while await leases.held([first, second]) != {first, second}:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.3)  # the waiting run's lease ran out
            thief = RedisLeases(leases.client, prefix=leases.prefix)  # elsewhere, 30 s leases
            stolen = await thief.acquire(second, "thief")
            started_here.cancel()  # a slot frees
            await asyncio.sleep(0.5)
            stop.set()
            await running
            return stolen, await leases.held([second])

    assert asyncio.run(work()) == (True, {second})  # still the thief's
    assert rig.executions.get(OWNER, second).status is ExecutionStatus.QUEUED
    assert rig.behaviour.calls.get("a") is None


def test_a_draft_runs_only_as_a_test_run(rig: Rig) -> None:
    made = rig.workflows.create(OWNER, name="draft", definition=chain("a"))
    with pytest.raises(Exception, match="no published version"):
        rig.executions.start(OWNER, made.aggregate.id, None)
    test_run = rig.executions.start(OWNER, made.aggregate.id, None, test=True)
    assert str(test_run.aggregate.mode) == "test"


def test_a_run_that_cannot_start_ends_failed_with_the_reason(rig: Rig) -> None:
    workflow_id = rig.workflow(chain("a"))
    app = rig.executions.app
    ghost = Execution.queue(
        execution_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e0001",
        workflow_id=workflow_id,
        workflow_version=1,
        user_id=OWNER.user_id,
        mode=ExecutionMode.MANUAL,
        start_node_id="ghost",
        input_items=[{}],
    )
    app.record(EventMetadata(actor_id="system"), ghost)
    ended = asyncio.run(rig.make_engine("w").run(ghost.id))
    assert ended.status is ExecutionStatus.FAILED
    assert (
        ended.error_message
        == "the run cannot start: the workflow has no node 'ghost' to start from"
    )
    assert rig.events(ghost.id) == ["Queued", "Started", "Failed"]


def test_a_run_started_here_runs_at_once_without_the_queue(rig: Rig) -> None:
    workflow_id = rig.workflow(chain("a", "b"))
    queued = rig.executions.start(OWNER, workflow_id, [{"i": 1}], submit=False).aggregate
    leases = MemoryLeases()

    async def work() -> Execution:
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), rig.queue, leases, concurrency=2)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)  # the worker's loop has started and made its slots
        task = worker.start_here(queued)
        assert task is not None
        ended = await task
        assert await rig.queue.depth() == 0
        stop.set()
        await running
        return ended

    ended = asyncio.run(work())
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [{"i": 1, "m": True, "a": True, "b": True}]
    assert rig.executions.get(OWNER, queued.id).status is ExecutionStatus.SUCCESS
    # Never taken: a run started here takes its lease at its first renewal, and this one ended
    # before (see the next test).
    assert asyncio.run(leases.held([queued.id])) == set()


def test_a_run_started_here_takes_its_lease_only_if_it_outlives_a_renewal(
    rig: Rig, redis_url: str
) -> None:
    """A run started here that ends before its first renewal never asks Redis for a lease (a
    round trip saved per run), and a late delivery of it is skipped as ended, not run again; one
    that goes on takes its lease at the first renewal, keeps it, and gives it back if it does
    not end."""
    rig.behaviour.hang.add("h")
    workflow_id = rig.workflow(chain("a"))
    ended = rig.executions.start(OWNER, workflow_id, [{}], submit=False).aggregate
    going = rig.executions.start(OWNER, rig.workflow(chain("h")), [{}], submit=False).aggregate

    async def work() -> tuple[set[str], set[str], set[str]]:
        async with on_redis(redis_url) as (queue, leases):
            stop = asyncio.Event()
            worker = Worker(
                rig.make_engine("w"), queue, leases, concurrency=2, keep_alive_seconds=1.5
            )
            running = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0)  # the worker's loop has started and made its slots
            task, hanging = worker.start_here(ended), worker.start_here(going)
            assert task is not None
            assert hanging is not None
            assert (await task).status is ExecutionStatus.SUCCESS
            at_first = await leases.held([ended.id, going.id])
            deadline = asyncio.get_running_loop().time() + 10
            while not await leases.held([going.id]):  # until its first renewal
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            later = await leases.held([ended.id, going.id])
            queue.submit(ended.id, 0)  # a late duplicate
            while await queue.depth():
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            hanging.cancel()  # the worker stops the run that did not end
            with contextlib.suppress(asyncio.CancelledError):
                await hanging
            stop.set()
            await running
            return at_first, later, await leases.held([ended.id, going.id])

    at_first, later, at_last = asyncio.run(work())
    assert (at_first, later, at_last) == (set(), {going.id}, set())
    assert rig.events(ended.id).count("Started") == 1
    assert rig.behaviour.calls.get("a") == 1


def test_a_run_started_here_with_no_slot_free_waits_its_turn_in_the_queue_unread(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot, taken by a run that waits for `release`: a run started here waits in the
    in-process queue (its depth shows it), then runs from the aggregate and definition given,
    read by nobody."""
    busy = rig.executions.start(OWNER, rig.workflow(chain("h")), [{}], submit=False).aggregate
    workflow_id = rig.workflow(chain("a"))
    later = rig.executions.start(OWNER, workflow_id, [{"i": 2}], submit=False).aggregate
    _, runnable = rig.workflows.runnable(workflow_id, test=False)
    loaded: list[str] = []
    load = rig.executions.app.load
    monkeypatch.setattr(
        rig.executions.app, "load", lambda given, *a: (loaded.append(given), load(given, *a))[1]
    )

    async def work() -> tuple[bool, int, Execution]:
        release = asyncio.Event()
        rig.behaviour.rendezvous.update(h=asyncio.Event(), release=release)
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), rig.queue, MemoryLeases(), concurrency=1)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        assert worker.start_here(busy) is not None
        await asyncio.sleep(0.1)  # it took the only slot
        takes = worker.takes_here()
        waiting = worker.start_here(later, runnable.definition)
        assert waiting is not None
        depth = await rig.queue.depth()
        release.set()  # the slot frees
        ended = await asyncio.wait_for(waiting, 10)
        stop.set()
        await running
        return takes, depth, ended

    takes, depth, ended = asyncio.run(work())
    assert (takes, depth) == (True, 1)
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [{"i": 2, "m": True, "a": True}]
    assert later.id not in loaded
    assert rig.executions.get(OWNER, later.id).status is ExecutionStatus.SUCCESS


def in_process_worker(
    rig: Rig, concurrency: int, unsaved_wait: float, checkpoint_seconds: float = 0.1
) -> Worker:
    """A worker `w` on the rig's in-process queue."""
    return Worker(
        rig.make_engine("w", checkpoint_seconds=checkpoint_seconds),
        rig.queue,
        MemoryLeases(),
        concurrency=concurrency,
        unsaved_wait_seconds=unsaved_wait,
    )


def slot_taken_then(
    rig: Rig, hold: float, *, unsaved_wait: float = 0.1, stop_first: bool = False
) -> tuple[Execution, asyncio.Future[Execution] | None, list[str]]:
    """One slot, taken by a run that waits; a webhook's run given unsaved (saved with its run)
    waits for the slot for `hold` seconds, unsaved for at most `unsaved_wait`; then the slot
    frees (or, `stop_first`, the worker stops). The run given, what became of its caller's
    future, and its events meanwhile."""
    busy, later, definition = busy_and_given(rig)

    async def work() -> tuple[asyncio.Future[Execution] | None, list[str]]:
        release = asyncio.Event()
        if stop_first:
            rig.behaviour.hang.add("h")
        else:
            rig.behaviour.rendezvous.update(h=asyncio.Event(), release=release)
        stop = asyncio.Event()
        worker = in_process_worker(rig, 1, unsaved_wait)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        assert worker.start_here(busy) is not None
        await asyncio.sleep(0.1)  # it took the only slot
        waiting = worker.start_here(later, definition)
        await asyncio.sleep(hold)
        meanwhile = await asyncio.to_thread(rig.events, later.id)
        if stop_first:
            stop.set()
            await asyncio.wait_for(running, 5)
            return waiting, meanwhile
        release.set()
        assert waiting is not None
        await asyncio.wait_for(waiting, 10)
        stop.set()
        await running
        return waiting, meanwhile

    waiting, meanwhile = asyncio.run(work())
    return later, waiting, meanwhile


def test_a_run_given_unsaved_that_waits_for_a_slot_is_saved_once_it_waited_a_while(
    rig: Rig,
) -> None:
    """A webhook's lastNode run waits for a slot unsaved for a while only: then its Queued
    event is saved alone, and the rest with the run."""
    later, waiting, meanwhile = slot_taken_then(rig, 0.6)
    assert meanwhile == ["Queued"]
    assert waiting is not None
    assert waiting.result().status is ExecutionStatus.SUCCESS
    assert rig.saves.of(later.id) == [1, waiting.result().version]
    assert rig.executions.get(OWNER, later.id).status is ExecutionStatus.SUCCESS


def test_a_run_given_unsaved_that_gets_a_slot_within_a_checkpoints_time_is_saved_once(
    rig: Rig,
) -> None:
    later, waiting, meanwhile = slot_taken_then(rig, 0.3, unsaved_wait=5)
    assert meanwhile == []
    assert waiting is not None
    assert rig.saves.of(later.id) == [waiting.result().version]  # Queued with the rest
    assert rig.events(later.id) == [
        "Queued",
        "Started",
        "NodeSucceeded",
        "NodeSucceeded",
        "Succeeded",
    ]


def test_a_worker_stopping_leaves_a_run_it_saved_while_it_waited_queued(rig: Rig) -> None:
    """Saved while it waited: it stays on record QUEUED (the reconciler queues it again), so
    its caller is not told that nothing of it was kept (Execution.never_saved)."""
    later, waiting, meanwhile = slot_taken_then(rig, 0.6, stop_first=True)
    assert meanwhile == ["Queued"]
    assert waiting is not None
    assert waiting.cancelled()
    assert not later.never_saved
    assert rig.executions.get(OWNER, later.id).status is ExecutionStatus.QUEUED
    assert rig.behaviour.calls.get("a") is None


def test_a_worker_stopping_while_it_saves_a_waiting_run_ends_the_save_first(
    rig: Rig, database_url: str
) -> None:
    """The save of a run that waited too long is under way when the worker is told to stop:
    the worker waits for it, so its caller, told the run is still on record, is right."""
    rig.behaviour.hang.add("h")
    busy, later, definition = busy_and_given(rig)

    async def work() -> tuple[bool, asyncio.Future[Execution]]:
        stop = asyncio.Event()
        worker = in_process_worker(rig, 1, 0.1)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        assert worker.start_here(busy) is not None
        await asyncio.sleep(0.1)  # it took the only slot
        with psycopg.connect(database_url) as holder:
            # Saves wait for this lock: the waiting run's save starts and cannot end.
            holder.execute("LOCK TABLE executions_events IN SHARE ROW EXCLUSIVE MODE")
            waiting = worker.start_here(later, definition)
            assert waiting is not None
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.sleep(0.3)
            stopped_before_the_save = running.done()
        await asyncio.wait_for(running, 10)  # the lock is gone with its transaction
        return stopped_before_the_save, waiting

    stopped_before_the_save, waiting = asyncio.run(work())
    assert stopped_before_the_save is False
    assert waiting.cancelled()
    assert not later.never_saved
    assert rig.executions.get(OWNER, later.id).status is ExecutionStatus.QUEUED


def test_a_run_given_unsaved_whose_free_slot_another_took_first_waits_as_one_given_none(
    rig: Rig,
) -> None:
    """Two runs given in the same turn of the loop both saw the one slot free (of two: the
    worker's own loop holds the other while it waits for the queue): the second waits for a
    slot unsaved for `unsaved_wait_seconds`, then saved, as a run that found none free does."""
    busy, later, definition = busy_and_given(rig)

    async def work() -> tuple[list[str], Execution]:
        release = asyncio.Event()
        rig.behaviour.rendezvous.update(h=asyncio.Event(), release=release)
        stop = asyncio.Event()
        worker = in_process_worker(rig, 2, 0.1, checkpoint_seconds=5)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        first = worker.start_here(busy)
        second = worker.start_here(later, definition)
        assert first is not None
        assert second is not None
        await asyncio.sleep(0.3)
        meanwhile = await asyncio.to_thread(rig.events, later.id)
        release.set()
        ended = await asyncio.wait_for(second, 10)
        stop.set()
        await running
        return meanwhile, ended

    meanwhile, ended = asyncio.run(work())
    assert meanwhile == ["Queued"]
    assert ended.status is ExecutionStatus.SUCCESS
    assert rig.saves.of(later.id) == [1, ended.version]


def test_a_worker_whose_slots_all_hang_stops_and_leaves_the_run_waiting_its_turn_queued(
    rig: Rig,
) -> None:
    rig.behaviour.hang.add("h")
    hanging = rig.executions.start(OWNER, rig.workflow(chain("h")), [{}], submit=False).aggregate
    later = rig.executions.start(OWNER, rig.workflow(chain("a")), [{}], submit=False).aggregate

    async def work() -> bool:
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), rig.queue, MemoryLeases(), concurrency=1)
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        assert worker.start_here(hanging) is not None
        await asyncio.sleep(0.1)
        waiting = worker.start_here(later)
        assert waiting is not None
        stop.set()
        await asyncio.wait_for(running, 5)
        return waiting.cancelled()

    assert asyncio.run(work()) is True
    assert rig.executions.get(OWNER, later.id).status is ExecutionStatus.QUEUED
    assert rig.behaviour.calls.get("a") is None


def test_a_worker_takes_runs_here_only_while_it_runs_and_runs_nothing_here_once_stopped(
    rig: Rig,
) -> None:
    later = rig.executions.start(OWNER, rig.workflow(chain("a")), [{}], submit=False).aggregate

    async def work() -> tuple[bool, bool, bool]:
        stop = asyncio.Event()
        worker = Worker(rig.make_engine("w"), rig.queue, MemoryLeases(), concurrency=2)
        before = worker.takes_here()
        running = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0)
        during = worker.takes_here()
        stop.set()
        await running
        assert worker.start_here(later) is None
        return before, during, worker.takes_here()

    assert asyncio.run(work()) == (False, True, False)
