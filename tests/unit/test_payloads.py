"""What goes to the payload store and what stays in the event, and how references read back."""

from __future__ import annotations

from typing import Any

from application.payloads import INLINE_LIMIT, REF_KEY, is_reference, resolve, split
from domain.executions.execution import Execution, ExecutionMode

NODES = [{"id": "a", "name": "A", "type": "noop"}]


def succeeded(outputs: dict[str, list[Any]], logs: list[dict[str, str]] | None = None) -> Any:
    execution = Execution.queue(
        execution_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f71",
        workflow_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f72",
        workflow_version=1,
        user_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f73",
        mode=ExecutionMode.MANUAL,
        start_node_id="a",
        input_items=[{"n": 1}],
    )
    execution.start("w", NODES)
    execution.node_started("a", 1)
    execution.node_succeeded("a", outputs, 1, logs or [])
    return execution.collect_events()[-1]


def test_small_values_stay_inline() -> None:
    event = succeeded({"output": [{"n": 1}]}, [{"level": "info", "message": "hi"}])
    assert split(event) == (event, [])


def test_a_large_output_goes_to_the_store_and_reads_back() -> None:
    items = [{"text": "x" * INLINE_LIMIT}]
    event = succeeded({"output": items, "false": []})
    stored, payloads = split(event)
    assert is_reference(stored.outputs["output"])
    assert stored.outputs["false"] == []
    assert event.outputs["output"] == items, "the event itself is left as it was"
    resolve([stored], {p.hash: p.data for p in payloads})
    assert stored.outputs == {"output": items, "false": []}
    assert [p.size for p in payloads] == [len(b'[{"text":""}]') + INLINE_LIMIT]


def test_many_small_handles_that_make_a_large_event_go_one_by_one() -> None:
    handles = {f"case{i}": [{"text": "y" * 100}] for i in range(20)}
    stored, payloads = split(succeeded({**handles, "none": []}))
    assert len(payloads) == 20
    assert all(is_reference(stored.outputs[h]) for h in handles)
    assert stored.outputs["none"] == []


def test_a_value_that_looks_like_a_reference_reads_back_as_itself() -> None:
    body = {REF_KEY: "cd" * 32, "size": 1}  # a webhook answer's body is any JSON
    responded = object.__new__(Execution.Responded)
    object.__setattr__(responded, "__dict__", {"node_id": "a", "status": 200, "body": body})
    stored, payloads = split(responded)
    assert len(payloads) == 1
    resolve([stored], {p.hash: p.data for p in payloads})
    assert stored.body == body


def test_a_pruned_payload_reads_as_a_marker() -> None:
    event = succeeded({"output": [{"text": "z" * INLINE_LIMIT}]})
    stored, [payload] = split(event)
    resolve([stored], {})
    assert stored.outputs == {
        "output": {"pruned": True, "hash": payload.hash, "size": payload.size}
    }
