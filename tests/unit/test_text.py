"""Storable text and JSON (domain/text.py), and the Execution aggregate keeping only such values
in its events whatever its nodes produce."""

from __future__ import annotations

import json
from typing import Any

import pytest

from application.eventstore import new_transcoder
from domain.executions.execution import MAX_MESSAGE_LENGTH, Execution, ExecutionMode
from domain.text import (
    MAX_JSON_DEPTH,
    TOO_DEEP,
    clean_json,
    clean_text,
    text_fault,
    text_violations,
)

R = "\ufffd"


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("plain", "plain"),
        ("x\x00y", f"x{R}y"),
        ("\ud800", R),
        ("a\udfffb", f"a{R}b"),
        ("\ud83d\ude00", "\U0001f600"),  # a pair written as two halves is one character
        ("\U0001f600 é", "\U0001f600 é"),
    ],
)
def test_clean_text_replaces_what_cannot_be_stored(text: str, cleaned: str) -> None:
    assert clean_text(text) == cleaned
    assert text_fault(cleaned) is None
    cleaned.encode("utf-8")


def test_clean_text_cuts_to_the_length_it_is_given() -> None:
    assert clean_text("abcdef", 4) == "abc…"
    assert clean_text("abcd", 4) == "abcd"
    assert len(clean_text("x" * 10_000_000, MAX_MESSAGE_LENGTH)) == MAX_MESSAGE_LENGTH


def test_text_fault_names_the_problem() -> None:
    assert text_fault("ok") is None
    assert text_fault("a\x00") == "a NUL character"
    assert text_fault("\udc00") == "half a surrogate pair (not valid Unicode)"


def test_clean_json_cleans_keys_strings_numbers_and_depth() -> None:
    deep: Any = "bottom"
    for _ in range(10_000):  # far deeper than the stack could walk
        deep = [deep]
    value = {"k\x00": ["\ud800", float("nan"), float("inf"), 1.5, True, None], "deep": deep}
    cleaned = clean_json(value)
    assert cleaned["k" + R] == [R, None, None, 1.5, True, None]
    level, depth = cleaned["deep"], 1
    while isinstance(level, list):
        level, depth = level[0], depth + 1
    assert (level, depth) == (TOO_DEEP, MAX_JSON_DEPTH)
    json.dumps(cleaned, allow_nan=False).encode("utf-8")
    new_transcoder().encode(cleaned)


def test_clean_json_returns_the_same_object_when_nothing_changes() -> None:
    value = {"a": [1, "two", {"three": 3.0}], "b": None}
    assert clean_json(value) is value


def test_text_violations_point_at_each_bad_value() -> None:
    value = {"a": "x\x00", "b": ["\ud800"], "c\x00": 1, "d": float("nan"), "e": [[[]]]}
    found = {v.pointer: v.message for v in text_violations(value, 2)}
    assert found == {
        "/a": "contains a NUL character",
        "/b/0": "contains half a surrogate pair (not valid Unicode)",
        "": "has a key containing a NUL character",
        "/d": "is not a finite number",
        "/e/0/0": "nests deeper than 2 levels",
    }


def _running() -> Execution:
    execution = Execution.queue(
        execution_id="0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f00",
        workflow_id="w",
        workflow_version=1,
        user_id="u",
        mode=ExecutionMode.WEBHOOK,
        start_node_id="a",
        input_items=[{"body": "x\x00y"}],
        trigger_data={"path": "\ud800"},
    )
    execution.start("worker", [{"id": "a", "name": "A", "type": "code"}])
    return execution


def test_an_execution_stores_only_storable_values_whatever_its_nodes_produce() -> None:
    execution = _running()
    execution.node_started("a", 1)
    execution.node_succeeded(
        "a",
        {"output": [{"v": "\x00", "n": float("nan")}]},
        3,
        [{"level": "INFO", "message": "\ud800" + "l" * 100_000}],
    )
    execution.fail("boom\x00", {"message": "m" * 100_000, "nodeId": "a"}, 5)
    transcoder = new_transcoder()
    for pending in execution.collect_events():
        state = transcoder.encode(vars(pending))  # the event store's own codec
        assert b"\\u0000" not in state
        assert b"NaN" not in state
    assert execution.input_items == [{"body": f"x{R}y"}]
    assert execution.trigger_data == {"path": R}
    assert execution.nodes["a"].outputs == {"output": [{"v": R, "n": None}]}
    assert execution.error_message == f"boom{R}"


def test_an_execution_cuts_long_log_lines_and_error_messages() -> None:
    execution = _running()
    execution.node_started("a", 1)
    execution.node_failed(
        "a", {"message": "e" * 100_000}, 1, [{"level": "INFO", "message": "l" * 100_000}]
    )
    failed = execution.pending_events[-1]
    assert isinstance(failed, Execution.NodeFailed)
    assert len(failed.error["message"]) == MAX_MESSAGE_LENGTH
    assert len(failed.logs[0]["message"]) == MAX_MESSAGE_LENGTH
