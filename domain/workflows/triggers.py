"""Rules for trigger nodes that span more than one node of a definition.

Each trigger's own config is checked by its JSON Schema (path, methods, auth mode, cron, time
zone, event source); what a schema cannot see is the rest of the graph: two webhook triggers of
one workflow answering the same path and method, or a webhook that promises to answer from a
respond_to_webhook node that no path from it reaches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from domain.errors import Violation
from domain.workflows.nodes.actions import RESPOND_TO_WEBHOOK
from domain.workflows.nodes.triggers import DEFAULT_WEBHOOK_METHOD, WEBHOOK

if TYPE_CHECKING:
    from domain.workflows.definition import CheckedNode, Edge


def webhook_methods(config: Mapping[str, Any]) -> list[str]:
    """The HTTP methods a (valid) webhook trigger config answers."""
    methods = config.get("methods")
    if isinstance(methods, list):
        return [str(m) for m in methods]
    return [str(config.get("method", DEFAULT_WEBHOOK_METHOD))]


def trigger_violations(nodes: Sequence[CheckedNode], edges: Iterable[Edge]) -> list[Violation]:
    """Cross-node rules of the webhook triggers whose own config is valid."""
    webhooks = [n for n in nodes if n.type is WEBHOOK and n.config_ok]
    if not webhooks:
        return []
    violations: list[Violation] = []
    taken: dict[tuple[str, str], str] = {}
    for node in webhooks:
        path = str(node.config["path"])
        for method in webhook_methods(node.config):
            other = taken.setdefault((method, path), node.id)
            if other != node.id:
                violations.append(
                    Violation(
                        f"{node.pointer}/config/path",
                        f"{method} {path} is already the webhook of node {other!r}",
                        node.id,
                    )
                )
    by_id = {n.id: n for n in nodes}
    following = _successors(edges)
    violations += [
        Violation(
            f"{node.pointer}/config/responseMode",
            "is respondNode, but no respond_to_webhook node follows this trigger",
            node.id,
        )
        for node in webhooks
        if node.config.get("responseMode") == "respondNode"
        and not any(
            by_id[later].type is RESPOND_TO_WEBHOOK for later in _reachable(node.id, following)
        )
    ]
    return violations


def _successors(edges: Iterable[Edge]) -> dict[str, list[str]]:
    following: dict[str, list[str]] = {}
    for _, source, target in edges:
        following.setdefault(source, []).append(target)
    return following


def _reachable(start: str, following: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    pending = list(following.get(start, []))
    while pending:
        node = pending.pop()
        if node not in seen:
            seen.add(node)
            pending.extend(following.get(node, []))
    return seen
