"""Routing nodes: if, switch and filter send each item where its condition says; merge joins;
noop passes items on, unless it is a placeholder."""

from __future__ import annotations

from application.executions.nodes.base import Item, NodeCall, NodeFailure, NodeResult, passed_on
from application.executions.nodes.config import ConfigValues, config_failure


async def if_(call: NodeCall) -> NodeResult:
    values = ConfigValues(call)
    outputs: dict[str, list[Item]] = {"true": [], "false": []}
    for item in call.items:
        holds = values.condition(["condition"], values.raw.get("condition"), item)
        outputs["true" if holds else "false"].append(item)
    return NodeResult(outputs)


async def filter_(call: NodeCall) -> NodeResult:
    values = ConfigValues(call)
    condition = values.raw.get("condition")
    return passed_on(
        [item for item in call.items if values.condition(["condition"], condition, item)]
    )


async def switch(call: NodeCall) -> NodeResult:
    """Each item goes to the output of the first rule that holds for it, else to fallback
    when that output is on, else nowhere."""
    values = ConfigValues(call)
    rules = values.raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise config_failure(["rules"], "must be a list of at least one condition")
    fallback = values.raw.get("fallback") is True
    outputs: dict[str, list[Item]] = {str(i): [] for i in range(len(rules))}
    if fallback:
        outputs["fallback"] = []
    for item in call.items:
        chosen = next(
            (str(i) for i, rule in enumerate(rules) if values.condition(["rules", i], rule, item)),
            "fallback" if fallback else None,
        )
        if chosen is not None:
            outputs[chosen].append(item)
    return NodeResult(outputs)


async def merge(call: NodeCall) -> NodeResult:
    """append: input1's items then input2's. combineByPosition: item i of input1 updated with
    item i of input2 (input2 wins on a shared field), as many as the shorter input has."""
    first, second = call.inputs.get("input1", []), call.inputs.get("input2", [])
    mode = call.config.get("mode", "append")
    if mode == "append":
        return passed_on([*first, *second])
    if mode == "combineByPosition":
        return passed_on([{**a, **b} for a, b in zip(first, second, strict=False)])
    raise config_failure(["mode"], "must be one of: append, combineByPosition")


async def noop(call: NodeCall) -> NodeResult:
    """The items, unchanged. A placeholder (an import could not carry its node over) stops the
    run instead: passing items on would skip, silently, what the node was there to do."""
    reason = call.config.get("placeholder")
    if reason is not None:
        raise NodeFailure(
            f"the node is a placeholder: {reason}; replace it, or disable it to let items "
            "pass through",
            details={"placeholder": reason},
        )
    return passed_on(list(call.items))
