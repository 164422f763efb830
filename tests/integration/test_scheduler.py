"""The scheduler against the real database: arming with activation, firing cron and interval
schedules (with a clock the tests move), misfires, failed firings, the election of one scheduler
among several and the take-over when the leader's connection dies, and the daily retention.

Each test has a database of its own: the scheduler looks at every schedule of its database.
Projectors are drained by hand (`Rig.project`) where the background ones would run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.event_chain import SealRound, seal
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.queue import MemoryQueue
from application.executions.scheduler import MIN_SLEEP_SECONDS, Leadership, Scheduler
from application.executions.schedules import Change, Outcome, ScheduleService
from application.retention import run_retention
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionMode, ExecutionStatus
from domain.executions.schedule import ExecutionSchedule, schedule_id
from domain.workflows.triggers import trigger_id
from projections import executions, schedules, workflows
from projections.supervisor import ProjectionSupervisor
from tests.integration.helpers import (
    credential_vault,
    drain,
    rows,
    run_with_built_in_nodes,
    wait_until,
)

OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f81", correlation_id="req-scheduler")
T0 = datetime(2026, 3, 2, 7, 59, 50, tzinfo=UTC)


def scheduled(config: dict[str, Any], node_id: str = "tick") -> dict[str, Any]:
    """A definition: a schedule trigger `node_id` with `config`, then a Set node."""
    return {
        "nodes": [
            {"id": node_id, "name": "Tick", "type": "schedule_trigger", "config": config},
            {"id": "mark", "name": "Mark", "type": "set", "config": {"fields": {"ran": True}}},
        ],
        "connections": [{"source": node_id, "target": "mark"}],
    }


@dataclass
class Clock:
    """The scheduler's time, moved by the tests."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Rig:
    url: str
    workflows: WorkflowService
    executions: ExecutionService
    queue: MemoryQueue
    pool: ConnectionPool[Any]
    clock: Clock
    leaders: list[Leadership] = field(default_factory=list)

    def service(self, workflows: WorkflowService | None = None) -> ScheduleService:
        return ScheduleService(
            self.executions,
            workflows or self.workflows,
            misfire_grace=timedelta(seconds=5),
            clock=self.clock,
        )

    def scheduler(self, service: ScheduleService | None = None) -> Scheduler:
        leadership = Leadership(self.url)
        self.leaders.append(leadership)
        return Scheduler(
            service or self.service(),
            self.pool,
            leadership,
            poll_interval=0.05,
            reconcile_interval=0,
        )

    def workflow(self, definition: dict[str, Any], *, active: bool = True) -> str:
        made = self.workflows.create(OWNER, name="scheduled", definition=definition)
        if active:
            self.workflows.activate(OWNER, made.aggregate.id)
        return made.aggregate.id

    def project(self) -> None:
        for projector in (workflows.projector, schedules.projector, executions.projector):
            drain(self.url, projector)

    def row(self, workflow_id: str, node_id: str = "tick") -> dict[str, Any]:
        with psycopg.connect(self.url) as conn, conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(
                "SELECT *, status::text AS status FROM execution_schedule "
                "WHERE workflow_id = %s AND node_id = %s",
                (workflow_id, node_id),
            ).fetchone()
        assert found is not None, "no execution_schedule row"
        return found

    def schedule(self, workflow_id: str, node_id: str = "tick") -> ExecutionSchedule:
        return self.executions.app.load(schedule_id(workflow_id, node_id), ExecutionSchedule)

    def history(self, workflow_id: str, node_id: str = "tick") -> list[str]:
        return [
            type(e).__name__ for e in self.executions.app.history(schedule_id(workflow_id, node_id))
        ]

    def run(self, execution_id: str) -> Execution:
        return self.executions.app.load(execution_id, Execution)

    def queued(self) -> int:
        return asyncio.run(self.queue.depth())


@pytest.fixture
def rig(fresh_database_url: str) -> Iterator[Rig]:
    env = event_store_env(fresh_database_url, pool_size=4)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    service = WorkflowService(workflows_app)
    queue = MemoryQueue()
    pool: ConnectionPool[Any] = ConnectionPool(
        fresh_database_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True
    )
    rig = Rig(
        fresh_database_url,
        service,
        ExecutionService(executions_app, service, queue),
        queue,
        pool,
        Clock(),
    )
    yield rig
    for leadership in rig.leaders:
        leadership.release()
    pool.close()
    workflows_app.close()
    executions_app.close()


def test_activation_arms_the_schedule_and_deactivation_disarms_it(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 60}), active=False)
    scheduler = rig.scheduler()
    rig.project()
    assert scheduler.round().synced == {}, "an inactive workflow has nothing to arm"

    rig.workflows.activate(OWNER, wid)
    rig.project()
    assert scheduler.round().synced == {f"{wid}/tick": Change.ARMED}
    rig.project()
    row = rig.row(wid)
    assert row["status"] == "ARMED"
    assert row["trigger_id"] == trigger_id(wid, "tick")
    assert (row["interval_seconds"], row["misfire"], row["retries"]) == (60, "runOnce", 3)
    assert row["next_run_at"] == T0 + timedelta(seconds=60)
    assert scheduler.round().synced == {}, "in step: nothing to do"

    rig.workflows.deactivate(OWNER, wid)
    rig.project()
    assert scheduler.round().synced == {f"{wid}/tick": Change.DISARMED}
    rig.project()
    row = rig.row(wid)
    assert (row["status"], row["next_run_at"]) == ("DISARMED", None)
    assert row["disarmed_reason"] == "the workflow was deactivated"

    rig.clock.advance(hours=5)
    rig.workflows.activate(OWNER, wid)
    rig.project()
    scheduler.round()
    rig.project()
    assert rig.row(wid)["next_run_at"] == rig.clock.now + timedelta(seconds=60)
    assert rig.queued() == 0, "the hours it was inactive are not caught up"

    rig.workflows.archive(OWNER, wid)
    rig.project()
    scheduler.round()
    rig.project()
    assert rig.row(wid)["disarmed_reason"] == "the workflow was archived"
    assert rig.history(wid) == ["Armed", "Disarmed", "Rearmed", "Disarmed"]


def test_a_published_version_re_arms_or_disarms_its_schedules(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 60}))
    scheduler = rig.scheduler()
    rig.project()
    scheduler.round()

    rig.workflows.replace_definition(OWNER, wid, scheduled({"cron": "*/5 * * * *"}))
    rig.project()
    assert scheduler.round().synced == {}, "a draft changes nothing: the published version runs"
    rig.workflows.publish_version(OWNER, wid, 2)
    rig.project()
    assert scheduler.round().synced == {f"{wid}/tick": Change.ARMED}
    rig.project()
    row = rig.row(wid)
    assert (row["cron"], row["interval_seconds"], row["timezone"]) == ("*/5 * * * *", None, "UTC")
    assert row["next_run_at"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    rig.workflows.replace_definition(OWNER, wid, scheduled({"cron": "*/5 * * * *"}, "other"))
    rig.workflows.publish_version(OWNER, wid, 3)
    rig.project()
    synced = scheduler.round().synced
    assert synced == {f"{wid}/tick": Change.DISARMED, f"{wid}/other": Change.ARMED}
    rig.project()
    assert rig.row(wid)["disarmed_reason"] == "the running version has no such schedule trigger"
    assert rig.row(wid, "other")["status"] == "ARMED"


def test_an_interval_schedule_queues_runs_of_its_trigger_node_as_the_owner(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 30}))
    scheduler = rig.scheduler()
    rig.project()
    scheduler.round()
    rig.project()
    assert scheduler.round().fired == {}, "not due yet"

    first = rig.clock.advance(seconds=30.2)
    fired = scheduler.round().fired
    assert list(fired) == [schedule_id(wid, "tick")]
    result = fired[schedule_id(wid, "tick")]
    assert (result.outcome, result.missed) == (Outcome.FIRED, 0)
    assert result.execution_id is not None
    run = rig.run(result.execution_id)
    assert run.mode is ExecutionMode.SCHEDULE
    assert (run.start_node_id, run.trigger_id) == ("tick", trigger_id(wid, "tick"))
    assert run.user_id == OWNER.user_id
    assert run.input_items == [{"firedAt": first.isoformat()}]
    assert run.trigger_data == {
        "scheduleId": schedule_id(wid, "tick"),
        "dueAt": (T0 + timedelta(seconds=30)).isoformat(),
        "firedAt": first.isoformat(),
        "catchUp": False,
    }
    assert rig.queued() == 1, "handed to the workers' queue"
    assert scheduler.round().fired == {}, "one run per occurrence"

    rig.project()
    row = rig.row(wid)
    assert (row["run_count"], row["last_execution_id"]) == (1, result.execution_id)
    assert row["last_run_at"] == first
    assert row["next_run_at"] == T0 + timedelta(seconds=60)
    (mode, trigger) = rows(
        rig.url, "SELECT mode, trigger_id FROM execution WHERE id = %s", (result.execution_id,)
    )[0]
    assert (mode, trigger) == ("schedule", trigger_id(wid, "tick"))

    rig.clock.advance(seconds=30)
    assert len(scheduler.round().fired) == 1
    assert rig.history(wid) == ["Armed", "Fired", "Fired"]


def test_a_scheduled_run_runs_from_the_schedule_trigger_with_its_firing_time(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 5}))
    service = rig.service()
    assert service.sync(wid, "tick") is Change.ARMED
    fired_at = rig.clock.advance(seconds=5)
    fired = service.fire(schedule_id(wid, "tick"))
    assert fired is not None
    assert fired.execution_id is not None

    vault = credential_vault(rig.url)
    ended = run_with_built_in_nodes(
        rig.executions, rig.workflows, fired.execution_id, "worker-scheduled", vault
    )
    vault.app.close()
    assert ended.status is ExecutionStatus.SUCCESS
    assert ended.output_items == [{"firedAt": fired_at.isoformat(), "ran": True}]


def test_a_cron_schedule_fires_at_its_time_in_its_time_zone(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"cron": "0 9 * * *", "timezone": "Europe/Paris"}))
    service = rig.service()
    service.sync(wid, "tick")
    nine_in_paris = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert rig.schedule(wid).next_run_at == nine_in_paris
    rig.clock.now = nine_in_paris - timedelta(seconds=1)
    assert service.fire(schedule_id(wid, "tick")) is None
    rig.clock.now = nine_in_paris + timedelta(seconds=1)
    fired = service.fire(schedule_id(wid, "tick"))
    assert fired is not None
    assert fired.execution_id is not None
    assert rig.run(fired.execution_id).trigger_data["dueAt"] == nine_in_paris.isoformat()
    assert rig.schedule(wid).next_run_at == nine_in_paris + timedelta(days=1)


@pytest.mark.parametrize(("policy", "runs"), [("runOnce", 1), ("skip", 0)])
def test_runs_missed_while_no_scheduler_ran_follow_the_misfire_policy(
    rig: Rig, policy: str, runs: int
) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 10, "misfire": policy}))
    scheduler = rig.scheduler()
    rig.project()
    scheduler.round()
    rig.project()
    rig.clock.advance(seconds=45)  # down while 10, 20, 30 and 40 s went by
    fired = scheduler.round().fired[schedule_id(wid, "tick")]
    assert fired.missed == 4
    assert fired.outcome is (Outcome.FIRED if runs else Outcome.SKIPPED)
    assert rig.queued() == runs
    assert rig.history(wid) == ["Armed", "Missed", *(["Fired"] * runs)]
    if runs:
        assert fired.execution_id is not None
        data = rig.run(fired.execution_id).trigger_data
        assert (data["catchUp"], data["dueAt"]) == (True, (T0 + timedelta(seconds=40)).isoformat())
    rig.project()
    row = rig.row(wid)
    assert (row["missed_count"], row["run_count"]) == (4, runs)
    assert row["next_run_at"] == T0 + timedelta(seconds=50)
    assert scheduler.round().fired == {}, "caught up"


def test_a_schedule_whose_workflow_changed_is_brought_in_step_instead_of_firing(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 10}))
    service = rig.service()
    service.sync(wid, "tick")
    # Deactivated, and no reconciliation since: the schedule is still armed and comes due.
    rig.workflows.deactivate(OWNER, wid)
    rig.clock.advance(seconds=10)
    fired = service.fire(schedule_id(wid, "tick"))
    assert fired is not None
    assert fired.outcome is Outcome.CHANGED
    assert rig.queued() == 0
    assert rig.schedule(wid).reason == "the workflow was deactivated"


class FlakyWorkflows(WorkflowService):
    """The workflows of the rig, whose event store fails `failures` times to answer which
    definition runs (as it would while PostgreSQL restarts)."""

    def __init__(self, base: WorkflowService, failures: int) -> None:
        super().__init__(base.app, base.limits, base.cache)
        self.failures = failures

    def definition_to_run(self, caller: Caller, workflow_id: str, *, test: bool) -> Any:
        if self.failures:
            self.failures -= 1
            raise psycopg.OperationalError("the database system is starting up")
        return super().definition_to_run(caller, workflow_id, test=test)


def test_a_firing_that_failed_for_a_passing_reason_is_retried(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 3600}))
    flaky = FlakyWorkflows(rig.workflows, failures=2)
    service = ScheduleService(
        ExecutionService(rig.executions.app, flaky, rig.queue), flaky, clock=rig.clock
    )
    service.sync(wid, "tick")
    due = rig.clock.advance(hours=1)
    sid = schedule_id(wid, "tick")
    failed = service.fire(sid)
    assert failed is not None
    assert failed.outcome is Outcome.FAILED
    schedule = rig.schedule(wid)
    assert (schedule.attempts, schedule.retry_at) == (1, due + timedelta(seconds=10))
    rig.clock.now = due + timedelta(seconds=10)
    failed = service.fire(sid)
    assert failed is not None
    assert failed.outcome is Outcome.FAILED
    assert rig.schedule(wid).retry_at == rig.clock.now + timedelta(seconds=20)
    rig.clock.advance(seconds=20)
    fired = service.fire(sid)
    assert fired is not None
    assert fired.outcome is Outcome.FIRED
    assert fired.execution_id is not None
    assert rig.run(fired.execution_id).trigger_data["dueAt"] == due.isoformat()
    assert rig.history(wid) == ["Armed", "FireFailed", "FireFailed", "Fired"]
    failure = next(e for e in rig.executions.app.history(sid) if type(e).__name__ == "FireFailed")
    assert failure.error == "OperationalError", "no server text in the event"


def test_two_schedulers_racing_for_one_occurrence_queue_one_run(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 10}))
    rig.service().sync(wid, "tick")
    rig.clock.advance(seconds=10)
    both_loaded = threading.Barrier(2)

    def clock() -> datetime:
        both_loaded.wait(5)  # each has loaded the same version of the schedule
        return rig.clock.now

    racers = [ScheduleService(rig.executions, rig.workflows, clock=clock) for _ in range(2)]
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.fire(schedule_id(wid, "tick"))))
        for s in racers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r is None for r in results) == [False, True]
    assert rig.queued() == 1
    assert rig.history(wid) == ["Armed", "Fired"]
    assert (
        rows(
            rig.url,
            "SELECT count(*) FROM executions_events WHERE originator_version = 1 AND topic LIKE %s",
            ("%Execution.Queued",),
        )[0][0]
        == 1
    )


def test_one_scheduler_leads_and_another_takes_over_when_its_connection_dies(rig: Rig) -> None:
    wid = rig.workflow(scheduled({"intervalSeconds": 10}))
    rig.project()
    first, second = rig.scheduler(), rig.scheduler()
    first.tick()
    second.tick()
    assert (first.leadership.hold(), second.leadership.hold()) == (True, False)
    rig.project()
    rig.clock.advance(seconds=10)
    second.tick()
    assert rig.queued() == 0, "the standby does not fire"
    first.tick()
    assert rig.queued() == 1

    with psycopg.connect(rig.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first.leadership.backend_pid,))
    rig.project()
    rig.clock.advance(seconds=10)
    wait_until(lambda: second.leadership.hold(), timeout=5)
    assert first.leadership.hold() is False, "its lock went with its connection"
    second.tick()
    assert rig.queued() == 2
    assert rig.history(wid) == ["Armed", "Fired", "Fired"]


def test_a_running_scheduler_fires_on_its_own(rig: Rig) -> None:
    """The loop itself, in real time: a one-second interval schedule fires within seconds."""
    wid = rig.workflow(scheduled({"intervalSeconds": 1}))
    projectors = ProjectionSupervisor(
        rig.url, [workflows.projector, schedules.projector], poll_interval=0.05
    )
    live = ScheduleService(rig.executions, rig.workflows)
    scheduler = Scheduler(
        live, rig.pool, Leadership(rig.url), poll_interval=0.05, reconcile_interval=0.1
    )
    rig.leaders.append(scheduler.leadership)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    projectors.start()
    thread.start()
    try:
        wait_until(lambda: rig.queued() >= 2, timeout=10)
    finally:
        stop.set()
        thread.join(5)
        projectors.stop()
    assert not thread.is_alive()
    assert rig.history(wid)[:3] == ["Armed", "Fired", "Fired"]


def test_the_elected_scheduler_runs_retention_once_a_day(rig: Rig) -> None:
    ran = threading.Semaphore(0)

    def retention() -> None:
        run_retention(rig.url)
        ran.release()

    def scheduler(now: datetime, cron: str | None = "0 3 * * *") -> Scheduler:
        rig.clock.now = now
        leadership = Leadership(rig.url)
        rig.leaders.append(leadership)
        return Scheduler(
            rig.service(), rig.pool, leadership, retention=retention, retention_cron=cron
        )

    now = rows(rig.url, "SELECT now()")[0][0]
    assert scheduler(now).run_retention_if_due() is True, "never ran: due at once"
    assert ran.acquire(timeout=30)
    assert rows(rig.url, "SELECT count(*) FROM retention_cutoff")[0][0] > 0
    assert scheduler(now).run_retention_if_due() is False, "ran today"
    assert scheduler(now + timedelta(days=1, hours=1)).run_retention_if_due() is True
    assert ran.acquire(timeout=30)
    off = scheduler(now + timedelta(days=9), cron=None)
    assert off.run_retention_if_due() is False, "A2N_RETENTION_CRON=off"


def test_the_elected_scheduler_seals_new_events_a_batch_per_round_while_behind(rig: Rig) -> None:
    def seal_two() -> SealRound | None:
        with rig.pool.connection() as conn:
            return seal(conn, batch_size=2)

    for name in ("one", "two", "three"):
        rig.workflows.create(OWNER, name=name)
    leadership = Leadership(rig.url)
    rig.leaders.append(leadership)
    scheduler = Scheduler(rig.service(), rig.pool, leadership, seal=seal_two, seal_interval=3600)

    def sealed() -> list[int]:
        return [r[0] for r in rows(rig.url, "SELECT position FROM event_chain_seal ORDER BY 1")]

    assert scheduler.tick() == MIN_SLEEP_SECONDS, "behind: the next round at once"
    assert sealed() == [1, 2]
    assert [scheduler.round().sealed for _ in range(2)] == [1, 0]
    assert sealed() == [1, 2, 3]
    rig.workflows.create(OWNER, name="four")
    assert scheduler.round().sealed == 0, "not due again within the interval"
    scheduler.seal_interval = 0
    assert scheduler.round().sealed == 1
    assert sealed() == [1, 2, 3, 4]
