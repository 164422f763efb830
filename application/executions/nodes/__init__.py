"""Node implementations: one runtime per built-in node type, by type name.

The engine looks a node's type up in `RUNTIMES` and awaits `run(call)`; see base.py for the
contract.
"""

from collections.abc import Mapping

from application.executions.nodes.base import (
    Item,
    LogLine,
    NodeCall,
    NodeFailure,
    NodeResult,
    NodeRuntime,
    NodeServices,
    Runtime,
    RuntimeLimits,
    WebhookResponse,
)
from application.executions.nodes.code import code
from application.executions.nodes.flow import filter_, if_, merge, noop, switch
from application.executions.nodes.http_request import http_client, http_request
from application.executions.nodes.subworkflow import execute_workflow
from application.executions.nodes.transform import set_
from application.executions.nodes.triggers import pass_through
from application.executions.nodes.wait import wait
from application.executions.nodes.webhook import respond_to_webhook

RUNTIMES: Mapping[str, NodeRuntime] = {
    "manual_trigger": Runtime(pass_through),
    "webhook_trigger": Runtime(pass_through),
    "schedule_trigger": Runtime(pass_through),
    "event_trigger": Runtime(pass_through),
    "set": Runtime(set_),
    "code": Runtime(code),
    "if": Runtime(if_),
    "switch": Runtime(switch),
    "merge": Runtime(merge),
    "filter": Runtime(filter_),
    "wait": Runtime(wait),
    "execute_workflow": Runtime(execute_workflow),
    "noop": Runtime(noop),
    "http_request": Runtime(http_request),
    "respond_to_webhook": Runtime(respond_to_webhook),
}

__all__ = [
    "RUNTIMES",
    "Item",
    "LogLine",
    "NodeCall",
    "NodeFailure",
    "NodeResult",
    "NodeRuntime",
    "NodeServices",
    "RuntimeLimits",
    "WebhookResponse",
    "http_client",
]
