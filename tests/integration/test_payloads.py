"""The payload store on a real database: large items leave the events for table `payload`,
every reader gets them back, old events with inline items still load, and retention reclaims a
run's payloads at the run's age while its events, and unfinished runs' payloads, stay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg

from application.eventstore import EventMetadata, new_mapper
from application.executions.app import ExecutionsApp
from application.executions.live import events_after
from application.ids import new_id
from application.payloads import INLINE_LIMIT
from application.retention import RULES, run_retention
from domain.executions.execution import Execution, ExecutionMode, Item
from projections import audit, executions
from projections.rebuild import Rebuilder
from tests.integration.helpers import drain, rows

WORKFLOW = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f81"
USER = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f82"
META = EventMetadata(USER, correlation_id="req-payloads")
NODES = [{"id": "a", "name": "A", "type": "noop"}]
EVENT_LIMIT = 8192


def items(tag: str, size: int) -> list[Item]:
    """Items whose JSON is about `size` bytes, different for each tag."""
    count = max(1, size // 60)
    return [{"tag": tag, "row": i, "text": f"{tag} row {i} of the test"} for i in range(count)]


def new_run(inputs: list[Item]) -> Execution:
    return Execution.queue(
        execution_id=new_id(),
        workflow_id=WORKFLOW,
        workflow_version=1,
        user_id=USER,
        mode=ExecutionMode.MANUAL,
        start_node_id="a",
        input_items=inputs,
        trigger_data={"source": "test"},
    )


def ran(outcome: str, inputs: list[Item], outputs: list[Item]) -> Execution:
    """A run (not saved yet) whose node `a` turned `inputs` into `outputs`, then ended with
    `outcome` (or is still RUNNING)."""
    execution = new_run(inputs)
    execution.start("worker-1", NODES)
    execution.node_started("a", len(inputs))
    execution.node_succeeded("a", {"output": outputs}, 5, [])
    if outcome == "SUCCESS":
        execution.succeed(outputs, 10)
    elif outcome == "FAILED":
        execution.fail("it broke", {"reason": "test"}, 10)
    return execution


def record(app: ExecutionsApp, outcome: str, inputs: list[Item], outputs: list[Item]) -> str:
    execution = ran(outcome, inputs, outputs)
    app.record(META, execution)
    return execution.id


def stored_payloads(url: str) -> set[str]:
    return {row[0] for row in rows(url, "SELECT encode(hash, 'hex') FROM payload")}


def referenced(url: str, execution_id: str) -> set[str]:
    found = rows(
        url,
        "SELECT encode(hash, 'hex') FROM payload_ref WHERE execution_id = %s",
        (execution_id,),
    )
    return {row[0] for row in found}


def event_count(url: str) -> int:
    counted: int = rows(url, "SELECT count(*) FROM executions_events")[0][0]
    return counted


def node_output(url: str, execution_id: str) -> Any:
    return rows(
        url,
        "SELECT output_data FROM execution_node_state WHERE execution_id = %s AND node_id = 'a'",
        (execution_id,),
    )[0][0]


def test_a_1_mib_output_leaves_the_events_small_and_every_reader_gets_it_back(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    url = fresh_database_url
    app = executions_for(url)
    big = items("big", 1100 * 1024)
    assert len(json.dumps(big, separators=(",", ":"))) > 1024 * 1024
    run_id = record(app, "SUCCESS", [{"n": 1}], big)

    largest = rows(url, "SELECT max(octet_length(state)) FROM executions_events")[0][0]
    assert largest < EVENT_LIMIT
    # The node's output and the run's result are the same items: stored once.
    assert len(stored_payloads(url)) == 1
    assert referenced(url, run_id) == stored_payloads(url)
    compressed, size = rows(url, "SELECT octet_length(data), size FROM payload")[0]
    assert size > 1024 * 1024
    assert compressed < size / 4

    loaded = app.load(run_id, Execution)
    assert loaded.node_outputs()["a"] == {"output": big}
    assert loaded.output_items == big
    drain(url, executions.projector)
    assert node_output(url, run_id) == {"output": big}
    assert rows(url, "SELECT output_data FROM execution WHERE id = %s", (run_id,))[0][0] == big

    seen = asyncio.run(_live_events(url, run_id))
    assert [e.outputs for e in seen if isinstance(e, Execution.NodeSucceeded)] == [{"output": big}]

    small = record(app, "SUCCESS", [{"n": 1}], [{"n": 2}])
    assert referenced(url, small) == set(), "small items stay inline"


async def _live_events(url: str, execution_id: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return [found.event for found in await events_after(conn, execution_id, 0)]


def test_an_old_event_with_inline_items_still_loads_and_projects(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    """Events stored before the payload store (version 1) hold their items inline."""
    url = fresh_database_url
    app = executions_for(url)
    big = items("old", 4 * INLINE_LIMIT)
    execution = ran("SUCCESS", big, big)
    mapper = new_mapper()
    old_shape = []
    for pending in execution.collect_events():
        object.__setattr__(pending, "_meta", META.as_dict())
        stored = mapper.to_stored_event(pending)
        state = json.loads(stored.state)
        state.pop("class_version", None)  # what version 1 of the classes stored
        if isinstance(pending, Execution.NodeSucceeded):
            del state["input_count"]  # added by version 3
        old_shape.append(replace(stored, state=json.dumps(state).encode()))
    app.recorder.insert_events(old_shape)
    raw = rows(url, "SELECT state FROM executions_events WHERE originator_version = 4")[0][0]
    assert b'"class_version"' not in bytes(raw)
    assert b"old row 1 of" in bytes(raw)

    loaded = app.load(execution.id, Execution)
    assert loaded.input_items == big
    assert loaded.node_outputs()["a"] == {"output": big}
    assert loaded.output_items == big
    drain(url, executions.projector)
    assert node_output(url, execution.id) == {"output": big}
    assert stored_payloads(url) == set()


def test_retention_prunes_payloads_at_their_runs_ages_and_keeps_the_facts(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    url = fresh_database_url
    app = executions_for(url)
    size = 4 * INLINE_LIMIT
    shared = items("shared", size)
    old_success = record(app, "SUCCESS", shared, items("old success", size))
    new_success = record(app, "SUCCESS", [{"n": 1}], items("new success", size))
    old_failed = record(app, "FAILED", [{"n": 1}], items("old failed", size))
    new_failed = record(app, "FAILED", [{"n": 1}], items("new failed", size))
    running = record(app, "RUNNING", shared, items("running", size))
    drain(url, executions.projector)
    ages = {old_success: 91, new_success: 89, old_failed: 181, new_failed: 179}
    with psycopg.connect(url, autocommit=True) as conn:
        for run_id, days in ages.items():
            conn.execute(
                "UPDATE execution SET end_time = now() - %s WHERE id = %s",
                (timedelta(days=days), run_id),
            )
    refs = {run_id: referenced(url, run_id) for run_id in [*ages, running]}
    events = event_count(url)

    report = run_retention(url)

    pruned = {r.rule.name: r.rows for r in report.results if r.rule.table != "execution_log"}
    assert pruned["payload"] == 2  # each old run's own output; `shared` stays for `running`
    kept = refs[new_success] | refs[new_failed] | refs[running]
    assert stored_payloads(url) == kept
    assert not (refs[old_success] | refs[old_failed]) - refs[running] & stored_payloads(url)
    assert referenced(url, old_success) == referenced(url, old_failed) == set()
    assert event_count(url) == events, "the events, the facts, stay"

    gone = app.load(old_success, Execution)
    marker: Any = gone.node_outputs()["a"]["output"]
    assert marker["pruned"] is True
    assert marker["hash"] in refs[old_success]
    assert marker["size"] > size
    assert gone.input_items == shared  # still referenced by the run that has not ended
    assert app.load(running, Execution).node_outputs()["a"] == {"output": items("running", size)}
    live = asyncio.run(_live_events(url, old_success))
    assert [e.output_items for e in live if isinstance(e, Execution.Succeeded)] == [marker]


def test_a_rebuild_after_pruning_gives_the_same_tables(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    url = fresh_database_url
    app = executions_for(url)
    size = 4 * INLINE_LIMIT
    ended = record(app, "SUCCESS", items("in", size), items("ended", size))
    failed = record(app, "FAILED", [{"n": 1}], items("failed", size))
    running = record(app, "RUNNING", items("in", size), items("running", size))
    drain(url, executions.projector)
    drain(url, audit.projector)
    everything_ended = tuple(
        replace(rule, keep="0 seconds")
        for rule in RULES
        if rule.name in ("execution.success", "execution.failed", "payload")
    )
    report = run_retention(url, rules=everything_ended)
    assert [result.rows for result in report.results] == [1, 1, 2]  # `in` is still running's
    assert stored_payloads(url) == referenced(url, running)
    result: Any = app.load(ended, Execution).output_items
    assert result["pruned"] is True
    failed_output: Any = app.load(failed, Execution).node_outputs()["a"]["output"]
    assert failed_output["pruned"] is True

    verified = Rebuilder(url, executions.projector).verify()
    assert verified.identical
    # The audit log keeps the references (hash and size), pruned or not: the facts stay,
    # the tables still equal a rebuild, and no item list is copied into audit_log.
    audited = rows(
        url,
        "SELECT new_values -> 'output_items' FROM audit_log "
        "WHERE resource_id = %s AND action = 'ExecutionSucceeded'",
        (ended,),
    )
    assert audited == [({"$payload": result["hash"], "size": result["size"]},)]
    assert Rebuilder(url, audit.projector).verify().identical
    Rebuilder(url, executions.projector).rebuild()
    assert {row[0] for row in rows(url, "SELECT id FROM execution")} == {running}
    assert node_output(url, running) == {"output": items("running", size)}


def test_a_payload_a_new_run_is_referencing_right_now_is_not_pruned(
    fresh_database_url: str, executions_for: Callable[[str], ExecutionsApp]
) -> None:
    """Content addressing shares a payload between runs: one that an aged-out run releases
    while another run is storing the same items stays for that run."""
    url = fresh_database_url
    app = executions_for(url)
    shared = items("shared", 4 * INLINE_LIMIT)
    ended = record(app, "SUCCESS", [{"n": 1}], shared)
    drain(url, executions.projector)
    [hash_hex] = referenced(url, ended)
    everything_ended = tuple(
        replace(rule, keep="0 seconds")
        for rule in RULES
        if rule.name in ("execution.success", "payload")
    )
    with psycopg.connect(url) as writer:
        # A new run's save, between writing its reference and committing it.
        writer.execute(
            "INSERT INTO payload_ref (execution_id, hash) VALUES (%s, decode(%s, 'hex'))",
            (new_id(), hash_hex),
        )
        report = run_retention(url, rules=everything_ended)
        writer.commit()
    assert [result.rows for result in report.results] == [1, 0]
    assert stored_payloads(url) == {hash_hex}
    assert app.load(ended, Execution).output_items == shared
