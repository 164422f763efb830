"""The node registry: every node type a workflow definition may use."""

from domain.workflows.nodes.actions import ACTIONS
from domain.workflows.nodes.flow import FLOW
from domain.workflows.nodes.model import NodeKind, NodeRegistry, NodeType
from domain.workflows.nodes.transform import TRANSFORMS
from domain.workflows.nodes.triggers import TRIGGERS

BUILT_IN_NODES = NodeRegistry((*TRIGGERS, *FLOW, *TRANSFORMS, *ACTIONS))
"""The node types A2N ships (API.md's table); reference data, synced into node_definition."""

__all__ = ["BUILT_IN_NODES", "NodeKind", "NodeRegistry", "NodeType"]
