"""The Execution aggregate's rules and the run graph, without a database."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import InvalidState
from domain.executions.execution import Execution, ExecutionMode, ExecutionStatus, NodeStatus
from domain.executions.graph import RunGraph, pass_through, start_node

# manual -> if -> (true) set_a -> merge.input1 ; (false) set_b -> merge.input2 ; webhook -> other
DEFINITION: dict[str, Any] = {
    "nodes": [
        {"id": "m", "name": "Start", "type": "manual_trigger", "config": {}},
        {"id": "w", "name": "Hook", "type": "webhook_trigger", "config": {"path": "x"}},
        {"id": "i", "name": "Check", "type": "if", "config": {"condition": True}},
        {"id": "a", "name": "A", "type": "set", "config": {"fields": {}}},
        {"id": "b", "name": "B", "type": "set", "config": {"fields": {}}},
        {"id": "j", "name": "Join", "type": "merge", "config": {}},
        {"id": "o", "name": "Other", "type": "noop", "config": {}},
    ],
    "connections": [
        {"source": "m", "target": "i", "sourceHandle": "output", "targetHandle": "input"},
        {"source": "i", "target": "a", "sourceHandle": "true", "targetHandle": "input"},
        {"source": "i", "target": "b", "sourceHandle": "false", "targetHandle": "input"},
        {"source": "a", "target": "j", "sourceHandle": "output", "targetHandle": "input1"},
        {"source": "b", "target": "j", "sourceHandle": "output", "targetHandle": "input2"},
        {"source": "w", "target": "o", "sourceHandle": "output", "targetHandle": "input"},
    ],
}


def queued(**overrides: Any) -> Execution:
    values: dict[str, Any] = {
        "execution_id": "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60",
        "workflow_id": "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f61",
        "workflow_version": 3,
        "user_id": "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f62",
        "mode": ExecutionMode.MANUAL,
        "start_node_id": "m",
        "input_items": [{"n": 1}],
    }
    return Execution.queue(**{**values, **overrides})


def running() -> Execution:
    execution = queued()
    execution.start("worker-1", RunGraph.of(DEFINITION, "m").node_list())
    return execution


def test_a_run_reaches_only_what_its_start_node_feeds() -> None:
    graph = RunGraph.of(DEFINITION, "m")
    assert list(graph.nodes) == ["m", "i", "a", "b", "j"]
    assert graph.node_list()[0] == {"id": "m", "name": "Start", "type": "manual_trigger"}


def test_a_node_is_ready_once_everything_feeding_it_settled() -> None:
    graph = RunGraph.of(DEFINITION, "m")
    assert graph.ready({}) == ["m"]
    done = {"m": NodeStatus.SUCCESS, "i": NodeStatus.SUCCESS}
    assert graph.ready(done) == ["a", "b"]
    assert graph.ready({**done, "a": NodeStatus.SUCCESS, "b": NodeStatus.RUNNING}) == []
    settled = {**done, "a": NodeStatus.SUCCESS, "b": NodeStatus.SKIPPED}
    assert graph.ready(settled) == ["j"]


def test_a_node_fed_by_two_triggers_runs_from_either_without_waiting_for_the_other() -> None:
    both = {
        "nodes": [
            {"id": "m", "name": "Start", "type": "manual_trigger", "config": {}},
            {"id": "e", "name": "On", "type": "event_trigger", "config": {"event": "x"}},
            {"id": "s", "name": "Set", "type": "set", "config": {"fields": {}}},
        ],
        "connections": [{"source": "m", "target": "s"}, {"source": "e", "target": "s"}],
    }
    for start, other in (("m", "e"), ("e", "m")):
        graph = RunGraph.of(both, start)
        assert list(graph.nodes) == sorted([start, "s"], key=["m", "e", "s"].index)
        assert graph.ready({start: NodeStatus.SUCCESS}) == ["s"]
        assert graph.inputs_of("s", {start: {"output": [{"n": 1}]}}, []) == {"input": [{"n": 1}]}
        assert other not in graph.nodes


def test_inputs_follow_the_handles_of_the_connections() -> None:
    graph = RunGraph.of(DEFINITION, "m")
    outputs = {"i": {"true": [{"n": 1}], "false": [{"n": 2}]}, "a": {"output": [{"a": 1}]}}
    assert graph.inputs_of("m", outputs, [{"given": True}]) == {"input": [{"given": True}]}
    assert graph.inputs_of("b", outputs, []) == {"input": [{"n": 2}]}
    assert graph.inputs_of("j", outputs, []) == {"input1": [{"a": 1}], "input2": []}


def test_the_result_is_the_last_sink_that_produced_items() -> None:
    graph = RunGraph.of(DEFINITION, "m")
    assert graph.result({"j": {"output": [{"x": 1}]}}) == [{"x": 1}]
    assert graph.result({"j": {"output": []}}) == []


def test_a_disabled_node_passes_items_to_its_first_output() -> None:
    node = {"id": "i", "type": "if", "config": {"condition": True}, "disabled": True}
    assert pass_through(node, {"input": [{"x": 1}]}) == {"true": [{"x": 1}]}


def test_a_disabled_custom_node_passes_items_to_the_first_handle_it_is_given() -> None:
    node = {"id": "c", "type": "acme.split@1.0.0", "disabled": True}
    assert pass_through(node, {"input": [{"x": 1}]}, ("big", "small")) == {"big": [{"x": 1}]}
    assert pass_through(node, {"input": [{"x": 1}]}) == {"output": [{"x": 1}]}


def test_a_streaming_node_records_items_while_it_runs_only() -> None:
    execution = running()
    with pytest.raises(InvalidState, match="not RUNNING"):
        execution.node_items_emitted("m", [{"n": 1}])
    execution.node_started("m", 1)
    execution.node_items_emitted("m", [{"n": 1}])
    [emitted] = [e for e in execution.pending_events if isinstance(e, Execution.NodeItemsEmitted)]
    assert (emitted.node_id, emitted.attempt, emitted.items) == ("m", 1, [{"n": 1}])
    execution.node_succeeded("m", {"output": [{"n": 1}]}, 1, [])
    with pytest.raises(InvalidState, match="already finished"):
        execution.node_items_emitted("m", [{"n": 2}])


def test_manual_runs_start_at_the_manual_trigger_else_the_first_trigger() -> None:
    assert start_node(DEFINITION) == "m"
    hook_only = {"nodes": [n for n in DEFINITION["nodes"] if n["id"] != "m"]}
    assert start_node(hook_only) == "w"
    with pytest.raises(InvalidState, match="no enabled trigger"):
        start_node({"nodes": [{"id": "x", "type": "noop", "config": {}}]})


def test_a_run_unknown_start_node_is_refused() -> None:
    with pytest.raises(InvalidState, match="no node 'zz'"):
        RunGraph.of(DEFINITION, "zz")


def test_a_run_goes_from_queued_through_its_nodes_to_success() -> None:
    execution = running()
    assert execution.status is ExecutionStatus.RUNNING
    assert execution.node_started("m", 1) == 1
    execution.node_succeeded("m", {"output": [{"n": 1}]}, 3, [])
    for node_id in ("i", "a", "b", "j"):
        execution.node_skipped(node_id, "no input items")
    execution.succeed([{"n": 1}], 10)
    assert execution.status is ExecutionStatus.SUCCESS
    assert execution.node_outputs()["m"] == {"output": [{"n": 1}]}
    kinds = [type(e).__name__ for e in execution.collect_events()]
    assert kinds[:4] == ["Queued", "Started", "NodeStarted", "NodeSucceeded"]
    assert kinds[-1] == "Succeeded"


def test_an_attempt_may_be_recorded_as_begun_and_succeeded_in_one_event() -> None:
    execution = running()
    assert execution.node_started_and_succeeded("m", 2, {"output": [{"n": 1}]}, 3, []) == 1
    assert execution.nodes["m"].status is NodeStatus.SUCCESS
    assert execution.nodes["m"].attempt == 1
    [event] = execution.collect_events()[2:]
    assert isinstance(event, Execution.NodeSucceeded)
    assert (event.attempt, event.input_count, event.duration_ms) == (1, 2, 3)
    with pytest.raises(InvalidState, match="already finished"):
        execution.node_started_and_succeeded("m", 1, {}, 1, [])


def test_a_run_is_never_saved_while_its_queued_event_is_pending() -> None:
    execution = queued()
    assert execution.never_saved
    execution.collect_events()  # what a save does
    execution.start("worker-1", [{"id": "m", "name": "Start", "type": "manual_trigger"}])
    assert not execution.never_saved


def test_a_running_attempt_cannot_be_begun_again() -> None:
    execution = running()
    execution.node_started("m", 1)
    with pytest.raises(InvalidState, match="already running"):
        execution.node_started("m", 1)
    with pytest.raises(InvalidState, match="already running"):
        execution.node_started_and_succeeded("m", 1, {}, 1, [])
    execution.node_retrying("m", 10, {"message": "busy"}, 2, [])
    assert execution.node_started_and_succeeded("m", 1, {}, 1, []) == 2


def test_success_needs_every_node_settled() -> None:
    execution = running()
    execution.node_started("m", 1)
    with pytest.raises(InvalidState, match="have not finished"):
        execution.succeed([], 1)


def test_a_retried_node_counts_its_attempts() -> None:
    execution = running()
    execution.node_started("m", 1)
    execution.node_retrying("m", 100, {"message": "boom"}, 5, [])
    assert execution.nodes["m"].status is NodeStatus.RETRYING
    assert execution.node_started("m", 1) == 2
    execution.node_failed("m", {"message": "boom"}, 5, [])
    assert execution.nodes["m"].status is NodeStatus.FAILED
    with pytest.raises(InvalidState, match="already finished"):
        execution.node_started("m", 1)


def test_node_results_are_refused_unless_the_node_is_running() -> None:
    execution = running()
    with pytest.raises(InvalidState, match="not RUNNING"):
        execution.node_succeeded("m", {}, 1, [])
    with pytest.raises(InvalidState, match="not part of this run"):
        execution.node_started("w", 1)


def test_nothing_runs_before_a_worker_claims_the_run() -> None:
    execution = queued()
    with pytest.raises(InvalidState, match="QUEUED, not RUNNING"):
        execution.node_started("m", 1)
    execution.start("worker-1", [{"id": "m", "name": "Start", "type": "manual_trigger"}])
    with pytest.raises(InvalidState, match="not QUEUED"):
        execution.start("worker-2", [])


def test_a_cancelled_run_takes_no_more_results() -> None:
    execution = running()
    execution.node_started("m", 1)
    execution.cancel("cancelled by the user", 4)
    assert execution.status is ExecutionStatus.CANCELLED
    assert execution.nodes["m"].status is NodeStatus.CANCELLED
    with pytest.raises(InvalidState):
        execution.node_succeeded("m", {}, 1, [])
    with pytest.raises(InvalidState, match="already ended"):
        execution.cancel("again", 5)


def test_a_queued_run_can_be_cancelled_before_it_starts() -> None:
    execution = queued()
    execution.cancel("cancelled by the user", None)
    assert execution.is_final


def test_a_resumed_run_restarts_the_nodes_that_were_running() -> None:
    execution = running()
    execution.node_started("m", 1)
    execution.resume("worker-2")
    assert execution.worker_id == "worker-2"
    assert execution.nodes["m"].status is NodeStatus.PENDING
    assert execution.node_started("m", 1) == 2


def test_a_timeout_and_a_failure_end_the_run_with_a_message() -> None:
    timed = running()
    timed.time_out(1000, 1001)
    assert timed.status is ExecutionStatus.TIMEOUT
    assert "1000 ms" in (timed.error_message or "")
    failed = running()
    failed.fail("node Check failed: boom", {"nodeId": "i"}, 3)
    assert failed.status is ExecutionStatus.FAILED
    with pytest.raises(InvalidState):
        failed.time_out(1, 1)


def test_priority_is_bounded() -> None:
    with pytest.raises(InvalidState, match="priority"):
        queued(priority=101)


def test_only_the_first_webhook_answer_counts() -> None:
    execution = running()
    assert execution.respond("m", 201, {"X-Id": "1"}, {"ok": True})
    assert not execution.respond("m", 500, {}, None)
    assert execution.response == {
        "nodeId": "m",
        "status": 201,
        "headers": {"X-Id": "1"},
        "body": {"ok": True},
    }
