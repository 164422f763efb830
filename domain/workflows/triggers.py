"""Trigger nodes: the rules that span more than one node, and what each trigger listens for.

Each trigger's own config is checked by its JSON Schema (path, methods, auth mode, cron, time
zone, event source); what a schema cannot see is the rest of the graph: two webhook triggers of
one workflow answering the same path (up to its parameters' names, see webhook_paths) and
method, or a webhook that promises to answer from a
respond_to_webhook node that no path from it reaches. `trigger_specs` reads a valid definition's
trigger nodes into the flat shape the `workflow_trigger` read model and the trigger runners use.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

from domain.errors import Violation
from domain.workflows.nodes.actions import RESPOND_TO_WEBHOOK
from domain.workflows.nodes.triggers import DEFAULT_WEBHOOK_METHOD, EVENT, MANUAL, SCHEDULE, WEBHOOK
from domain.workflows.webhook_paths import WebhookPath

if TYPE_CHECKING:
    from domain.workflows.definition import CheckedNode, Edge

_TRIGGER_IDS = uuid.UUID("6f1d3a52-5a0e-4c1e-9a53-2f7a9f1c0b7e")


@lru_cache(maxsize=4096)
def trigger_id(workflow_id: str, node_id: str) -> str:
    """The workflow_trigger id of a trigger node: derived, so a rebuild gives the same ids and
    executions and schedules can refer to it without looking it up. Remembered: a uuid5 costs
    ~25 us, and every webhook call and scheduled run asks for the same few."""
    return str(uuid.uuid5(_TRIGGER_IDS, f"{workflow_id}/{node_id}"))


def webhook_methods(config: Mapping[str, Any]) -> list[str]:
    """The HTTP methods a (valid) webhook trigger config answers."""
    methods = config.get("methods")
    if isinstance(methods, list):
        return [str(m) for m in methods]
    return [str(config.get("method", DEFAULT_WEBHOOK_METHOD))]


class TriggerType(StrEnum):
    """The spec's trigger kinds, one per trigger node type."""

    MANUAL = "MANUAL"
    WEBHOOK = "WEBHOOK"
    SCHEDULE = "SCHEDULE"
    EVENT = "EVENT"


TRIGGER_TYPES = {
    MANUAL.name: TriggerType.MANUAL,
    WEBHOOK.name: TriggerType.WEBHOOK,
    SCHEDULE.name: TriggerType.SCHEDULE,
    EVENT.name: TriggerType.EVENT,
}


@dataclass(frozen=True)
class TriggerSpec:
    """What one trigger node of a valid definition listens for; unused fields are None."""

    node_id: str
    node_name: str | None
    type: TriggerType
    config: Mapping[str, Any]
    webhook_path: str | None = None
    webhook_methods: tuple[str, ...] | None = None
    webhook_auth_mode: str | None = None
    response_mode: str | None = None
    cron: str | None = None
    interval_seconds: int | None = None
    timezone: str | None = None
    misfire: str | None = None
    event_workflow_id: str | None = None
    event_status: str | None = None
    event_name: str | None = None


def trigger_specs(definition: Mapping[str, Any]) -> list[TriggerSpec]:
    """The enabled trigger nodes of a valid, normalized definition, in definition order.

    A disabled trigger starts nothing (an import disables a webhook whose authentication it could
    not carry over, so it must stay closed): it gets no row and does not count for activation."""
    specs = []
    for node in definition.get("nodes", []):
        kind = TRIGGER_TYPES.get(node.get("type"))
        if kind is None or node.get("disabled") is True:
            continue
        config: Mapping[str, Any] = node.get("config") or {}
        common = {"node_id": node["id"], "node_name": node.get("name"), "config": config}
        if kind is TriggerType.WEBHOOK:
            spec = TriggerSpec(
                type=kind,
                webhook_path=str(config["path"]),
                webhook_methods=tuple(webhook_methods(config)),
                webhook_auth_mode=str((config.get("auth") or {}).get("mode", "none")),
                response_mode=str(config.get("responseMode", "immediately")),
                **common,
            )
        elif kind is TriggerType.SCHEDULE:
            spec = TriggerSpec(
                type=kind,
                cron=config.get("cron"),
                interval_seconds=config.get("intervalSeconds"),
                timezone=config.get("timezone", "UTC") if "cron" in config else None,
                misfire=str(config.get("misfire", "runOnce")),
                **common,
            )
        elif kind is TriggerType.EVENT:
            spec = TriggerSpec(
                type=kind,
                event_workflow_id=config.get("workflowId"),
                event_status=config.get("status"),
                event_name=config.get("event"),
                **common,
            )
        else:
            spec = TriggerSpec(type=kind, **common)
        specs.append(spec)
    return specs


@dataclass(frozen=True)
class WebhookRoute:
    """One webhook trigger of a definition: the pattern and the methods it answers."""

    node_id: str
    path: WebhookPath
    methods: tuple[str, ...]

    def claims(self) -> set[tuple[str, str]]:
        """(method, shape) pairs: what no other route of the active workflows may answer."""
        return {(method, self.path.shape) for method in self.methods}


def webhook_routes(definition: Mapping[str, Any]) -> list[WebhookRoute]:
    """The enabled webhook triggers of a valid, normalized definition."""
    return [
        WebhookRoute(spec.node_id, path, spec.webhook_methods or ())
        for spec in trigger_specs(definition)
        if spec.webhook_path is not None
        and (path := WebhookPath.parse(spec.webhook_path)) is not None
    ]


def _shape(path: str) -> str:
    parsed = WebhookPath.parse(path)
    return parsed.shape if parsed is not None else path


def next_cron_time(cron: str, timezone: str | None, after: datetime) -> datetime:
    """When a (valid) cron expression next fires after the aware moment `after`, in UTC; read
    in its time zone, so `0 9 * * *` in Europe/Paris stays at 09:00 local across DST changes."""
    zone = ZoneInfo(timezone or "UTC")
    seconds_first = len(cron.split()) == 6
    fires = croniter(cron, after.astimezone(zone), second_at_beginning=seconds_first)
    return fires.get_next(datetime).astimezone(UTC)


def trigger_violations(nodes: Sequence[CheckedNode], edges: Iterable[Edge]) -> list[Violation]:
    """Cross-node rules of the webhook triggers whose own config is valid."""
    webhooks = [n for n in nodes if n.type is WEBHOOK and n.config_ok]
    if not webhooks:
        return []
    violations: list[Violation] = []
    taken: dict[tuple[str, str], str] = {}
    for node in webhooks:
        path = str(node.config["path"])
        shape = _shape(path)
        for method in webhook_methods(node.config):
            other = taken.setdefault((method, shape), node.id)
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
