"""Shape rules of a workflow definition: the graph of nodes and connections a run follows.

A definition is plain JSON (the spec's shape): `nodes`, `connections`, `variables`, `settings`.
Each node's type must be in the node registry, its config must match the type's JSON Schema and
every `{{ ... }}` in its config strings must parse, and each connection must join an output
handle of one node to an input handle of another, without cycles. All violations are reported
together, each with a JSON pointer into the definition and the id of the node it concerns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from domain.errors import Violation
from domain.executions.expressions import expression_violations
from domain.notifications import NOTIFICATIONS, notification_violations
from domain.text import text_violations
from domain.workflows.limits import DefinitionLimits
from domain.workflows.nodes import BUILT_IN_NODES, NodeRegistry, NodeType
from domain.workflows.nodes.schema import MAX_ERRORS_PER_CONFIG, is_uuid, pointer_of
from domain.workflows.triggers import trigger_violations

DEFAULT_SOURCE_HANDLE = "output"
DEFAULT_TARGET_HANDLE = "input"

_NODE_KEYS = frozenset(
    {"id", "name", "type", "position", "config", "credentials", "disabled", "notes"}
)
_CONNECTION_KEYS = frozenset({"source", "target", "sourceHandle", "targetHandle"})
_DEFINITION_KEYS = frozenset({"nodes", "connections", "variables", "settings"})


@dataclass(frozen=True)
class CheckedNode:
    """A node with a unique id, as the graph rules see it; `type` is None if unknown."""

    index: int
    id: str
    type: NodeType | None
    config: Mapping[str, Any]
    config_ok: bool

    @property
    def pointer(self) -> str:
        return f"/nodes/{self.index}"


NodeTypes = Callable[[Mapping[str, Any]], NodeRegistry]
"""The node types one definition may use: built-in ones plus the custom `type@version`s it
names that its workflow's owner may use (application/nodes/types.py decides)."""

Edge = tuple[int, str, str]
"""A connection that joins two known nodes: (index in connections, source id, target id)."""


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
    definition: Any,
    limits: DefinitionLimits | None = None,
    node_types: NodeTypes | None = None,
) -> list[Violation]:
    """Every rule the definition breaks; an empty list means it may be saved. Node types are
    the built-in ones unless `node_types` says which this definition may use."""
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
    violations += _settings_violations(definition.get("settings"))
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
    if len(nodes) > limits.max_nodes or len(connections) > limits.max_connections:
        return violations  # checking each of too many parts would only make a huge answer
    registry = BUILT_IN_NODES if node_types is None else node_types(definition)
    checked, node_violations = _check_nodes(nodes, limits, registry)
    violations += node_violations
    edges, edge_violations = _check_connections(connections, checked)
    violations += edge_violations
    violations += _cycle_violations(edges, list(checked))
    violations += trigger_violations(list(checked.values()), edges)
    return violations


WEBHOOK_RATE_LIMIT = "webhookRateLimit"
MAX_WEBHOOK_LIMIT_REQUESTS = 1_000_000
MAX_WEBHOOK_LIMIT_SECONDS = 86_400


@dataclass(frozen=True)
class WebhookRateLimit:
    """`settings.webhookRateLimit`: at most `requests` calls per `seconds` to each webhook path
    of the workflow, from all senders together."""

    requests: int
    seconds: float


def webhook_rate_limit(settings: Any) -> WebhookRateLimit | Literal["off", "default"]:
    """The workflow's own limit on calls of its webhooks: a limit, `off` (none, whatever the
    installation's default), or `default` (the installation's, A2N_RATE_LIMITS `webhook=`).
    For a definition that passed `definition_violations`."""
    value = settings.get(WEBHOOK_RATE_LIMIT) if isinstance(settings, Mapping) else None
    if value == "off":
        return "off"
    if isinstance(value, Mapping):
        return WebhookRateLimit(int(value["requests"]), float(value["seconds"]))
    return "default"


def _settings_violations(settings: Any) -> list[Violation]:
    """The settings A2N acts on beyond a run's own limits: `errorWorkflow`, the workflow to start
    when a run fails or times out (null: none), `webhookRateLimit` and `notifications`."""
    if not isinstance(settings, Mapping):
        return []
    violations = []
    error_workflow = settings.get("errorWorkflow")
    if not (
        error_workflow is None or (isinstance(error_workflow, str) and is_uuid(error_workflow))
    ):
        violations.append(
            Violation("/settings/errorWorkflow", "must be the id of a workflow, or null")
        )
    return (
        violations
        + _webhook_limit_violations(settings.get(WEBHOOK_RATE_LIMIT))
        + notification_violations(settings.get(NOTIFICATIONS))
    )


def _webhook_limit_violations(value: Any) -> list[Violation]:
    at = f"/settings/{WEBHOOK_RATE_LIMIT}"
    if value is None or value == "off":
        return []
    if not isinstance(value, Mapping):
        return [Violation(at, 'must be {"requests": n, "seconds": s}, "off" or null')]
    violations = [
        Violation(at + pointer_of([str(k)]), "is not a field of a rate limit")
        for k in value
        if k not in ("requests", "seconds")
    ]
    requests, seconds = value.get("requests"), value.get("seconds")
    if not (
        isinstance(requests, int)
        and not isinstance(requests, bool)
        and 1 <= requests <= MAX_WEBHOOK_LIMIT_REQUESTS
    ):
        violations.append(
            Violation(
                f"{at}/requests", f"must be a whole number from 1 to {MAX_WEBHOOK_LIMIT_REQUESTS}"
            )
        )
    if not (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and 1 <= seconds <= MAX_WEBHOOK_LIMIT_SECONDS
    ):
        violations.append(
            Violation(
                f"{at}/seconds",
                f"must be a number of seconds from 1 to {MAX_WEBHOOK_LIMIT_SECONDS}",
            )
        )
    return violations


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _check_nodes(
    nodes: Sequence[Any], limits: DefinitionLimits, registry: NodeRegistry
) -> tuple[dict[str, CheckedNode], list[Violation]]:
    """Check each node on its own; return those with unique ids, for the graph rules."""
    violations: list[Violation] = []
    checked: dict[str, CheckedNode] = {}
    seen_ids: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for index, node in enumerate(nodes):
        at = f"/nodes/{index}"
        if not isinstance(node, Mapping):
            violations.append(Violation(at, "must be an object"))
            continue
        own = [
            Violation(f"{at}/{k}", "is not a node field") for k in sorted(set(node) - _NODE_KEYS)
        ]
        own += _id_and_name_violations(node, index, limits, seen_ids, seen_names)
        own += _check_node_parts(node, at)
        node_type, type_violations = _registered_type(node.get("type"), at, registry)
        own += type_violations
        config = node.get("config", {})
        judged = node_type is not None and isinstance(config, Mapping)  # else reported above
        config_violations = (
            node_type.config_violations(config) + _expression_violations(config, node_type)
            if judged and node_type
            else []
        )
        own += [v.under(f"{at}/config") for v in config_violations]
        node_id = node.get("id")
        if isinstance(node_id, str) and seen_ids.get(node_id) == index:
            ok = judged and not config_violations
            shown = config if isinstance(config, Mapping) else {}
            checked[node_id] = CheckedNode(index, node_id, node_type, shown, ok)
        named = node_id if isinstance(node_id, str) and node_id in seen_ids else None
        violations += [v.about(named) for v in own]
    return checked, violations


def _expression_violations(config: Mapping[str, Any], node_type: NodeType) -> list[Violation]:
    """Each config string whose `{{ ... }}` parts do not parse, in config order (at most
    MAX_ERRORS_PER_CONFIG), so a syntax error is refused when the definition is saved rather than
    met when a run reaches the node. Fields the type takes literally are not read."""
    found: list[Violation] = []
    pending: list[tuple[str, Any]] = [
        (pointer_of([key]), value)
        for key, value in reversed(list(config.items()))
        if key not in node_type.literal_fields
    ]
    while pending:  # a stack of what is left, in config order
        pointer, value = pending.pop()
        if isinstance(value, str):
            if "{{" in value:
                found += [
                    Violation(pointer, f"does not parse as an expression: {error}")
                    for error in expression_violations(value)
                ]
        elif isinstance(value, Mapping):
            pending += [
                (pointer + pointer_of([str(k)]), v) for k, v in reversed(list(value.items()))
            ]
        elif _is_list(value):
            pending += [(f"{pointer}/{i}", v) for i, v in reversed(list(enumerate(value)))]
        if len(found) > MAX_ERRORS_PER_CONFIG:
            return [
                *found[:MAX_ERRORS_PER_CONFIG],
                Violation(
                    "", f"has more expression errors; the first {MAX_ERRORS_PER_CONFIG} are listed"
                ),
            ]
    return found


def _id_and_name_violations(
    node: Mapping[str, Any],
    index: int,
    limits: DefinitionLimits,
    seen_ids: dict[str, int],
    seen_names: dict[str, int],
) -> list[Violation]:
    """Ids must be unique and names, where given, too; first come keeps them."""
    at = f"/nodes/{index}"
    violations: list[Violation] = []
    node_id = node.get("id")
    if not isinstance(node_id, str) or not node_id.strip():
        violations.append(Violation(f"{at}/id", "must be a non-empty string"))
    elif len(node_id) > limits.max_id_length:
        violations.append(
            Violation(f"{at}/id", f"is longer than {limits.max_id_length} characters")
        )
    elif node_id in seen_ids:
        violations.append(
            Violation(f"{at}/id", f"duplicates the id of node {seen_ids[node_id]} ({node_id!r})")
        )
    else:
        seen_ids[node_id] = index
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
    return violations


def _registered_type(
    name: Any, at: str, registry: NodeRegistry
) -> tuple[NodeType | None, list[Violation]]:
    if not isinstance(name, str) or not name.strip():
        return None, [Violation(f"{at}/type", "must be a non-empty string")]
    node_type = registry.get(name)
    if node_type is None:
        return None, [Violation(f"{at}/type", registry.unknown_type_message(name))]
    return node_type, []


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
    connections: Sequence[Any], nodes: Mapping[str, CheckedNode]
) -> tuple[list[Edge], list[Violation]]:
    known = nodes.keys()
    violations: list[Violation] = []
    edges: list[Edge] = []
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
        violations += _handle_violations(at, nodes[source], handles[0], nodes[target], handles[1])
        edges.append((index, source, target))
    return edges, violations


def _handle_violations(
    at: str, source: CheckedNode, output: str, target: CheckedNode, input_: str
) -> list[Violation]:
    """The connection must leave by an output the source has and enter by an input the target
    has (nodes of unknown types are already reported, so their handles are not judged)."""
    violations: list[Violation] = []
    if source.type is not None:
        outputs = source.type.output_handles(source.config)
        if output not in outputs:
            what = f"node {source.id!r} ({source.type.name})"
            message = (
                f"is not an output of {what}; its outputs are: {', '.join(outputs)}"
                if outputs
                else f"{what} has no outputs with this config"
            )
            violations.append(Violation(f"{at}/sourceHandle", message, source.id))
    if target.type is not None and input_ not in target.type.inputs:
        what = f"node {target.id!r} ({target.type.name})"
        message = (
            f"is not an input of {what}; its inputs are: {', '.join(target.type.inputs)}"
            if target.type.inputs
            else f"{what} takes no input"
        )
        violations.append(Violation(f"{at}/targetHandle", message, target.id))
    return violations


def _cycle_violations(edges: list[Edge], node_ids: list[str]) -> list[Violation]:
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
