"""Helpers for integration tests: seeding workflows and reading tables back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.sealing import CredentialSealer
from application.credentials.vault import CredentialVault
from application.crypto import KeyRing
from application.event_chain import SealRound, seal_all
from application.eventstore import EventMetadata, event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, EngineLimits, WorkerServices
from application.executions.nodes import RUNTIMES, RuntimeLimits, http_client
from application.identity.personal_data import PersonalData
from application.ids import new_id
from application.notifications.app import NotificationsApp
from application.notifications.store import Notifier
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionMode, Item
from projections.identity import key_ring_in_use, use_key_ring
from projections.projector import Projector
from projections.runner import ProjectionRunner
from tests.loopback import LOOPBACK_EGRESS

GRAPH = {"nodes": [{"id": "a", "type": "manual_trigger"}], "connections": []}


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """For what projectors do in the background: poll until true, fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def drain(url: str, projector: Projector, batch_size: int = 500) -> None:
    """Apply every pending event of the projector, `batch_size` per application and batch."""
    runner = ProjectionRunner(projector, batch_size=batch_size)
    with psycopg.connect(url, autocommit=True) as conn:
        while (batch := runner.run_batch(conn)) is not None and batch.total:
            pass


@contextmanager
def notifier_for(url: str, pool: Any) -> Iterator[Notifier]:
    """A Notifier on the database at `url` sealing with the projectors' master key ring (so they
    can open what it seals): the one in use in this process (projectors of an API started by
    other tests may be running on it), else a new one."""
    ring = key_ring_in_use()
    if ring is None:
        ring = KeyRing.parse(KeyRing.generate())
        use_key_ring(ring)
    app = NotificationsApp(env=event_store_env(url))
    try:
        yield Notifier(app, PersonalData(ring, pool))
    finally:
        app.close()


def table_contents(url: str, table: str) -> list[Any]:
    """Every row of a table as JSON, in a stable order, for whole-table comparisons."""
    return [
        r[0] for r in rows(url, f"SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text")
    ]


def populate(service: WorkflowService, caller: Caller, count: int) -> int:
    """`count` workflows with a few events each; returns the head position."""
    position = 0
    for i in range(count):
        workflow = service.create(caller, name=f"wf {i}", definition=GRAPH, tags=[f"t{i % 3}"])
        wid = workflow.aggregate.id
        service.update(caller, wid, {"name": f"wf {i} renamed", "settings": {"timeout": i}})
        position = (
            service.activate(caller, wid).position
            if i % 2
            else service.archive(caller, wid).position
        )
    return position


def sealed(url: str) -> SealRound:
    """Seal every event of the database's logs into the hash chain, as `a2n audit seal` does."""
    with psycopg.connect(url, autocommit=True) as conn:
        done = seal_all(conn)
    assert done is not None
    return done


def poison(url: str, workflow_id: str) -> int:
    """Append an event the workflows projector cannot apply (a DetailsChanged without changes),
    as a buggy writer might have; returns its position."""
    version = rows(
        url,
        "SELECT max(originator_version) FROM workflows_events WHERE originator_id = %s",
        (workflow_id,),
    )[0][0]
    state = json.dumps(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-25T10:00:00+00:00"},
            "_meta": {},
        }
    ).encode()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "INSERT INTO workflows_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s) RETURNING notification_id",
            (workflow_id, version + 1, "domain.workflows.workflow:Workflow.DetailsChanged", state),
        ).fetchone()
    assert row is not None
    return int(row[0])


CLI_KEYS = {
    "A2N_SECRET_KEY": "cli-test-secret-key-0123456789abcdefghijkl",
    "A2N_MASTER_KEYS": KeyRing.generate(),
}
"""Keys for `a2n` subprocesses, so none generates a keys file inside the checkout."""


RUN_NODES = [
    {"id": "start", "name": "Start", "type": "manual_trigger"},
    {"id": "work", "name": "Work", "type": "set"},
    {"id": "after", "name": "After", "type": "noop"},
]
"""The nodes every recorded run reaches, in definition order."""
Outcome = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"]


@dataclass(frozen=True)
class RecordedRun:
    id: str
    position: int
    """Position reached in the Executions log."""


def record_run(
    app: ExecutionsApp,
    workflow_id: str,
    user_id: str,
    outcome: Outcome = "SUCCESS",
    *,
    retries: int = 0,
    mode: ExecutionMode = ExecutionMode.MANUAL,
    version: int = 1,
    at_once: bool = False,
) -> RecordedRun:
    """Record one run of `workflow_id` by `user_id` straight through the Execution aggregate,
    as the engine would: `start` succeeds, `work` is retried `retries` times and then succeeds
    (SUCCESS), fails (FAILED) or is still running when the run times out, is cancelled or is
    left RUNNING; `after` is skipped on success. Timings are fixed: 5 ms for `start`, 20 ms per
    attempt of `work`, 100 ms for the run. With `at_once`, the attempts that succeed are one
    NodeSucceeded each, recording their start too (as the engine records a fast node)."""
    meta = EventMetadata(user_id, correlation_id="req-run", ip="192.0.2.9", user_agent="pytest")
    execution = Execution.queue(
        execution_id=new_id(),
        workflow_id=workflow_id,
        workflow_version=version,
        user_id=user_id,
        mode=mode,
        start_node_id="start",
        input_items=[{"n": 1}],
        trigger_data={"source": "test"},
    )
    position = app.record(meta, execution)
    if outcome == "QUEUED":
        return RecordedRun(execution.id, position)
    execution.start("worker-1", RUN_NODES)

    def succeed(node_id: str, outputs: list[Item], ms: int, lines: list[dict[str, str]]) -> None:
        if at_once:
            execution.node_started_and_succeeded(node_id, 1, {"output": outputs}, ms, lines)
        else:
            execution.node_succeeded(node_id, {"output": outputs}, ms, lines)

    if not at_once:
        execution.node_started("start", 1)
    line = {"level": "debug", "message": "started by hand", "runBy": "test"}
    succeed("start", [{"n": 1}], 5, [line])
    for _ in range(retries):
        execution.node_started("work", 1)
        execution.node_retrying("work", 50, {"message": "rate limited"}, 20, [])
    if outcome != "SUCCESS" or not at_once:
        execution.node_started("work", 1)
    if outcome == "SUCCESS":
        warning = {"level": "warning", "message": "slow answer"}
        succeed("work", [{"n": 1}, {"n": 2}], 20, [warning])
        execution.node_skipped("after", "no input items")
        execution.succeed([{"n": 1}, {"n": 2}], 100)
    elif outcome == "FAILED":
        execution.node_failed("work", {"message": "boom", "type": "ValueError"}, 20, [])
        execution.fail("node Work failed", {"nodeId": "work"}, 100)
    elif outcome == "TIMEOUT":
        execution.time_out(90, 100)
    elif outcome == "CANCELLED":
        execution.cancel("stopped by the user", 100)
    return RecordedRun(execution.id, app.record(meta, execution))


def credential_vault(database_url: str) -> CredentialVault:
    """A vault on the database's credentials store under a fresh master key (for engines in
    tests whose runs use no credential); close `vault.app` afterwards."""
    app = CredentialsApp(env=event_store_env(database_url, pool_size=1))
    return CredentialVault(app, CredentialSealer(KeyRing.parse(KeyRing.generate())))


def run_with_built_in_nodes(
    executions: ExecutionService,
    workflows: WorkflowService,
    execution_id: str,
    worker: str,
    vault: CredentialVault,
) -> Execution:
    """Run a queued execution to its end, as worker `worker` with the built-in node runtimes."""

    async def run() -> Execution:
        async with http_client(LOOPBACK_EGRESS) as client:
            engine = Engine(
                executions.app,
                workflows.version_definition,
                RUNTIMES,
                WorkerServices(client, RuntimeLimits(), executions, vault),
                worker,
                EngineLimits(heartbeat_seconds=0.05),
            )
            return await engine.run(execution_id)

    return asyncio.run(run())
