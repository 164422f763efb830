"""Shape rules of workflow definitions: every violation reported, each with its JSON pointer."""

from __future__ import annotations

from typing import Any

from domain.workflows.definition import (
    DefinitionLimits,
    definition_violations,
    normalize_definition,
)


def node(node_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "noop", **extra}


def link(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **extra}


def pointers(definition: Any, limits: DefinitionLimits | None = None) -> dict[str, str]:
    return {v.pointer: v.message for v in definition_violations(definition, limits)}


def test_a_sound_graph_has_no_violations() -> None:
    definition = {
        "nodes": [node("a"), node("b"), node("c", name="C", position={"x": 1, "y": 2.5})],
        "connections": [link("a", "b"), link("a", "c", sourceHandle="true"), link("b", "c")],
        "variables": {"x": 1},
        "settings": {"timeout": 1000},
    }
    assert definition_violations(definition) == []


def test_duplicate_ids_and_names_point_at_the_second_node() -> None:
    found = pointers({"nodes": [node("a", name="N"), node("a", name="N")], "connections": []})
    assert found["/nodes/1/id"] == "duplicates the id of node 0 ('a')"
    assert found["/nodes/1/name"] == "duplicates the name of node 0 ('N')"


def test_connections_must_reference_existing_nodes() -> None:
    found = pointers({"nodes": [node("a")], "connections": [link("a", "ghost"), link("x", "a")]})
    assert found == {
        "/connections/0/target": "refers to no node with id 'ghost'",
        "/connections/1/source": "refers to no node with id 'x'",
    }


def test_a_cycle_is_named_and_located_on_the_closing_connection() -> None:
    found = pointers(
        {
            "nodes": [node("a"), node("b"), node("c")],
            "connections": [link("a", "b"), link("b", "c"), link("c", "a")],
        }
    )
    assert found == {"/connections/2": "closes a cycle: a -> b -> c -> a"}


def test_self_loops_and_duplicate_connections_are_refused() -> None:
    found = pointers(
        {
            "nodes": [node("a"), node("b")],
            "connections": [link("a", "a"), link("a", "b"), link("a", "b")],
        }
    )
    assert found == {
        "/connections/0": "connects node 'a' to itself",
        "/connections/2": "duplicates connection 1",
    }


def test_parallel_branches_that_join_again_are_not_a_cycle() -> None:
    definition = {
        "nodes": [node("start"), node("left"), node("right"), node("join")],
        "connections": [
            link("start", "left"),
            link("start", "right"),
            link("left", "join", targetHandle="input1"),
            link("right", "join", targetHandle="input2"),
        ],
    }
    assert definition_violations(definition) == []


def test_all_violations_are_reported_at_once() -> None:
    found = pointers(
        {
            "nodes": [{"id": ""}, node("b", position={"x": "left"}), "not a node"],
            "connections": [link("b", "b"), {"source": "b"}],
            "extra": True,
        }
    )
    assert set(found) == {
        "/extra",
        "/nodes/0/id",
        "/nodes/0/type",
        "/nodes/1/position",
        "/nodes/2",
        "/connections/0",
        "/connections/1/target",
    }


def test_wrong_top_level_types() -> None:
    assert pointers([]) == {"": "must be an object"}
    assert pointers({"nodes": {}, "variables": []}) == {
        "/variables": "must be an object",
        "/nodes": "must be an array",
    }


def test_limits_on_nodes_connections_and_size() -> None:
    limits = DefinitionLimits(max_nodes=2, max_connections=1, max_bytes=200)
    definition = {
        "nodes": [node("a"), node("b"), node("c", config={"blob": "x" * 300})],
        "connections": [link("a", "b"), link("b", "c")],
    }
    found = pointers(definition, limits)
    assert found["/nodes"] == "has 3 nodes; the limit is 2"
    assert found["/connections"] == "has 2 connections; the limit is 1"
    assert found[""].endswith("bytes of JSON; the limit is 200")


def test_normalization_fills_defaults_so_equal_graphs_compare_equal() -> None:
    sparse = {"nodes": [node("a"), node("b")], "connections": [link("a", "b")]}
    explicit = {
        "nodes": [node("a", config={}, credentials=[]), node("b", config={}, credentials=[])],
        "connections": [link("a", "b", sourceHandle="output", targetHandle="input")],
        "variables": {},
        "settings": {},
    }
    assert normalize_definition(sparse) == normalize_definition(explicit)


def test_text_postgres_cannot_store_is_refused_with_its_pointer() -> None:
    found = pointers(
        {"nodes": [node("a", config={"url": "http://x\x00y", "h\x00": 1})], "connections": []}
    )
    assert found == {
        "/nodes/0/config": "has a key containing a NUL character",
        "/nodes/0/config/url": "contains a NUL character",
    }


def test_hostile_nesting_is_refused_without_recursion() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"x": deep}
    found = pointers({"nodes": [node("a", config=deep)], "connections": []})
    [(pointer, message)] = found.items()
    assert pointer.startswith("/nodes/0/config/x/x")
    assert message == "nests deeper than 32 levels"
