"""The part of a definition one run walks, and which of its nodes may run next.

A run starts at one trigger node and reaches the nodes connected downstream of it; other
triggers and what only they reach are not part of it. A node may run once every node feeding it
has settled; it then receives, on each input handle, the items its predecessors sent to the
handles connected to it. A node that receives no items at all is skipped (the branch an `if` did
not take), and so, in turn, is what only it feeds. A disabled node passes its input items through
unchanged. The result of a run is the output of its last sink node (one with no successor in the
run), in definition order, that produced items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidState
from domain.executions.execution import Item, NodeStatus
from domain.workflows.nodes import BUILT_IN_NODES
from domain.workflows.nodes.triggers import MANUAL

DEFAULT_INPUT = "input"
DEFAULT_OUTPUT = "output"

Outputs = Mapping[str, Mapping[str, list[Item]]]
"""node id -> output handle -> items"""


@dataclass(frozen=True)
class Link:
    source: str
    source_handle: str
    target_handle: str


@dataclass(frozen=True)
class RunGraph:
    """The nodes one run reaches from its start node, with the links between them."""

    start_node_id: str
    nodes: dict[str, Mapping[str, Any]]  # in definition order
    incoming: dict[str, list[Link]]
    successors: dict[str, list[str]]

    @classmethod
    def of(cls, definition: Mapping[str, Any], start_node_id: str) -> RunGraph:
        """The run graph of a valid, normalized definition from `start_node_id`."""
        by_id = {node["id"]: node for node in definition.get("nodes", [])}
        if start_node_id not in by_id:
            raise InvalidState(f"the workflow has no node {start_node_id!r} to start from")
        successors: dict[str, list[str]] = {node_id: [] for node_id in by_id}
        incoming: dict[str, list[Link]] = {node_id: [] for node_id in by_id}
        for connection in definition.get("connections", []):
            source, target = connection["source"], connection["target"]
            successors[source].append(target)
            incoming[target].append(
                Link(
                    source,
                    connection.get("sourceHandle") or DEFAULT_OUTPUT,
                    connection.get("targetHandle") or DEFAULT_INPUT,
                )
            )
        reached = {start_node_id}
        frontier = [start_node_id]
        while frontier:
            for target in successors[frontier.pop()]:
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        return cls(
            start_node_id=start_node_id,
            nodes={node_id: node for node_id, node in by_id.items() if node_id in reached},
            # A node also fed by another trigger (or what only it reaches) waits only for
            # the part of the graph this run walks.
            incoming={
                node_id: [link for link in incoming[node_id] if link.source in reached]
                for node_id in by_id
                if node_id in reached
            },
            successors={node_id: successors[node_id] for node_id in by_id if node_id in reached},
        )

    def node_list(self) -> list[dict[str, str]]:
        """Each node as the Started event records it."""
        return [
            {"id": node_id, "name": str(node.get("name") or node_id), "type": str(node["type"])}
            for node_id, node in self.nodes.items()
        ]

    def ready(self, statuses: Mapping[str, NodeStatus]) -> list[str]:
        """Pending nodes whose predecessors have all settled, in definition order."""
        return [
            node_id
            for node_id in self.nodes
            if statuses.get(node_id, NodeStatus.PENDING) is NodeStatus.PENDING
            and all(
                statuses.get(link.source, NodeStatus.PENDING).is_settled
                for link in self.incoming[node_id]
            )
        ]

    def inputs_of(
        self, node_id: str, outputs: Outputs, input_items: list[Item]
    ) -> dict[str, list[Item]]:
        """The items reaching each input handle of `node_id`; the start node gets the run's
        input items."""
        if node_id == self.start_node_id:
            return {DEFAULT_INPUT: list(input_items)}
        inputs: dict[str, list[Item]] = {}
        for link in self.incoming[node_id]:
            items = outputs.get(link.source, {}).get(link.source_handle, [])
            inputs.setdefault(link.target_handle, []).extend(items)
        return inputs

    def result(self, outputs: Outputs) -> list[Item]:
        """The run's output: the items of the last sink node, in definition order, that
        produced any, across its output handles."""
        found: list[Item] = []
        for node_id in self.nodes:
            if self.successors[node_id]:
                continue
            items = [item for handle in outputs.get(node_id, {}).values() for item in handle]
            if items:
                found = items
        return found

    def names(self) -> dict[str, str]:
        """Node id -> the name expressions use for it (`$node["Name"]`)."""
        return {node_id: str(node.get("name") or node_id) for node_id, node in self.nodes.items()}


def pass_through(
    node: Mapping[str, Any], inputs: Mapping[str, list[Item]], handles: Sequence[str] = ()
) -> dict[str, list[Item]]:
    """What a disabled node sends on: every item it received, on its first output (a built-in
    type's, else the first of `handles`, which the caller knows for custom types)."""
    node_type = BUILT_IN_NODES.get(str(node["type"]))
    if node_type is not None:
        handles = node_type.output_handles(node.get("config", {}))
    return {
        handles[0] if handles else DEFAULT_OUTPUT: [i for items in inputs.values() for i in items]
    }


def _triggers(definition: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        node
        for node in definition.get("nodes", [])
        if not node.get("disabled")
        and (node_type := BUILT_IN_NODES.get(str(node.get("type")))) is not None
        and node_type.is_trigger
    ]


def trigger_node_ids(definition: Mapping[str, Any]) -> list[str]:
    """The enabled trigger nodes a run of this definition may start at."""
    return [str(node["id"]) for node in _triggers(definition)]


def start_node(definition: Mapping[str, Any]) -> str:
    """The node a manual or test run starts at: the enabled manual trigger, else the first
    enabled trigger node (its output is then the items the caller gave)."""
    triggers = _triggers(definition)
    if not triggers:
        raise InvalidState("the workflow has no enabled trigger node to start a run from")
    manual = [node for node in triggers if node["type"] == MANUAL.name]
    return str((manual or triggers)[0]["id"])
