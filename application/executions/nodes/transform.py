"""The set node: sets fields on each item from values or expressions."""

from __future__ import annotations

from application.executions.nodes.base import Item, NodeCall, NodeResult, passed_on
from application.executions.nodes.config import ConfigValues, config_failure


async def set_(call: NodeCall) -> NodeResult:
    """Each item with `fields` set (evaluated for that item); with `keepOnlySet`, only them."""
    values = ConfigValues(call)
    if not isinstance(values.raw.get("fields"), dict):
        raise config_failure(["fields"], "must be an object of field names and values")
    keep_only_set = values.raw.get("keepOnlySet") is True
    output: list[Item] = []
    for item in call.items:
        fields = values.value("fields", item)
        output.append(fields if keep_only_set else {**item, **fields})
    return passed_on(output)
