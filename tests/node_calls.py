"""Build a node run the way the engine does and run it, for the node runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from application.executions.nodes import (
    RUNTIMES,
    Item,
    NodeCall,
    NodeFailure,
    NodeResult,
    RuntimeLimits,
    http_client,
)
from tests.loopback import LOOPBACK_EGRESS

NOW = "2030-01-31T09:00:00+00:00"
EXECUTION = {"id": "exec-1", "mode": "manual", "workflowId": "wf-1", "workflowVersion": 3}


@dataclass
class Services:
    """NodeServices for tests: a real HTTP client, limits, and a sub-workflow runner that
    records its calls and answers from `workflows` (workflow id -> last node items)."""

    http: httpx.AsyncClient
    limits: RuntimeLimits = field(default_factory=RuntimeLimits)
    workflows: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, list[Item], bool]] = field(default_factory=list)
    credentials: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    """Credential id -> the credential as the vault opens it; others may not be used."""
    used: list[tuple[str, str]] = field(default_factory=list)
    emitted: list[tuple[str, list[Item]]] = field(default_factory=list)

    def emit(self, node_id: str, items: list[Item]) -> None:
        self.emitted.append((node_id, items))

    async def run_workflow(self, workflow_id: str, items: list[Item], *, wait: bool) -> list[Item]:
        self.calls.append((workflow_id, items, wait))
        answer: list[Item] = self.workflows.get(workflow_id, [])
        return answer

    async def credential(self, credential_id: str, *, node_id: str) -> Mapping[str, Any]:
        if credential_id not in self.credentials:
            raise NodeFailure(f"credential {credential_id} may not be used")
        self.used.append((credential_id, node_id))
        return self.credentials[credential_id]


def node_call(
    node_type: str,
    config: Mapping[str, Any],
    items: list[Item] | None = None,
    *,
    services: Services,
    inputs: Mapping[str, list[Item]] | None = None,
    node_items: Mapping[str, list[Item]] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> NodeCall:
    return NodeCall(
        node={"id": "n1", "name": "Node", "type": node_type, "config": dict(config)},
        inputs=inputs if inputs is not None else {"input": items or []},
        execution=EXECUTION,
        variables=variables or {},
        node_items=node_items or {},
        now=NOW,
        services=services,
    )


def run_node(
    node_type: str,
    config: Mapping[str, Any],
    items: list[Item] | None = None,
    *,
    limits: RuntimeLimits | None = None,
    workflows: dict[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
    credentials: dict[str, Mapping[str, Any]] | None = None,
    **call: Any,
) -> tuple[NodeResult, Services]:
    """Run one node with its registered runtime, in a fresh event loop."""

    async def main() -> tuple[NodeResult, Services]:
        async with client or http_client(LOOPBACK_EGRESS) as http:
            services = Services(
                http, limits or RuntimeLimits(), workflows or {}, credentials=credentials or {}
            )
            made = node_call(node_type, config, items, services=services, **call)
            return await RUNTIMES[node_type].run(made), services

    return asyncio.run(main())
