"""The execute_workflow node: runs another workflow with the items (through the engine)."""

from __future__ import annotations

from application.executions.nodes.base import NodeCall, NodeResult, as_items, passed_on
from application.executions.nodes.config import config_failure


async def execute_workflow(call: NodeCall) -> NodeResult:
    """With `wait` (the default) the sub-workflow's last node items go on; without, the items
    go on at once, unchanged, while the sub-workflow runs."""
    workflow_id = call.config.get("workflowId")
    if not isinstance(workflow_id, str) or not workflow_id:
        raise config_failure(["workflowId"], "must be a workflow id")
    wait = call.config.get("wait", True) is not False
    items = list(call.items)
    returned = await call.services.run_workflow(workflow_id, items, wait=wait)
    if not wait:
        return passed_on(items)
    return passed_on(as_items(returned, f"sub-workflow {workflow_id}"))
