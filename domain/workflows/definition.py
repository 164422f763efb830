"""Shape rules of a workflow definition: the graph of nodes and connections a run follows.

A definition is plain JSON (the spec's shape): `nodes`, `connections`, `variables`, `settings`.
These rules hold for every node type; per-type config schemas are checked elsewhere against the
node registry. All violations are reported together, each with a JSON pointer into the definition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import Violation

DEFAULT_SOURCE_HANDLE = "output"
DEFAULT_TARGET_HANDLE = "input"

_NODE_KEYS = frozenset(
    {"id", "name", "type", "position", "config", "credentials", "disabled", "notes"}
)
_CONNECTION_KEYS = frozenset({"source", "target", "sourceHandle", "targetHandle"})
_DEFINITION_KEYS = frozenset({"nodes", "connections", "variables", "settings"})


@dataclass(frozen=True)
class DefinitionLimits:
    """Size limits that keep a definition (and the events carrying it) reasonable."""

    max_nodes: int = 500
    max_connections: int = 2_000
    max_bytes: int = 1_000_000
    max_id_length: int = 128
    max_depth: int = 32


def empty_definition() -> dict[str, Any]:
    """The definition of a new workflow created without one."""
    return {"nodes": [], "connections": [], "variables": {}, "settings": {}}


def normalize_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in optional parts so equal graphs compare equal and projections store one shape."""
    normalized = empty_definition()
    normalized.update(definition)
    normalized["nodes"] = [
        {"config": {}, "credentials": [], **node} if isinstance(node, Mapping) else node
        for node in normalized["nodes"]
    ]
    normalized["connections"] = [
        {
            "source": c.get("source"),
            "target": c.get("target"),
            "sourceHandle": c.get("sourceHandle") or DEFAULT_SOURCE_HANDLE,
            "targetHandle": c.get("targetHandle") or DEFAULT_TARGET_HANDLE,
        }
        if isinstance(c, Mapping)
        else c
        for c in normalized["connections"]
    ]
    return normalized


def definition_violations(
    definition: Any, limits: DefinitionLimits | None = None
) -> list[Violation]:
    """Every rule the definition breaks; an empty list means it is structurally sound."""
    limits = limits or DefinitionLimits()
    if not isinstance(definition, Mapping):
        return [Violation("", "must be an object")]
    violations = [
        Violation(f"/{key}", "is not a definition field")
        for key in sorted(set(definition) - _DEFINITION_KEYS)
    ]
    unsafe = text_violations(definition, limits.max_depth)
    if unsafe:
        # Too deep or not storable as text: report that alone, nothing else can be trusted.
        return [*violations, *unsafe]
    size = len(json.dumps(definition, separators=(",", ":"), default=str))
    if size > limits.max_bytes:
        violations.append(
            Violation("", f"is {size} bytes of JSON; the limit is {limits.max_bytes}")
        )
    violations += [
        Violation(f"/{key}", "must be an object")
        for key in ("variables", "settings")
        if key in definition and not isinstance(definition[key], Mapping)
    ]
    nodes = definition.get("nodes", [])
    connections = definition.get("connections", [])
    if not _is_list(nodes):
        return [*violations, Violation("/nodes", "must be an array")]
    if not _is_list(connections):
        return [*violations, Violation("/connections", "must be an array")]
    if len(nodes) > limits.max_nodes:
        violations.append(
            Violation("/nodes", f"has {len(nodes)} nodes; the limit is {limits.max_nodes}")
        )
    if len(connections) > limits.max_connections:
        violations.append(
            Violation(
                "/connections",
                f"has {len(connections)} connections; the limit is {limits.max_connections}",
            )
        )
    node_ids, node_violations = _check_nodes(nodes, limits)
    violations += node_violations
    edges, edge_violations = _check_connections(connections, node_ids)
    violations += edge_violations
    violations += _cycle_violations(edges, node_ids)
    return violations


def text_violations(value: Any, max_depth: int) -> list[Violation]:
    """Strings holding NUL characters (PostgreSQL text and jsonb cannot store them) and nesting
    deeper than `max_depth`, found without recursion so hostile input cannot exhaust the stack."""
    violations: list[Violation] = []
    pending: list[tuple[str, Any, int]] = [("", value, 0)]
    while pending:
        pointer, item, depth = pending.pop()
        if depth > max_depth:
            violations.append(Violation(pointer, f"nests deeper than {max_depth} levels"))
            continue
        if isinstance(item, str):
            if "\x00" in item:
                violations.append(Violation(pointer, "contains a NUL character"))
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    violations.append(Violation(pointer, "has a key containing a NUL character"))
                    continue
                pending.append((f"{pointer}/{_escape(str(key))}", child, depth + 1))
        elif _is_list(item):
            pending.extend((f"{pointer}/{i}", child, depth + 1) for i, child in enumerate(item))
    return sorted(violations, key=lambda v: v.pointer)


def _escape(key: str) -> str:
    """A JSON pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _check_nodes(
    nodes: Sequence[Any], limits: DefinitionLimits
) -> tuple[list[str], list[Violation]]:
    violations: list[Violation] = []
    ids: list[str] = []
    seen_ids: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for index, node in enumerate(nodes):
        at = f"/nodes/{index}"
        if not isinstance(node, Mapping):
            violations.append(Violation(at, "must be an object"))
            continue
        violations += [
            Violation(f"{at}/{k}", "is not a node field") for k in sorted(set(node) - _NODE_KEYS)
        ]
        node_id = node.get("id")
        if not isinstance(node_id, str) or not node_id.strip():
            violations.append(Violation(f"{at}/id", "must be a non-empty string"))
        elif len(node_id) > limits.max_id_length:
            violations.append(
                Violation(f"{at}/id", f"is longer than {limits.max_id_length} characters")
            )
        elif node_id in seen_ids:
            violations.append(
                Violation(
                    f"{at}/id", f"duplicates the id of node {seen_ids[node_id]} ({node_id!r})"
                )
            )
        else:
            seen_ids[node_id] = index
            ids.append(node_id)
        node_type = node.get("type")
        if not isinstance(node_type, str) or not node_type.strip():
            violations.append(Violation(f"{at}/type", "must be a non-empty string"))
        name = node.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                violations.append(Violation(f"{at}/name", "must be a non-empty string"))
            elif name in seen_names:
                violations.append(
                    Violation(
                        f"{at}/name", f"duplicates the name of node {seen_names[name]} ({name!r})"
                    )
                )
            else:
                seen_names[name] = index
        violations += _check_node_parts(node, at)
    return ids, violations


def _check_node_parts(node: Mapping[str, Any], at: str) -> list[Violation]:
    violations: list[Violation] = []
    position = node.get("position")
    if position is not None and not (
        isinstance(position, Mapping)
        and all(
            isinstance(position.get(axis), int | float) and not isinstance(position.get(axis), bool)
            for axis in ("x", "y")
        )
    ):
        violations.append(Violation(f"{at}/position", "must be an object with numbers x and y"))
    if "config" in node and not isinstance(node["config"], Mapping):
        violations.append(Violation(f"{at}/config", "must be an object"))
    credentials = node.get("credentials", [])
    if not _is_list(credentials) or not all(isinstance(c, str) for c in credentials):
        violations.append(Violation(f"{at}/credentials", "must be an array of credential ids"))
    if "disabled" in node and not isinstance(node["disabled"], bool):
        violations.append(Violation(f"{at}/disabled", "must be a boolean"))
    if "notes" in node and not isinstance(node["notes"], str):
        violations.append(Violation(f"{at}/notes", "must be a string"))
    return violations


def _check_connections(
    connections: Sequence[Any], node_ids: list[str]
) -> tuple[list[tuple[int, str, str]], list[Violation]]:
    known = set(node_ids)
    violations: list[Violation] = []
    edges: list[tuple[int, str, str]] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for index, connection in enumerate(connections):
        at = f"/connections/{index}"
        if not isinstance(connection, Mapping):
            violations.append(Violation(at, "must be an object"))
            continue
        violations += [
            Violation(f"{at}/{k}", "is not a connection field")
            for k in sorted(set(connection) - _CONNECTION_KEYS)
        ]
        ends_ok = True
        for end in ("source", "target"):
            value = connection.get(end)
            if not isinstance(value, str) or not value:
                violations.append(Violation(f"{at}/{end}", "must be a node id"))
                ends_ok = False
            elif value not in known:
                violations.append(Violation(f"{at}/{end}", f"refers to no node with id {value!r}"))
                ends_ok = False
        handles = []
        for handle, default in (
            ("sourceHandle", DEFAULT_SOURCE_HANDLE),
            ("targetHandle", DEFAULT_TARGET_HANDLE),
        ):
            value = connection.get(handle, default)
            if not isinstance(value, str) or not value:
                violations.append(Violation(f"{at}/{handle}", "must be a non-empty string"))
                ends_ok = False
            handles.append(value)
        if not ends_ok:
            continue
        source, target = connection["source"], connection["target"]
        if source == target:
            violations.append(Violation(at, f"connects node {source!r} to itself"))
            continue
        key = (source, handles[0], target, handles[1])
        if key in seen:
            violations.append(Violation(at, f"duplicates connection {seen[key]}"))
            continue
        seen[key] = index
        edges.append((index, source, target))
    return edges, violations


def _cycle_violations(edges: list[tuple[int, str, str]], node_ids: list[str]) -> list[Violation]:
    """Report each connection that closes a cycle, naming the cycle (depth-first search)."""
    outgoing: dict[str, list[tuple[int, str]]] = {node: [] for node in node_ids}
    for index, source, target in edges:
        outgoing[source].append((index, target))
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []
    violations: list[Violation] = []

    for root in node_ids:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        path.append(root)
        while stack:
            node, next_edge = stack[-1]
            if next_edge < len(outgoing[node]):
                stack[-1] = (node, next_edge + 1)
                index, target = outgoing[node][next_edge]
                if state.get(target) == 1:
                    cycle = [*path[path.index(target) :], target]
                    violations.append(
                        Violation(f"/connections/{index}", "closes a cycle: " + " -> ".join(cycle))
                    )
                elif target not in state:
                    state[target] = 1
                    path.append(target)
                    stack.append((target, 0))
            else:
                state[node] = 2
                path.pop()
                stack.pop()
    return violations
