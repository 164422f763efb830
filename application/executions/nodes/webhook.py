"""The respond_to_webhook node: chooses the HTTP answer of the run's webhook request."""

from __future__ import annotations

from application.executions.nodes.base import NodeCall, NodeResult, WebhookResponse, json_type
from application.executions.nodes.config import ConfigValues, config_failure


async def respond_to_webhook(call: NodeCall) -> NodeResult:
    """Passes the items on and answers with `statusCode`, `headers` and `body` evaluated
    against the first item; without `body` the answer is the first item itself."""
    values = ConfigValues(call)
    items = list(call.items)
    first = items[0] if items else {}
    status = values.value("statusCode", first, default=200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise config_failure(["statusCode"], "must be an HTTP status from 100 to 599")
    headers = values.value("headers", first, default={})
    for name, value in headers.items():
        if not isinstance(value, str):
            raise config_failure(["headers", name], f"must be a string, not {json_type(value)}")
    body = values.value("body", first, default=first)
    return NodeResult({"output": items}, response=WebhookResponse(status, headers, body))
