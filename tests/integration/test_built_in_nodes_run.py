"""The engine running workflows of built-in nodes with their real runtimes (RUNTIMES), against
the real event store: the contract in application/executions/nodes/base.py holds end to end."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from application.caller import Caller
from application.credentials.vault import CredentialVault
from application.eventstore import event_store_env
from application.executions.app import ExecutionsApp
from application.executions.commands import ExecutionService
from application.executions.queue import MemoryQueue
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from domain.executions.execution import Execution, ExecutionStatus, NodeStatus
from tests.integration.helpers import credential_vault, run_with_built_in_nodes

OWNER = Caller("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f71", correlation_id="req-built-in-nodes")


@dataclass
class Runs:
    """Publishes definitions and runs them to their end with the built-in runtimes."""

    workflows: WorkflowService
    executions: ExecutionService
    vault: CredentialVault

    def publish(self, definition: dict[str, Any]) -> str:
        made = self.workflows.create(OWNER, name="built-in nodes", definition=definition)
        self.workflows.publish_version(OWNER, made.aggregate.id, 1)
        return made.aggregate.id

    def run(self, definition: dict[str, Any], items: list[Any]) -> Execution:
        queued = self.executions.start(OWNER, self.publish(definition), items)
        return run_with_built_in_nodes(
            self.executions, self.workflows, queued.aggregate.id, "worker-built-in", self.vault
        )


@pytest.fixture
def runs(database_url: str) -> Iterator[Runs]:
    env = event_store_env(database_url, pool_size=3)
    workflows_app, executions_app = WorkflowsApp(env=env), ExecutionsApp(env=env)
    workflows = WorkflowService(workflows_app)
    vault = credential_vault(database_url)
    yield Runs(workflows, ExecutionService(executions_app, workflows, MemoryQueue()), vault)
    workflows_app.close()
    executions_app.close()
    vault.app.close()


def node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id.capitalize(),
        "type": node_type,
        "position": {"x": 0, "y": 0},
        "config": config,
    }


def link(
    source: str, target: str, source_handle: str = "output", target_handle: str = "input"
) -> dict[str, str]:
    return {
        "source": source,
        "target": target,
        "sourceHandle": source_handle,
        "targetHandle": target_handle,
    }


def test_items_flow_through_set_if_code_and_merge(runs: Runs) -> None:
    definition = {
        "nodes": [
            node("start", "manual_trigger"),
            node("price", "set", fields={"gross": "{{ $json.net * 1.25 }}"}),
            node("big", "if", condition="{{ $json.gross >= 100 }}"),
            node(
                "label",
                "code",
                code="return [{**item, 'label': 'big ' + str(item['gross'])} for item in items]",
            ),
            node("small", "set", fields={"label": "small"}),
            node("all", "merge", mode="append"),
        ],
        "connections": [
            link("start", "price"),
            link("price", "big"),
            link("big", "label", "true"),
            link("big", "small", "false"),
            link("label", "all", target_handle="input1"),
            link("small", "all", target_handle="input2"),
        ],
        "variables": {"global": {}, "workflow": {}},
        "settings": {},
    }
    ended = runs.run(definition, [{"net": 100}, {"net": 40}])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert ended.output_items == [
        {"net": 100, "gross": 125.0, "label": "big 125.0"},
        {"net": 40, "gross": 50.0, "label": "small"},
    ]


def test_a_node_failure_fails_the_run_with_its_message(runs: Runs) -> None:
    definition = {
        "nodes": [
            node("start", "manual_trigger"),
            node("boom", "code", code="raise ValueError('no total on ' + items[0]['id'])"),
        ],
        "connections": [link("start", "boom")],
        "settings": {},
    }
    ended = runs.run(definition, [{"id": "o-7"}])
    assert ended.status is ExecutionStatus.FAILED
    assert ended.nodes["boom"].status is NodeStatus.FAILED
    assert "ValueError: no total on o-7 (line 1)" in (ended.error_message or "")


def test_execute_workflow_returns_the_sub_workflows_items(runs: Runs) -> None:
    child = runs.publish(
        {
            "nodes": [node("start", "manual_trigger"), node("tag", "set", fields={"child": True})],
            "connections": [link("start", "tag")],
            "settings": {},
        }
    )
    parent = {
        "nodes": [
            node("start", "manual_trigger"),
            node("call", "execute_workflow", workflowId=child, wait=True),
        ],
        "connections": [link("start", "call")],
        "settings": {},
    }
    ended = runs.run(parent, [{"n": 1}])
    assert ended.status is ExecutionStatus.SUCCESS, ended.error_message
    assert ended.output_items == [{"n": 1, "child": True}]


def test_a_retryable_http_failure_is_retried_then_fails_the_run(runs: Runs) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is released
        probe.bind(("127.0.0.1", 0))
        unused_port = probe.getsockname()[1]
    definition = {
        "nodes": [
            node("start", "manual_trigger"),
            node("call", "http_request", url=f"http://127.0.0.1:{unused_port}/x"),
        ],
        "connections": [link("start", "call")],
        "settings": {"retryPolicy": {"enabled": True, "maxRetries": 2, "retryDelay": 10}},
    }
    ended = runs.run(definition, [{}])
    assert ended.status is ExecutionStatus.FAILED
    assert ended.nodes["call"].attempt == 3
    assert f"GET http://127.0.0.1:{unused_port}/x: " in (ended.error_message or "")
