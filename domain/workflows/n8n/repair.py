"""Making an imported n8n definition valid while keeping its shape.

A mapped node can still break its type's rules (an HTTP Request without a URL, a cron
expression built from an n8n expression, a second webhook on the same path) and n8n allows
what A2N refuses (loops back to an earlier node). Rather than refusing the whole import, each
offending node becomes a noop placeholder (its config kept in its notes) and each offending
connection is dropped, every change reported. Only what no such change can fix, such as a
definition over the size limits, is refused.
"""

from __future__ import annotations

import re
from typing import Any

from domain.errors import ValidationFailed, Violation
from domain.workflows.credentials import credential_slots
from domain.workflows.definition import definition_violations, normalize_definition
from domain.workflows.limits import DefinitionLimits
from domain.workflows.n8n.nodes import as_notes, placeholder_config
from domain.workflows.transfer import ImportIssue, IssueKind, WorkflowDraft

MAX_PASSES = 8
_PART = re.compile(r"^/(nodes|connections)/(\d+)(/.*)?$")


def repair(draft: WorkflowDraft, limits: DefinitionLimits) -> None:
    """Make `draft.definition` pass validation, reporting each change in `draft.issues`.

    Nodes are fixed first and connections only in a pass without node problems, so that a
    connection is never dropped for the sake of a node that is about to become a placeholder.
    """
    definition = normalize_definition(draft.definition)
    for _ in range(MAX_PASSES):
        violations = definition_violations(definition, limits)
        if not violations:
            draft.definition = definition
            return
        nodes: dict[int, list[Violation]] = {}
        connections: dict[int, list[Violation]] = {}
        answers: set[int] = set()
        beyond_repair = []
        for violation in violations:
            part = _PART.match(violation.pointer)
            if part is None:
                beyond_repair.append(violation)
            elif part[1] == "connections":
                connections.setdefault(int(part[2]), []).append(violation)
            elif part[3] == "/config/responseMode":
                answers.add(int(part[2]))
            else:
                nodes.setdefault(int(part[2]), []).append(violation)
        if beyond_repair:
            raise ValidationFailed(beyond_repair)
        for index in answers:
            _answer_from_last_node(draft, definition["nodes"][index])
        for index, found in nodes.items():
            _make_placeholder(draft, definition, index, found)
        if not nodes and not answers:
            _drop(draft, definition, connections)
    raise ValidationFailed(definition_violations(definition, limits))


def _answer_from_last_node(draft: WorkflowDraft, node: dict[str, Any]) -> None:
    node["config"]["responseMode"] = "lastNode"
    _report(
        draft,
        node["id"],
        IssueKind.INVALID_CONFIG,
        "no Respond to Webhook node follows this webhook in A2N; it answers with the last "
        "node's items instead",
    )


def _make_placeholder(
    draft: WorkflowDraft, definition: dict[str, Any], index: int, violations: list[Violation]
) -> None:
    node = definition["nodes"][index]
    reasons = "; ".join(
        f"{v.pointer.removeprefix(f'/nodes/{index}') or '/'} {v.message}" for v in violations
    )
    references = [slot.reference for slot in credential_slots({"nodes": [node]})]
    note = (
        f"Placeholder: the imported {node['type']} config was not valid ({reasons}). "
        f"Config: {as_notes(node.get('config'))}"
    )
    node.update(
        type="noop",
        config=placeholder_config(f"its imported {node['type']} config is not valid: {reasons}"),
        credentials=list(dict.fromkeys(references)),
        notes="\n\n".join(n for n in (node.get("notes"), note) if n),
    )
    for connection in definition["connections"]:
        if connection["source"] == node["id"]:
            connection["sourceHandle"] = "output"
        if connection["target"] == node["id"]:
            connection["targetHandle"] = "input"
    definition["connections"] = _unique(definition["connections"])
    _report(
        draft,
        node["id"],
        IssueKind.INVALID_CONFIG,
        f"the mapped config breaks the node type's rules ({reasons}); imported as a noop "
        "placeholder with the config in its notes",
    )


def _drop(
    draft: WorkflowDraft, definition: dict[str, Any], violations: dict[int, list[Violation]]
) -> None:
    kept = []
    for index, connection in enumerate(definition["connections"]):
        if index not in violations:
            kept.append(connection)
            continue
        reasons = "; ".join(v.message for v in violations[index])
        _report(
            draft,
            connection["source"],
            IssueKind.DROPPED_CONNECTION,
            f"the connection from {_name_of(draft, connection['source'])!r} "
            f"({connection['sourceHandle']}) to {_name_of(draft, connection['target'])!r} was "
            f"dropped: {reasons}",
        )
    definition["connections"] = kept


def _unique(connections: list[dict[str, str]]) -> list[dict[str, str]]:
    found: dict[tuple[str, ...], dict[str, str]] = {}
    for connection in connections:
        key = tuple(connection[k] for k in ("source", "sourceHandle", "target", "targetHandle"))
        found.setdefault(key, connection)
    return list(found.values())


def _name_of(draft: WorkflowDraft, node_id: str) -> str:
    origin = draft.origins.get(node_id)
    return origin.name if origin and origin.name else node_id


def _report(draft: WorkflowDraft, node_id: str, kind: IssueKind, message: str) -> None:
    origin = draft.origins.get(node_id)
    draft.issues.append(
        ImportIssue(
            kind,
            message,
            origin.pointer if origin else None,
            origin.name if origin else None,
            node_id,
        )
    )
