"""Node config values as a node run sees them: expressions evaluated against one item.

Every expression error becomes a non-retryable `NodeFailure` naming the config field by its JSON
pointer, so the user knows which field of which node to fix.
"""

from __future__ import annotations

from typing import Any

from application.executions.nodes.base import Item, NodeCall, NodeFailure
from domain.executions.expressions import ExpressionError, Scope, evaluate, evaluate_condition
from domain.workflows.nodes.schema import pointer_of


class ConfigValues:
    """Reads one node run's config, evaluating expressions against the item at hand."""

    def __init__(self, call: NodeCall) -> None:
        self.raw = call.config
        self._call = call
        self._nodes = {name: items[0] for name, items in call.node_items.items() if items}

    def value(self, name: str, item: Item, *, default: Any = None) -> Any:
        """Config field `name` evaluated for `item` (nested lists and objects too)."""
        if name not in self.raw:
            return default
        try:
            return evaluate(self.raw[name], self._scope(item))
        except ExpressionError as error:
            raise _failure([name], error) from None

    def condition(self, path: list[str | int], raw: Any, item: Item) -> bool:
        """Whether the condition `raw` (at config `path`) holds for `item`."""
        try:
            return evaluate_condition(raw, self._scope(item))
        except ExpressionError as error:
            raise _failure(path, error) from None

    def _scope(self, item: Item) -> Scope:
        call = self._call
        return Scope(
            json=item,
            nodes=self._nodes,
            vars=call.variables,
            execution=call.execution,
            now=call.now,
        )


def config_failure(path: list[str | int], message: str) -> NodeFailure:
    """A config field holds (or its expression gave) a value the node cannot use."""
    pointer = pointer_of(path)
    return NodeFailure(f"config {pointer}: {message}", details={"pointer": pointer})


def _failure(path: list[str | int], error: ExpressionError) -> NodeFailure:
    located = error.under(pointer_of(path))
    return NodeFailure(f"config {located}", details={"pointer": located.pointer})
