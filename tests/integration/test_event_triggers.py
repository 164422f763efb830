"""The event trigger manager on real PostgreSQL: which endings start which runs, as whom, with
what item, and that each ending starts each of its runs once, across crashes, restarts and
managers running side by side."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from application.caller import Caller
from application.eventstore import EventMetadata
from application.executions import commands, event_triggers
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.event_triggers import MAX_CHAIN_DEPTH, EventTriggers
from application.executions.queue import MemoryQueue
from application.ids import new_id
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionMode
from projections import executions, workflows
from projections.event_triggers import NAME, process_manager
from projections.runner import ProjectionRunner
from projections.supervisor import ProjectionSupervisor
from tests.integration.helpers import (
    Outcome,
    credential_vault,
    drain,
    record_run,
    rows,
    run_with_built_in_nodes,
    wait_until,
)

ALICE = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61"
BOB = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"
WATCHED: dict[str, Any] = {
    "nodes": [
        {"id": "start", "name": "Start", "type": "manual_trigger"},
        {"id": "work", "name": "Work", "type": "set", "config": {"fields": {"a": 1}}},
    ],
    "connections": [{"source": "start", "target": "work"}],
}


def listener(config: dict[str, Any]) -> dict[str, Any]:
    """A definition that starts at an event trigger with `config`."""
    return {
        "nodes": [
            {"id": "on", "name": "On", "type": "event_trigger", "config": config},
            {"id": "note", "name": "Note", "type": "noop"},
        ],
        "connections": [{"source": "on", "target": "note"}],
    }


@dataclass
class Installation:
    url: str
    workflows: WorkflowService
    app: ExecutionsApp
    queue: MemoryQueue = field(default_factory=MemoryQueue)

    def manager(self) -> EventTriggers:
        """A manager of its own, as a process that starts (or restarts) would have."""
        return EventTriggers(ExecutionService(self.app, self.workflows, self.queue))

    def workflow(
        self, owner: str, definition: dict[str, Any], *, active: bool = True, **settings: Any
    ) -> str:
        caller = Caller(owner)
        if settings:
            definition = {**definition, "settings": settings}
        made = self.workflows.create(caller, name="w", definition=definition).aggregate.id
        self.workflows.publish_version(caller, made, 1)
        if active:
            self.workflows.activate(caller, made)
        drain(self.url, workflows.projector)
        return made

    def ending(
        self, workflow_id: str, user_id: str, outcome: Outcome = "SUCCESS", **kw: Any
    ) -> str:
        return record_run(self.app, workflow_id, user_id, outcome, **kw).id

    def handle(self, manager: EventTriggers | None = None) -> None:
        """Let a manager apply every ending recorded so far."""
        drain(self.url, process_manager(manager or self.manager()))

    def runs_of(self, workflow_id: str, mode: str | None = None) -> list[dict[str, Any]]:
        """The workflow's runs (of one mode), oldest first."""
        drain(self.url, executions.projector)
        with psycopg.connect(self.url, row_factory=dict_row) as conn:
            found = conn.execute(
                "SELECT id, user_id, mode, status::text, trigger_id, trigger_data, input_data "
                "FROM execution WHERE workflow_id = %s ORDER BY id",
                (workflow_id,),
            ).fetchall()
        return [run for run in found if mode in (None, run["mode"])]

    def trigger_id(self, workflow_id: str) -> str:
        return str(
            rows(
                self.url, "SELECT id FROM workflow_trigger WHERE workflow_id = %s", (workflow_id,)
            )[0][0]
        )

    def tracked(self) -> int:
        found = rows(
            self.url, "SELECT position FROM projection_tracking WHERE projector = %s", (NAME,)
        )
        return int(found[0][0]) if found else 0


@pytest.fixture
def site(
    fresh_database_url: str,
    service_for: Callable[[str], WorkflowService],
    executions_for: Callable[[str], ExecutionsApp],
) -> Installation:
    url = fresh_database_url
    return Installation(url, service_for(url), executions_for(url))


def test_an_ending_starts_the_active_workflows_waiting_for_its_status(site: Installation) -> None:
    watched = site.workflow(ALICE, WATCHED)
    on_success = site.workflow(BOB, listener({"workflowId": watched, "status": "SUCCESS"}))
    on_failure = site.workflow(ALICE, listener({"workflowId": watched, "status": "FAILED"}))
    inactive = site.workflow(
        ALICE, listener({"workflowId": watched, "status": "SUCCESS"}), active=False
    )
    with psycopg.connect(site.url) as conn:  # BOB may see the watched workflow's runs
        conn.execute(
            "INSERT INTO workflow_share (id, workflow_id, user_id, permission, shared_by, "
            "created_at, updated_at) VALUES (%s, %s, %s, 'VIEW', %s, now(), now())",
            (new_id(), watched, BOB, ALICE),
        )
    ended = site.ending(watched, ALICE, "SUCCESS")
    site.handle()

    assert site.runs_of(on_failure) == []
    assert site.runs_of(inactive) == []
    [started] = site.runs_of(on_success)
    assert started["user_id"] == BOB  # the started workflow's owner
    assert started["mode"] == "event"
    assert started["trigger_id"] == site.trigger_id(on_success)
    [item] = started["input_data"]
    assert item["executionId"] == ended
    assert item["workflowId"] == watched
    assert item["status"] == "SUCCESS"
    assert item["error"] is None
    assert item["mode"] == "manual"
    assert item["endTime"].endswith("+00:00")
    assert started["trigger_data"]["chainDepth"] == 1
    assert started["trigger_data"]["source"] == "event_trigger"
    queued = site.app.load(started["id"], Execution)
    assert queued.start_node_id == "on"
    assert queue_depth(site.queue) == 1

    failed = site.ending(watched, ALICE, "FAILED")
    site.handle()
    [on_fail] = site.runs_of(on_failure)
    assert on_fail["input_data"][0]["executionId"] == failed
    assert on_fail["input_data"][0]["error"] == {
        "message": "node Work failed",
        "nodeId": "work",
    }
    assert len(site.runs_of(on_success)) == 1


def test_an_activation_saved_before_a_run_ended_counts_while_its_projection_catches_up(
    site: Installation,
) -> None:
    """The manager reads workflow_trigger, the workflows projector's: it waits for that
    projector to reach what the workflows log held, instead of missing a listener activated a
    moment before the run ended."""
    watched = site.workflow(ALICE, WATCHED)
    waiting = site.workflow(
        ALICE, listener({"workflowId": watched, "status": "SUCCESS"}), active=False
    )
    site.workflows.activate(Caller(ALICE), waiting)  # saved; its projection still to come
    site.ending(watched, ALICE)
    catch_up = threading.Timer(0.3, drain, (site.url, workflows.projector))
    catch_up.start()
    began = time.monotonic()
    site.handle()
    catch_up.join()
    assert time.monotonic() - began >= 0.3
    assert len(site.runs_of(waiting, "event")) == 1


def test_endings_are_matched_as_they_are_once_the_triggers_stay_behind(
    site: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workflows projector that is stopped or parked must not stop event triggers: past the
    wait, the endings are matched against what workflow_trigger holds."""
    monkeypatch.setattr(event_triggers, "TRIGGERS_WAIT_SECONDS", 0.2)
    watched = site.workflow(ALICE, WATCHED)
    waiting = site.workflow(
        ALICE, listener({"workflowId": watched, "status": "SUCCESS"}), active=False
    )
    site.workflows.activate(Caller(ALICE), waiting)  # never projected here
    ended = record_run(site.app, watched, ALICE)
    site.handle()
    assert site.tracked() >= ended.position
    assert site.runs_of(waiting, "event") == []


def test_the_owner_must_be_able_to_see_the_run_that_ended(site: Installation) -> None:
    watched = site.workflow(ALICE, WATCHED)
    snoop = site.workflow(BOB, listener({"workflowId": watched, "status": "SUCCESS"}))
    site.ending(watched, ALICE)
    site.handle()
    assert site.runs_of(snoop) == []
    site.ending(watched, BOB)  # a run BOB started himself (he held EXECUTE once, say)
    site.handle()
    assert len(site.runs_of(snoop)) == 1


def test_each_ending_starts_its_runs_once_across_a_crash_and_a_restart(
    site: Installation,
) -> None:
    watched = site.workflow(ALICE, WATCHED)
    waiting = site.workflow(ALICE, listener({"workflowId": watched, "status": "SUCCESS"}))
    site.ending(watched, ALICE)
    crashing = ProjectionRunner(process_manager(site.manager()))
    # The runs are started, then the process dies before its position is committed.
    with (
        psycopg.connect(site.url) as conn,
        conn.transaction(force_rollback=True),
        conn.cursor() as cur,
    ):
        assert crashing.apply_pending(cur).total > 0
    assert site.tracked() == 0
    assert len(site.runs_of(waiting)) == 1

    site.handle()  # a new process takes over from the old position
    assert len(site.runs_of(waiting)) == 1
    assert site.tracked() > 0
    assert queue_depth(site.queue) == 2  # handed to the queue again, in case it was lost

    second = site.ending(watched, ALICE)
    site.handle()
    site.handle()
    runs = site.runs_of(waiting)
    assert len(runs) == 2
    assert runs[-1]["input_data"][0]["executionId"] == second


def test_the_same_ending_handled_twice_asks_for_the_same_run(site: Installation) -> None:
    watched = site.workflow(ALICE, WATCHED)
    waiting = site.workflow(ALICE, listener({"workflowId": watched, "status": "CANCELLED"}))
    ended = site.ending(watched, ALICE, "CANCELLED")
    final = list(site.app.history(ended))[-1]
    with psycopg.connect(site.url) as conn, conn.cursor() as cur:
        first = site.manager().execution_ended(cur, final)
        again = site.manager().execution_ended(cur, final)
    assert first == again
    assert len(first) == 1
    assert [r["id"] for r in site.runs_of(waiting)] == first


def test_two_managers_at_once_start_each_run_once(site: Installation) -> None:
    watched = site.workflow(ALICE, WATCHED)
    waiting = site.workflow(ALICE, listener({"workflowId": watched, "status": "SUCCESS"}))
    supervisors = [
        ProjectionSupervisor(site.url, [process_manager(site.manager())], poll_interval=0.05)
        for _ in range(2)
    ]
    for supervisor in supervisors:
        supervisor.start()
    try:
        endings = {site.ending(watched, ALICE) for _ in range(20)}
        wait_until(lambda: len(site.runs_of(waiting)) >= 20)
        time.sleep(0.3)
    finally:
        for supervisor in supervisors:
            supervisor.stop()
    started = site.runs_of(waiting)
    assert sorted(r["input_data"][0]["executionId"] for r in started) == sorted(endings)
    assert {supervisor.states[NAME].status for supervisor in supervisors} <= {
        "running",
        "standby",
        "stopped",
    }


def test_a_workflow_triggered_by_its_own_end_stops_after_the_chain_limit(
    site: Installation,
) -> None:
    made = site.workflows.create(Caller(ALICE), name="loop", definition=WATCHED).aggregate.id
    site.workflows.replace_definition(
        Caller(ALICE), made, listener({"workflowId": made, "status": "SUCCESS"})
    )
    site.workflows.activate(Caller(ALICE), made)
    drain(site.url, workflows.projector)
    site.ending(made, ALICE, "SUCCESS")
    for _ in range(MAX_CHAIN_DEPTH + 3):
        site.handle()
        for run in site.runs_of(made):
            if run["status"] == "QUEUED":
                finish(site.app, run["id"])
    started = site.runs_of(made, "event")
    depths = sorted(r["trigger_data"]["chainDepth"] for r in started)
    assert depths == list(range(1, MAX_CHAIN_DEPTH + 1))


def test_named_events_fire_for_runs_of_other_workflows_that_no_event_started(
    site: Installation,
) -> None:
    alerts = site.workflow(ALICE, listener({"event": "execution.failed"}))
    anything = site.workflow(ALICE, listener({"event": "execution.ended"}))
    mine = site.workflow(ALICE, WATCHED)
    theirs = site.workflow(BOB, WATCHED)
    failed = site.ending(mine, ALICE, "FAILED")
    site.ending(theirs, BOB, "FAILED")  # ALICE may not see it
    site.ending(alerts, ALICE, "FAILED")  # the listener's own run
    site.ending(mine, ALICE, "SUCCESS")
    site.ending(mine, ALICE, "TIMEOUT")
    site.handle()
    [alert] = site.runs_of(alerts, "event")
    assert alert["input_data"][0]["executionId"] == failed
    assert alert["trigger_data"]["event"] == "execution.failed"
    # execution.ended: the three endings of `mine` and the alert's own ending above
    assert len(site.runs_of(anything, "event")) == 4
    for run in site.runs_of(alerts, "event") + site.runs_of(anything, "event"):
        if run["status"] == "QUEUED":
            finish(site.app, run["id"], fail=True)
    site.handle()  # runs that events started fire no named event
    assert len(site.runs_of(alerts, "event")) == 1
    assert len(site.runs_of(anything, "event")) == 4


def test_a_failed_or_timed_out_run_starts_its_error_workflow(site: Installation) -> None:
    handler = site.workflow(ALICE, WATCHED, active=False)  # need not be active, as in n8n
    failing = site.workflow(BOB, WATCHED, errorWorkflow=handler)
    site.ending(failing, BOB, "FAILED")
    site.handle()
    assert site.runs_of(handler) == []  # refused: BOB holds no EXECUTE on it

    own = site.workflow(ALICE, WATCHED, errorWorkflow=handler)
    failed = site.ending(own, BOB, "FAILED")  # started by someone else: the owner's choice runs
    timed_out = site.ending(own, ALICE, "TIMEOUT")
    site.ending(own, ALICE, "SUCCESS")
    site.ending(own, ALICE, "CANCELLED")
    site.ending(own, ALICE, "FAILED", mode=ExecutionMode.TEST)
    site.handle()
    started = site.runs_of(handler)
    assert [r["input_data"][0]["executionId"] for r in started] == [failed, timed_out]
    assert {r["user_id"] for r in started} == {ALICE}
    assert {r["trigger_data"]["source"] for r in started} == {"error_workflow"}
    assert started[1]["input_data"][0]["error"] == {
        "message": "the execution took longer than its timeout of 90 ms"
    }
    assert site.app.load(started[0]["id"], Execution).start_node_id == "start"


def test_an_ending_of_an_unknown_workflow_or_version_is_passed_by(site: Installation) -> None:
    watched = site.workflow(ALICE, WATCHED)
    site.ending(new_id(), ALICE, "FAILED")
    site.ending(watched, ALICE, "TIMEOUT", version=7)
    site.handle()
    assert site.tracked() == site.app.head_position()


def test_a_runs_origin_is_read_once_and_kept_within_a_bound(
    site: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both process managers ask for an ended run's origin: the second asks memory, not the
    event store; the oldest origins make room once the bound is reached."""
    monkeypatch.setattr(commands, "ORIGINS_KEPT", 1)
    watched = site.workflow(ALICE, WATCHED)
    first = site.ending(watched, BOB, "FAILED")
    second = site.ending(watched, ALICE, "SUCCESS", mode=ExecutionMode.TEST)
    service = ExecutionService(site.app, site.workflows, site.queue)
    origin = service.origin(first)
    assert (origin.workflow_id, origin.workflow_version, origin.user_id) == (watched, 1, BOB)
    assert (origin.mode, origin.chain_depth) == (ExecutionMode.MANUAL, 0)
    assert service.origin(first) is origin  # kept
    assert service.origin(second).mode is ExecutionMode.TEST
    again = service.origin(first)  # pushed out by the second: read again, the same facts
    assert again is not origin
    assert again == origin


def test_a_run_queued_here_has_its_origin_known_without_reading(
    site: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run this service queued (a webhook call's, in `a2n up`) ends in the same process: its
    origin comes from memory, whereas the event store is read for one queued elsewhere."""
    watched = site.workflow(ALICE, WATCHED)
    service = ExecutionService(site.app, site.workflows, site.queue)
    chained = {commands.CHAIN_DEPTH: 2}
    here = service.start(Caller(ALICE), watched, [{}], trigger_data=chained).aggregate.id
    elsewhere = site.ending(watched, BOB, "SUCCESS")
    reads: list[str] = []
    get = site.app.events.get

    def counted(originator_id: str, **kw: Any) -> Any:
        reads.append(originator_id)
        return get(originator_id, **kw)

    monkeypatch.setattr(site.app.events, "get", counted)
    origin = service.origin(here)
    assert (origin.workflow_id, origin.workflow_version, origin.user_id) == (watched, 1, ALICE)
    assert (origin.mode, origin.chain_depth) == (ExecutionMode.MANUAL, 2)
    assert service.origin(elsewhere).user_id == BOB
    assert reads == [elsewhere]


def test_a_run_this_process_worked_has_its_origin_known_without_reading(
    site: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`a2n work` runs what `a2n serve` queued: its worker loads the run, and the managers of
    the same process, asking for the run's origin when it ends, need no second read."""
    watched = site.workflow(ALICE, WATCHED)
    elsewhere = ExecutionService(site.app, site.workflows, site.queue)
    queued = elsewhere.start(Caller(ALICE), watched, [{}]).aggregate.id
    here = ExecutionService(site.app, site.workflows, site.queue)
    vault = credential_vault(site.url)
    try:
        ended = run_with_built_in_nodes(here, site.workflows, queued, "worker-here", vault)
    finally:
        vault.app.close()
    assert ended.is_final
    reads: list[str] = []
    monkeypatch.setattr(site.app.events, "get", lambda *a, **kw: reads.append(a[0]))
    origin = here.origin(queued)
    assert (origin.workflow_id, origin.workflow_version, origin.user_id) == (watched, 1, ALICE)
    assert origin.mode is ExecutionMode.MANUAL
    assert reads == []


def finish(app: ExecutionsApp, execution_id: str, *, fail: bool = False) -> None:
    """End a queued run the way a worker would: its start node, then success (or failure)."""
    execution = app.load(execution_id, Execution)
    start = execution.start_node_id
    execution.start("worker-test", [{"id": start, "name": start, "type": "trigger"}])
    execution.node_started(start, 1)
    if fail:
        execution.node_failed(start, {"message": "no"}, 1, [])
        execution.fail("node failed: no", {"nodeId": start}, 2)
    else:
        execution.node_succeeded(start, {"output": []}, 1, [])
        execution.succeed([], 2)
    app.record(EventMetadata("worker-test"), execution)


def queue_depth(queue: MemoryQueue) -> int:
    return asyncio.run(queue.depth())
