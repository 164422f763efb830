"""Trigger nodes: the engine feeds the run's trigger items in on "input"; they pass them on."""

from __future__ import annotations

from application.executions.nodes.base import NodeCall, NodeResult, passed_on


async def pass_through(call: NodeCall) -> NodeResult:
    """Emit the items received, unchanged."""
    return passed_on(list(call.items))
