"""Which custom node versions a workflow definition may use, and what a pinned version is.

A definition names a custom node by `type@version`. Saving it checks each such node against that
version's schemas, read from the Nodes event store (never a read model that may lag): the version
must be published and the node PUBLIC or the workflow owner's. A deprecated node stays usable
where the workflow already pinned it, so editing the rest of a workflow never breaks on it, but
no definition may start using it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from application.errors import NotFound
from application.nodes.app import NodesApp
from domain.nodes.definition import (
    NAME_PATTERN,
    PINNED_PATTERN,
    NodeDefinition,
    node_id_for,
    pinned,
)
from domain.workflows.definition import NodeTypes
from domain.workflows.nodes import BUILT_IN_NODES, NodeRegistry, NodeType


def node_types_in(definition: Mapping[str, Any]) -> set[str]:
    """The type names a definition's nodes give (whatever their shape)."""
    nodes = definition.get("nodes")
    if not isinstance(nodes, list):
        return set()
    return {
        node["type"]
        for node in nodes
        if isinstance(node, Mapping) and isinstance(node.get("type"), str)
    }


@dataclass(frozen=True)
class PinnedVersion:
    """What a worker runs for `type@version`: the node's id (its webhook signing key is
    derived from it) and the version's spec."""

    node_id: str
    name: str
    spec: Mapping[str, Any]


class CustomNodeTypes:
    """Resolves the custom node versions definitions name, from the Nodes event store."""

    def __init__(self, app: NodesApp) -> None:
        self.app = app
        self._pinned: dict[str, PinnedVersion] = {}
        self._lock = threading.Lock()

    def pinned_version(self, type_name: str) -> PinnedVersion | None:
        """The published version `type_name` (`name@version`) names, for a run of a definition
        that was checked when it was saved. Published versions never change, so each is read
        from the event store once per process."""
        with self._lock:
            found = self._pinned.get(type_name)
        if found is not None:
            return found
        match = PINNED_PATTERN.fullmatch(type_name)
        node = self._load(match.group("name")) if match else None
        if match is None or node is None or match.group("version") not in node.published:
            return None
        found = PinnedVersion(node.id, node.name, node.versions[match.group("version")])
        with self._lock:
            self._pinned[type_name] = found
        return found

    def for_owner(self, owner_id: str, *, keep: Iterable[str] = ()) -> NodeTypes:
        """The node types a definition of `owner_id`'s workflow may use; deprecated versions
        only among `keep` (what the workflow uses already)."""
        kept = frozenset(keep)

        def registry(definition: Mapping[str, Any]) -> NodeRegistry:
            usable: list[NodeType] = []
            refused: dict[str, str] = {}
            for name in sorted(node_types_in(definition)):
                if name in BUILT_IN_NODES:
                    continue
                found, why = self._resolve(name, owner_id, kept)
                if found is not None:
                    usable.append(found)
                elif why is not None:
                    refused[name] = why
            return NodeRegistry((*BUILT_IN_NODES, *usable), refused)

        return registry

    def _resolve(
        self, name: str, owner_id: str, kept: frozenset[str]
    ) -> tuple[NodeType | None, str | None]:
        """The node type `name` names, or why it may not be used (None: unknown altogether)."""
        match = PINNED_PATTERN.fullmatch(name)
        base = match.group("name") if match else name
        if not NAME_PATTERN.fullmatch(base):
            return None, None
        node = self._load(base)
        if node is None or not node.visible_to(owner_id, is_admin=False):
            return None, None
        if match is None:
            return None, _pin_hint(node, owner_id)
        version = match.group("version")
        if node.usable_version(version, owner_id) is None:
            return None, f"is not a published version of {base}; {_pin_hint(node, owner_id)}"
        if node.is_deprecated and name not in kept:
            instead = f"; use {node.replacement}" if node.replacement else ""
            return None, f"is deprecated{instead}"
        return node.node_type(version), None

    def _load(self, name: str) -> NodeDefinition | None:
        try:
            return self.app.load(node_id_for(name), NodeDefinition)
        except NotFound:
            return None


def _pin_hint(node: NodeDefinition, owner_id: str) -> str:
    published = [v for v in node.versions if node.usable_version(v, owner_id) is not None]
    if not published:
        return f"{node.name} has no published version yet"
    return f"custom nodes are pinned to a version, such as {pinned(node.name, published[-1])}"
