"""The executions projector on real PostgreSQL: every Execution event into execution, node state,
log and metric rows; the workflows' run counters; rebuilds equal to the live tables."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from application.caller import Caller
from application.eventstore import EventMetadata
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.engine import Engine, EngineLimits, WorkerServices
from application.executions.nodes.base import (
    LogLine,
    NodeCall,
    NodeFailure,
    NodeResult,
    Runtime,
    RuntimeLimits,
)
from application.executions.queue import MemoryQueue
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution
from projections import executions, identity, workflows
from projections import nodes as node_usage
from projections.rebuild import Rebuilder
from projections.runner import ProjectionRunner
from tests.integration.helpers import GRAPH, credential_vault, drain, record_run, rows

Apps = tuple[str, WorkflowService, ExecutionsApp]
USER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62"


@pytest.fixture
def apps(
    fresh_database_url: str,
    service_for: Callable[[str], WorkflowService],
    executions_for: Callable[[str], ExecutionsApp],
) -> Apps:
    return fresh_database_url, service_for(fresh_database_url), executions_for(fresh_database_url)


def workflow(service: WorkflowService, caller: Caller, name: str = "runs") -> str:
    found: str = service.create(caller, name=name, definition=GRAPH).aggregate.id
    return found


def one(url: str, query: str, *params: Any) -> dict[str, Any]:
    """The single row a query answers, by column name."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        found = conn.execute(query, params).fetchall()  # type: ignore[arg-type]
    assert len(found) == 1, found
    return found[0]


def nodes(url: str, execution_id: str) -> dict[str, tuple[Any, ...]]:
    """node id -> (status, attempt, retry_count, duration, error_message, skip_reason)"""
    found = rows(
        url,
        "SELECT node_id, status::text, attempt, retry_count, duration, error_message, "
        "skip_reason FROM execution_node_state WHERE execution_id = %s ORDER BY sequence",
        (execution_id,),
    )
    return {row[0]: tuple(row[1:]) for row in found}


def logs(url: str, execution_id: str) -> list[tuple[Any, ...]]:
    return rows(
        url,
        "SELECT node_id, level::text, message FROM execution_log WHERE execution_id = %s "
        "ORDER BY event_version, seq",
        (execution_id,),
    )


def test_a_retried_successful_run_gives_every_row(apps: Apps, caller: Caller) -> None:
    url, service, store = apps
    wid = workflow(service, caller)
    run = record_run(store, wid, USER, "SUCCESS", retries=2)
    drain(url, executions.projector)

    row = one(url, "SELECT *, status::text AS status FROM execution WHERE id = %s", run.id)
    assert row["status"] == "SUCCESS"
    assert (row["workflow_id"], row["workflow_version"], row["user_id"]) == (wid, 1, USER)
    assert (row["mode"], row["worker_id"], row["priority"]) == ("manual", "worker-1", 0)
    assert (row["duration"], row["retry_count"], row["max_retries"]) == (100, 2, None)
    assert row["input_data"] == [{"n": 1}]
    assert row["output_data"] == [{"n": 1}, {"n": 2}]
    assert row["trigger_data"] == {"source": "test"}
    assert row["context_data"] == {"startNodeId": "start"}
    # Who queued it, but not from where: addresses and user agents stay in the audit log.
    assert row["metadata"] == {"actor_id": USER, "correlation_id": "req-run"}
    assert row["created_at"] <= row["start_time"] <= row["end_time"] == row["updated_at"]
    events = rows(url, "SELECT count(*) FROM executions_events WHERE originator_id = %s", (run.id,))
    assert row["revision"] == events[0][0]

    assert nodes(url, run.id) == {
        "start": ("SUCCESS", 1, 0, 5, None, None),
        "work": ("SUCCESS", 3, 2, 60, None, None),
        "after": ("SKIPPED", 0, 0, None, None, "no input items"),
    }
    work = one(
        url,
        "SELECT output_data, input_count, start_time, end_time FROM execution_node_state "
        "WHERE execution_id = %s AND node_id = 'work'",
        run.id,
    )
    assert work["output_data"] == {"output": [{"n": 1}, {"n": 2}]}
    assert work["input_count"] == 1
    assert work["start_time"] < work["end_time"]

    assert logs(url, run.id) == [
        (None, "INFO", "Execution started on worker worker-1, 3 nodes to run"),
        ("start", "INFO", "Node Start started (attempt 1, 1 items in)"),
        ("start", "DEBUG", "started by hand"),
        ("start", "INFO", "Node Start succeeded in 5 ms (1 items out)"),
        ("work", "INFO", "Node Work started (attempt 1, 1 items in)"),
        ("work", "WARN", "Node Work attempt 1 failed: rate limited; retrying in 50 ms"),
        ("work", "INFO", "Node Work started (attempt 2, 1 items in)"),
        ("work", "WARN", "Node Work attempt 2 failed: rate limited; retrying in 50 ms"),
        ("work", "INFO", "Node Work started (attempt 3, 1 items in)"),
        ("work", "WARN", "slow answer"),
        ("work", "INFO", "Node Work succeeded in 20 ms (2 items out)"),
        ("after", "INFO", "Node After skipped: no input items"),
        (None, "INFO", "Execution succeeded in 100 ms"),
    ]
    details = rows(
        url,
        "SELECT details FROM execution_log WHERE execution_id = %s AND message = %s",
        (run.id, "started by hand"),
    )
    assert details == [({"runBy": "test"},)]

    metrics = rows(
        url,
        "SELECT node_id, metric_name, metric_value, unit, tags FROM execution_metrics "
        "WHERE execution_id = %s ORDER BY event_version, seq",
        (run.id,),
    )
    assert metrics[:3] == [
        ("start", "items_in", 1.0, "items", {"attempt": 1}),
        ("start", "duration_ms", 5.0, "ms", {"attempt": 1}),
        ("start", "items_out", 1.0, "items", {"attempt": 1}),
    ]
    assert [m for m in metrics if m[0] == "work" and m[1] == "duration_ms"] == [
        ("work", "duration_ms", 20.0, "ms", {"attempt": attempt}) for attempt in (1, 2, 3)
    ]
    assert metrics[-1] == (None, "duration_ms", 100.0, "ms", {})


def test_a_success_recording_its_start_gives_the_rows_of_a_start_and_a_success(
    apps: Apps, caller: Caller
) -> None:
    """The engine records a node that ends before anything saved its start as one
    NodeSucceeded: its rows are those of a NodeStarted at the time it began, then the success."""
    url, service, store = apps
    wid = workflow(service, caller)
    apart = record_run(store, wid, USER, "SUCCESS", retries=1)
    at_once = record_run(store, wid, USER, "SUCCESS", retries=1, at_once=True)
    drain(url, executions.projector)

    events = rows(
        url,
        "SELECT originator_id, count(*) FROM executions_events GROUP BY 1 ORDER BY 2",
        (),
    )
    assert events == [(at_once.id, 8), (apart.id, 10)]
    assert nodes(url, at_once.id) == nodes(url, apart.id)
    assert logs(url, at_once.id) == logs(url, apart.id)
    measured = (
        "SELECT node_id, metric_name, metric_value, tags FROM execution_metrics "
        "WHERE execution_id = %s ORDER BY event_version, seq"
    )
    assert rows(url, measured, (at_once.id,)) == rows(url, measured, (apart.id,))
    # Its start is the event's time less the attempt's duration, in every row that has one.
    work = one(
        url,
        "SELECT input_count, start_time, end_time, duration FROM execution_node_state "
        "WHERE execution_id = %s AND node_id = 'start'",
        at_once.id,
    )
    assert work["input_count"] == 1
    assert (work["end_time"] - work["start_time"]).total_seconds() * 1000 == work["duration"] == 5
    started_line = rows(
        url,
        "SELECT timestamp FROM execution_log WHERE execution_id = %s AND message = %s",
        (at_once.id, "Node Start started (attempt 1, 1 items in)"),
    )
    items_in = rows(
        url,
        "SELECT timestamp FROM execution_metrics WHERE execution_id = %s "
        "AND node_id = 'start' AND metric_name = 'items_in'",
        (at_once.id,),
    )
    assert started_line == items_in == [(work["start_time"],)]


def test_a_success_stored_before_it_could_record_its_start_still_loads_and_projects(
    apps: Apps, caller: Caller
) -> None:
    """NodeSucceeded version 2 had no `input_count`: such a stored event reads as one that
    follows its NodeStarted."""
    url, service, store = apps
    wid = workflow(service, caller)
    run = record_run(store, wid, USER, "SUCCESS")
    with psycopg.connect(url, autocommit=True) as conn:
        changed = conn.execute(
            "UPDATE executions_events SET state = convert_to(("
            "convert_from(state, 'UTF8')::jsonb - 'input_count' "
            "|| '{\"class_version\": 2}')::text, 'UTF8') "
            "WHERE originator_id = %s AND topic LIKE %s",
            (run.id, "%Execution.NodeSucceeded"),
        ).rowcount
    assert changed == 2

    loaded = store.load(run.id, Execution)
    assert loaded.nodes["work"].attempt == 1
    assert loaded.node_outputs()["work"] == {"output": [{"n": 1}, {"n": 2}]}
    old = [e for e in store.history(run.id) if isinstance(e, Execution.NodeSucceeded)]
    assert [e.input_count for e in old] == [None, None]
    drain(url, executions.projector)
    assert nodes(url, run.id)["work"] == ("SUCCESS", 1, 0, 20, None, None)
    assert [m for _, _, m in logs(url, run.id)].count(
        "Node Work started (attempt 1, 1 items in)"
    ) == 1


@pytest.mark.parametrize(
    ("outcome", "status", "error", "work", "after", "last_line"),
    [
        (
            "FAILED",
            "FAILED",
            "node Work failed",
            ("FAILED", 1, 0, 20, "boom", None),
            ("CANCELLED", 0, 0, None, None, None),
            ("ERROR", "Execution failed: node Work failed"),
        ),
        (
            "TIMEOUT",
            "TIMEOUT",
            "the execution took longer than its timeout of 90 ms",
            ("CANCELLED", 1, 0, None, None, None),
            ("CANCELLED", 0, 0, None, None, None),
            ("ERROR", "Execution timed out: the execution took longer than its timeout of 90 ms"),
        ),
        (
            "CANCELLED",
            "CANCELLED",
            "stopped by the user",
            ("CANCELLED", 1, 0, None, None, None),
            ("CANCELLED", 0, 0, None, None, None),
            ("WARN", "Execution cancelled: stopped by the user"),
        ),
        (
            "RUNNING",
            "RUNNING",
            None,
            ("RUNNING", 1, 0, None, None, None),
            ("PENDING", 0, 0, None, None, None),
            ("INFO", "Node Work started (attempt 1, 1 items in)"),
        ),
    ],
)
def test_each_ending_sets_the_run_and_its_nodes(
    apps: Apps,
    caller: Caller,
    outcome: Any,
    status: str,
    error: str | None,
    work: tuple[Any, ...],
    after: tuple[Any, ...],
    last_line: tuple[str, str],
) -> None:
    url, service, store = apps
    run = record_run(store, workflow(service, caller), USER, outcome)
    drain(url, executions.projector)
    row = one(
        url,
        "SELECT status::text, error_message, duration, end_time FROM execution WHERE id = %s",
        run.id,
    )
    assert (row["status"], row["error_message"]) == (status, error)
    assert (row["duration"] is None, row["end_time"] is None) == ((outcome == "RUNNING",) * 2)
    assert nodes(url, run.id) == {
        "start": ("SUCCESS", 1, 0, 5, None, None),
        "work": work,
        "after": after,
    }
    assert logs(url, run.id)[-1][1:] == last_line


@pytest.mark.parametrize("outcome", ["CANCELLED", "TIMEOUT"])
def test_a_run_that_ends_early_ends_its_running_nodes_and_leaves_waiting_ones_unstarted(
    apps: Apps, caller: Caller, outcome: Any
) -> None:
    url, service, store = apps
    run = record_run(store, workflow(service, caller), USER, outcome)
    drain(url, executions.projector)
    ends = {
        node: (status, ended)
        for node, status, ended in rows(
            url,
            "SELECT node_id, status::text, end_time IS NOT NULL FROM execution_node_state "
            "WHERE execution_id = %s",
            (run.id,),
        )
    }
    assert ends == {
        "start": ("SUCCESS", True),
        "work": ("CANCELLED", True),
        "after": ("CANCELLED", False),
    }


def test_a_queued_run_has_no_nodes_yet_and_a_cancelled_one_no_duration(
    apps: Apps, caller: Caller
) -> None:
    url, service, store = apps
    run = record_run(store, workflow(service, caller), USER, "QUEUED")
    drain(url, executions.projector)
    row = one(url, "SELECT status::text, start_time FROM execution WHERE id = %s", run.id)
    assert (row["status"], row["start_time"]) == ("QUEUED", None)
    assert nodes(url, run.id) == {}

    execution = store.load(run.id, Execution)
    execution.cancel("no longer needed", None)
    store.record(EventMetadata(USER), execution)
    drain(url, executions.projector)
    row = one(url, "SELECT status::text, duration FROM execution WHERE id = %s", run.id)
    assert (row["status"], row["duration"]) == ("CANCELLED", None)
    assert rows(
        url, "SELECT count(*) FROM execution_metrics WHERE execution_id = %s", (run.id,)
    ) == [(0,)]


def test_a_resumed_run_puts_its_unsettled_nodes_back_to_pending(apps: Apps, caller: Caller) -> None:
    url, service, store = apps
    run = record_run(store, workflow(service, caller), USER, "RUNNING")
    execution = store.load(run.id, Execution)
    execution.resume("worker-2")
    store.record(EventMetadata("system"), execution)
    drain(url, executions.projector)
    row = one(url, "SELECT worker_id, status::text FROM execution WHERE id = %s", run.id)
    assert (row["worker_id"], row["status"]) == ("worker-2", "RUNNING")
    assert {k: v[0] for k, v in nodes(url, run.id).items()} == {
        "start": "SUCCESS",
        "work": "PENDING",
        "after": "PENDING",
    }
    assert logs(url, run.id)[-1] == (
        None,
        "WARN",
        "Execution resumed on worker worker-2 (worker worker-1 stopped answering)",
    )


def test_node_log_levels_are_filed_under_the_spec_levels(apps: Apps, caller: Caller) -> None:
    url, service, store = apps
    run = record_run(store, workflow(service, caller), USER, "RUNNING")
    execution = store.load(run.id, Execution)
    given = ["warning", "critical", "ERROR", "trace", "shouting", "", "info"]
    at = "2026-01-31T12:00:00+00:00"
    lines = [{"level": level, "message": f"line {i}"} for i, level in enumerate(given)]
    lines.append({"message": "with a time", "timestamp": at})
    execution.node_succeeded("work", {"output": []}, 1, lines)
    store.record(EventMetadata(USER), execution)
    drain(url, executions.projector)
    found = rows(
        url,
        "SELECT level::text, to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
        "FROM execution_log WHERE execution_id = %s AND node_id = 'work' "
        "AND (message LIKE 'line %%' OR message = 'with a time') ORDER BY seq",
        (run.id,),
    )
    assert [level for level, _ in found] == [
        "WARN",
        "FATAL",
        "ERROR",
        "DEBUG",
        "INFO",
        "INFO",
        "INFO",
        "INFO",
    ]
    assert found[-1][1] == "2026-01-31 12:00"


def test_a_run_the_engine_drove_is_projected_the_same_way(apps: Apps, caller: Caller) -> None:
    """The rows above come from runs recorded by hand; the engine's own events give them too."""
    url, service, store = apps
    definition = {
        "nodes": [
            {"id": "m", "name": "Start", "type": "manual_trigger"},
            {"id": "a", "name": "Flaky", "type": "noop"},
        ],
        "connections": [{"source": "m", "target": "a"}],
        "settings": {"retryPolicy": {"enabled": True, "maxRetries": 2, "retryDelay": 0}},
    }
    wid = service.create(caller, name="engine", definition=definition).aggregate.id
    service.publish_version(caller, wid, 1)
    calls: Counter[str] = Counter()

    async def behave(call: NodeCall) -> NodeResult:
        node_id = str(call.node["id"])
        calls[node_id] += 1
        if node_id == "a" and calls[node_id] == 1:
            raise NodeFailure("busy, try again", retryable=True)
        return NodeResult({"output": call.items}, [LogLine("WARN", f"{node_id} ran")])

    runs = ExecutionService(store, service, MemoryQueue())
    queued = runs.start(caller, wid, [{"n": 1}])
    vault = credential_vault(url)
    runtime = Runtime(behave)
    engine = Engine(
        store,
        service.version_definition,
        {"manual_trigger": runtime, "noop": runtime},
        WorkerServices(httpx.AsyncClient(), RuntimeLimits(), runs, vault),
        "worker-e2e",
        EngineLimits(heartbeat_seconds=0.05),
    )
    ended = asyncio.run(engine.run(queued.aggregate.id))
    vault.app.close()
    drain(url, executions.projector)
    drain(url, workflows.projector)

    row = one(
        url, "SELECT status::text, retry_count, worker_id FROM execution WHERE id = %s", ended.id
    )
    assert row == {"status": "SUCCESS", "retry_count": 1, "worker_id": "worker-e2e"}
    assert {k: v[:3] for k, v in nodes(url, ended.id).items()} == {
        "m": ("SUCCESS", 1, 0),
        "a": ("SUCCESS", 2, 1),
    }
    assert [line for line in logs(url, ended.id) if line[1] != "INFO"] == [
        ("m", "WARN", "m ran"),
        ("a", "WARN", "Node Flaky attempt 1 failed: busy, try again; retrying in 0 ms"),
        ("a", "WARN", "a ran"),
    ]
    counted = one(url, "SELECT execution_count, success_count FROM workflow WHERE id = %s", wid)
    assert counted == {"execution_count": 1, "success_count": 1}


def test_workflow_counters_follow_the_runs_that_ended(apps: Apps, caller: Caller) -> None:
    url, service, store = apps
    wid = workflow(service, caller)
    other = workflow(service, caller, "untouched")
    for outcome in ("SUCCESS", "SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "RUNNING"):
        record_run(store, wid, USER, outcome)  # type: ignore[arg-type]
    queued = record_run(store, wid, USER, "QUEUED")
    execution = store.load(queued.id, Execution)
    execution.cancel("never mind", None)
    store.record(EventMetadata(USER), execution)
    drain(url, workflows.projector)
    drain(url, executions.projector)

    row = one(url, "SELECT * FROM workflow WHERE id = %s", wid)
    # Ended: 2 successes, FAILED + TIMEOUT failures, 2 cancellations; 5 of them timed (100 ms).
    assert (row["execution_count"], row["success_count"], row["failure_count"]) == (6, 2, 2)
    assert row["avg_execution_time"] == 100
    latest = one(url, "SELECT max(start_time) AS at FROM execution WHERE workflow_id = %s", wid)
    assert row["last_executed_at"] == latest["at"]
    assert row["revision"] == 1, "runs do not change the workflow's revision"
    untouched = one(
        url, "SELECT execution_count, last_executed_at FROM workflow WHERE id = %s", other
    )
    assert (untouched["execution_count"], untouched["last_executed_at"]) == (0, None)
    # Unfinished runs are remembered until they end: one RUNNING run left.
    assert rows(url, "SELECT count(*) FROM workflow_execution_run") == [(1,)]


def test_runs_read_before_their_workflow_row_are_counted_when_it_arrives(
    apps: Apps, caller: Caller
) -> None:
    url, service, store = apps
    for i in range(4):
        workflow(service, caller, f"earlier {i}")
    wid = workflow(service, caller, "counted")
    for outcome in ("SUCCESS", "FAILED", "SUCCESS"):
        record_run(store, wid, USER, outcome)  # type: ignore[arg-type]
    # One event per log and batch: all the runs are read before the workflow's Created event.
    drain(url, workflows.projector, batch_size=1)
    row = one(
        url,
        "SELECT execution_count, success_count, failure_count, avg_execution_time, "
        "last_executed_at IS NOT NULL AS started FROM workflow WHERE id = %s",
        wid,
    )
    assert row == {
        "execution_count": 3,
        "success_count": 2,
        "failure_count": 1,
        "avg_execution_time": 100,
        "started": True,
    }


def test_rebuilds_from_zero_equal_the_live_tables_in_any_page_size(
    apps: Apps, caller: Caller
) -> None:
    url, service, store = apps
    first, second = workflow(service, caller), workflow(service, caller, "second")
    for outcome in ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "RUNNING", "QUEUED"):
        record_run(store, first, USER, outcome, retries=1)  # type: ignore[arg-type]
        record_run(store, second, caller.user_id, outcome, at_once=True)  # type: ignore[arg-type]
    projectors = (executions.projector, workflows.projector, identity.projector)
    for projector in projectors:
        drain(url, projector)
    # Eight runs ended (cancelled ones too), each of 100 ms: all in the 0.1 s bucket.
    assert rows(url, "SELECT le_seconds, runs FROM execution_duration_bucket") == [(0.1, 8)]
    for projector in projectors:
        for batch_size in (3, 500):
            result = Rebuilder(url, projector, batch_size=batch_size).verify()
            assert result.identical, (projector.name, batch_size, result.differences)
    assert rows(url, "SELECT count(*) FROM execution") == [(12,)]
    Rebuilder(url, executions.projector, batch_size=4).rebuild()
    assert Rebuilder(url, executions.projector).verify().identical


def test_node_names_the_projector_forgot_are_read_back_the_same(
    apps: Apps, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executions projector remembers the node names of the latest runs only (memory); a
    node event whose names it forgot reads the name back from the node's row: a rebuild in
    pages of 3 that remembers one name at a time gives the live tables."""
    url, service, store = apps
    first = workflow(service, caller)
    for outcome in ("SUCCESS", "FAILED", "TIMEOUT"):
        record_run(store, first, USER, outcome, retries=1)  # type: ignore[arg-type]
    drain(url, executions.projector)
    monkeypatch.setattr(executions, "_MAX_NAMES", 1)
    executions._NAMES.clear()
    result = Rebuilder(url, executions.projector, batch_size=3).verify()
    assert result.identical, result.differences
    assert len(executions._NAMES) <= 1


class StatementByStatement(ProjectionRunner):
    """Applies every page as a failing page is replayed: each statement as its event comes,
    nothing held back to the end of the page."""

    def _apply_page(
        self,
        conn: psycopg.Connection[Any],
        application: str,
        rows: list[dict[str, Any]],
        end: str | None,
    ) -> None:
        self._apply_rows(conn, application, rows, None)
        if end is not None:
            conn.execute(end)


class Pipelined(ProjectionRunner):
    """Applies pages pipelined, failing the test if one is replayed (its pipelined statements
    failed, which the replay would hide)."""

    def _apply_rows(
        self,
        conn: psycopg.Connection[Any],
        application: str,
        rows: list[dict[str, Any]],
        pipeline: psycopg.Pipeline | None,
    ) -> None:
        assert pipeline is not None, f"a page of {self.projector.name} was replayed"
        super()._apply_rows(conn, application, rows, pipeline)


def test_pages_replayed_statement_by_statement_give_the_pipelined_tables(
    apps: Apps, caller: Caller
) -> None:
    """What a projector holds back to write set-based at the end of a pipelined page ends as
    the statements one by one (the replay of a failing page) leave it, whether a run's events
    come in one page or spread over several."""
    url, service, store = apps
    first, second = workflow(service, caller), workflow(service, caller, "second")
    for outcome in ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "RUNNING", "QUEUED"):
        record_run(store, first, USER, outcome, retries=1)  # type: ignore[arg-type]
        record_run(store, second, caller.user_id, outcome, at_once=True)  # type: ignore[arg-type]
    for projector in (
        executions.projector,
        workflows.projector,
        identity.projector,
        node_usage.projector,
    ):
        live = Pipelined(projector)  # one page: each run's events together
        with psycopg.connect(url, autocommit=True) as conn:
            while (batch := live.run_batch(conn)) is not None and batch.total:
                pass
        # Rebuilt in pages of 3 (each run's events spread over pages), and statement by statement.
        spread = Pipelined(projector, batch_size=3, announce=False)
        for replay in (spread, StatementByStatement(projector, announce=False)):
            rebuilder = Rebuilder(url, projector)
            rebuilder.runner = replay
            result = rebuilder.verify()
            assert result.identical, (projector.name, type(replay), result.differences)
    assert rows(url, "SELECT sum(execution_count) FROM workflow") == [(8,)]


def test_daily_stats_count_runs_by_start_day_once_refreshed(apps: Apps, caller: Caller) -> None:
    url, service, store = apps
    wid = workflow(service, caller)
    for outcome in ("SUCCESS", "SUCCESS", "FAILED", "CANCELLED", "QUEUED"):
        record_run(store, wid, USER, outcome)  # type: ignore[arg-type]
    record_run(store, wid, caller.user_id, "SUCCESS")
    drain(url, executions.projector)
    assert rows(url, "SELECT count(*) FROM daily_execution_stats") == [(0,)]
    rows(url, "SELECT refresh_daily_stats()")
    [day] = rows(
        url,
        "SELECT execution_date, total_executions, successful_executions, failed_executions, "
        "avg_duration, unique_users, unique_workflows FROM daily_execution_stats",
    )
    started = rows(url, "SELECT DATE(min(start_time)) FROM execution")[0][0]
    assert day[0] == started
    # The queued run has not started; the cancelled one has (and counts in the total only).
    assert day[1:] == (5, 3, 1, 100, 2, 1)
