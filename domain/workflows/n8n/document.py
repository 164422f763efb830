"""An n8n workflow export read into an A2N workflow draft.

The export's shape is checked first (a list of uniquely named nodes with types, a connections
object); a document that is not an n8n workflow is refused with pointers into it. Then each node
is mapped (`nodes.py`), node names become stable ids (a slug of the name), positions are kept,
and n8n's connections, `{"Node": {"main": [[{node, type, index}], ...]}}` where the outer index
is the output, become A2N connections between the right handles. Everything not carried over is
in the draft's issues. Metadata of the exporting instance (ids, version ids, timestamps,
`meta`, sharing) describes where the file came from, not what the workflow does, and is left
out without a report.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from domain.errors import ValidationFailed, Violation
from domain.workflows.limits import DefinitionLimits
from domain.workflows.n8n.nodes import STICKY_NOTE, Mapped, map_node
from domain.workflows.n8n.source import Params, SourceNode, mapping
from domain.workflows.nodes.schema import is_time_zone, pointer_of
from domain.workflows.transfer import (
    ImportIssue,
    IssueKind,
    NodeOrigin,
    WorkflowDraft,
    check_document,
)

DEFAULT_NAME = "Imported n8n workflow"
INSTANCE_METADATA = frozenset(
    {
        "id",
        "versionId",
        "meta",
        "createdAt",
        "updatedAt",
        "triggerCount",
        "shared",
        "homeProject",
        "usedCredentials",
        "parentFolder",
        "isArchived",
        "scopes",
        "versionCounter",
    }
)
READ_FIELDS = frozenset(
    {"name", "nodes", "connections", "settings", "pinData", "tags", "active", "description"}
)
NODE_FIELDS = frozenset(
    {
        "id",
        "name",
        "type",
        "typeVersion",
        "position",
        "parameters",
        "credentials",
        "disabled",
        "notes",
        "notesInFlow",
        "webhookId",
    }
)
NODE_SETTING_DEFAULTS: dict[str, Any] = {
    # n8n's per-node settings at their defaults change nothing, whether written out or not
    "alwaysOutputData": False,
    "executeOnce": False,
    "retryOnFail": False,
    "maxTries": 3,
    "waitBetweenTries": 1000,
    "onError": "stopWorkflow",
    "continueOnFail": False,
}
_SLUG = re.compile(r"[^a-z0-9]+")


def convert(document: Mapping[str, Any], limits: DefinitionLimits) -> WorkflowDraft:
    """The A2N workflow an n8n workflow export describes, with a report of what it lost."""
    check_document(document, limits)
    violations = _shape_violations(document, limits)
    if violations:
        raise ValidationFailed(violations)
    settings = mapping(document.get("settings"))
    named = settings.get("timezone")
    timezone = named if isinstance(named, str) and is_time_zone(named) else None
    reader = _Reader(limits, timezone, {node["name"] for node in document["nodes"]})
    for index, node in enumerate(document["nodes"]):
        reader.add(index, node)
    reader.connect(document.get("connections", {}))
    draft = WorkflowDraft(
        name=_name(document),
        definition={
            "nodes": reader.nodes,
            "connections": reader.connections,
            "variables": {},
            "settings": _settings(settings, timezone, reader.issues),
        },
        description=document.get("description")
        if isinstance(document.get("description"), str)
        else None,
        tags=_tags(document.get("tags")),
        issues=reader.issues,
        origins=reader.origins,
    )
    _report_document(document, draft.issues, reader.ids)
    return draft


class _Reader:
    """Collects the A2N nodes and connections of one n8n document."""

    def __init__(self, limits: DefinitionLimits, timezone: str | None, names: set[str]) -> None:
        self.limits = limits
        self._names = names
        self.timezone = timezone
        self.nodes: list[dict[str, Any]] = []
        self.connections: list[dict[str, str]] = []
        self.issues: list[ImportIssue] = []
        self.origins: dict[str, NodeOrigin] = {}
        self._mapped: dict[str, tuple[list[str], Mapped]] = {}  # n8n name: (A2N ids, mapping)
        self._taken: set[str] = set()

    @property
    def ids(self) -> dict[str, str]:
        """n8n node name: the id of the (first) A2N node it became."""
        return {name: ids[0] for name, (ids, _) in self._mapped.items()}

    def add(self, index: int, node: Mapping[str, Any]) -> None:
        name, kind = node["name"], node["type"]
        if kind == STICKY_NOTE:
            self.issues.append(
                ImportIssue(
                    IssueKind.SKIPPED_NODE,
                    "sticky notes are not part of an A2N definition and were not imported",
                    f"/nodes/{index}",
                    name,
                )
            )
            return
        source = SourceNode(
            index=index,
            name=name,
            type=kind,
            version=_version(node.get("typeVersion")),
            params=Params(node.get("parameters", {}), ()),
            credentials=mapping(node.get("credentials")),
            node_id=self._new_id(name),
            timezone=self.timezone,
            webhook_id=node.get("webhookId") if isinstance(node.get("webhookId"), str) else None,
        )
        mapped = map_node(source)
        self.timezone = source.timezone  # an assumed zone is reported once, then shared
        self.issues += source.issues
        self._report_node_fields(source, node)
        ids = [source.node_id]
        self.nodes.append(self._node(source, node, mapped, mapped.config, name, source.node_id))
        for config in mapped.clones:
            clone = self._new_name(name)
            ids.append(self._new_id(clone))
            self.nodes.append(self._node(source, node, mapped, config, clone, ids[-1]))
        self._mapped[name] = (ids, mapped)

    def connect(self, connections: Mapping[str, Any]) -> None:
        seen: set[tuple[str, str, str, str]] = set()
        for source_name, by_type in connections.items():
            for kind, outputs in by_type.items():
                for output, targets in enumerate(outputs if isinstance(outputs, list) else []):
                    for position, target in enumerate(targets if isinstance(targets, list) else []):
                        at = "/connections" + pointer_of([source_name, kind, output, position])
                        for link in self._links(source_name, kind, output, target, at):
                            key = (
                                link["source"],
                                link["sourceHandle"],
                                link["target"],
                                link["targetHandle"],
                            )
                            if key not in seen:
                                seen.add(key)
                                self.connections.append(link)

    def _links(
        self, source_name: str, kind: str, output: int, target: Any, at: str
    ) -> list[dict[str, str]]:
        target_name = target.get("node") if isinstance(target, Mapping) else None
        index = target.get("index", 0) if isinstance(target, Mapping) else 0
        source, destination = self._mapped.get(source_name), self._mapped.get(str(target_name))
        why = None
        if kind != "main" or (isinstance(target, Mapping) and target.get("type", "main") != "main"):
            why = f"{kind} connections (AI and tool links) have no A2N equivalent"
        elif source is None or destination is None:
            why = "it joins a node that was not imported"
        else:
            handles = ["output"] if source[1].outputs is None else source[1].outputs.get(output)
            handle_in = (
                "input"
                if destination[1].inputs is None
                else destination[1].inputs.get(index if isinstance(index, int) else 0)
            )
            if not handles:
                why = f"output {output} of {source_name!r} has no A2N equivalent"
            elif handle_in is None:
                why = f"{target_name!r} has no A2N input for n8n input {index}"
            else:
                return [
                    {
                        "source": source_id,
                        "target": destination[0][0],
                        "sourceHandle": handle,
                        "targetHandle": handle_in,
                    }
                    for source_id in source[0]
                    for handle in handles
                ]
        self.issues.append(
            ImportIssue(
                IssueKind.DROPPED_CONNECTION,
                f"the connection from {source_name!r} to {target_name!r} was dropped: {why}",
                at,
                source_name,
                source[0][0] if source else None,
            )
        )
        return []

    def _node(
        self,
        source: SourceNode,
        node: Mapping[str, Any],
        mapped: Mapped,
        config: dict[str, Any],
        name: str,
        node_id: str,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": node_id,
            "name": name,
            "type": mapped.type,
            "config": config,
        }
        position = node.get("position")
        if (
            isinstance(position, list)
            and len(position) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)
        ):
            result["position"] = {"x": position[0], "y": position[1]}
        if mapped.credentials:
            result["credentials"] = list(mapped.credentials)
        if node.get("disabled") is True or mapped.disabled:
            result["disabled"] = True
        notes = [n for n in (node.get("notes"), mapped.note) if isinstance(n, str) and n]
        if notes:
            result["notes"] = "\n\n".join(notes)
        self.origins[node_id] = NodeOrigin(source.pointer, source.name)
        return result

    def _report_node_fields(self, source: SourceNode, node: Mapping[str, Any]) -> None:
        def report(kind: IssueKind, message: str, key: str) -> None:
            self.issues.append(
                ImportIssue(
                    kind, message, source.pointer + pointer_of([key]), source.name, source.node_id
                )
            )

        if node.get("disabled") is True:
            report(
                IssueKind.DISABLED_NODE,
                "the node is disabled in n8n and stays disabled",
                "disabled",
            )
        for key in sorted(set(node) - NODE_FIELDS):
            if key in NODE_SETTING_DEFAULTS and node[key] == NODE_SETTING_DEFAULTS[key]:
                continue
            report(
                IssueKind.UNMAPPED_PARAMETER,
                f"node setting {key} has no A2N equivalent and was not imported",
                key,
            )

    def _new_name(self, name: str) -> str:
        """A name for another node made from `name` (a schedule's further rules)."""
        number = 2
        while f"{name} ({number})" in self._names:
            number += 1
        self._names.add(f"{name} ({number})")
        return f"{name} ({number})"

    def _new_id(self, name: str) -> str:
        """A stable id from a node name: a slug, made unique by a number."""
        text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        base = _SLUG.sub("-", text.lower()).strip("-")[: self.limits.max_id_length - 8] or "node"
        candidate, number = base, 1
        while candidate in self._taken:
            number += 1
            candidate = f"{base}-{number}"
        self._taken.add(candidate)
        return candidate


def _shape_violations(document: Mapping[str, Any], limits: DefinitionLimits) -> list[Violation]:
    """Why a document is not an n8n workflow export this importer can read."""
    nodes = document.get("nodes")
    if not isinstance(nodes, list):
        return [Violation("/nodes", "must be an array of n8n nodes")]
    if len(nodes) > limits.max_nodes:
        return [Violation("/nodes", f"has {len(nodes)} nodes; the limit is {limits.max_nodes}")]
    violations = []
    names: set[str] = set()
    for index, node in enumerate(nodes):
        at = f"/nodes/{index}"
        if not isinstance(node, Mapping):
            violations.append(Violation(at, "must be an object"))
            continue
        violations += [
            Violation(f"{at}/{key}", "must be a non-empty string")
            for key in ("name", "type")
            if not isinstance(node.get(key), str) or not node[key].strip()
        ]
        if isinstance(node.get("name"), str):
            if node["name"] in names:
                violations.append(Violation(f"{at}/name", "duplicates another node's name"))
            names.add(node["name"])
        if "parameters" in node and not isinstance(node["parameters"], Mapping):
            violations.append(Violation(f"{at}/parameters", "must be an object"))
    connections = document.get("connections", {})
    if not isinstance(connections, Mapping):
        violations.append(Violation("/connections", "must be an object"))
    else:
        violations += [
            Violation("/connections" + pointer_of([name]), "must be an object")
            for name, value in connections.items()
            if not isinstance(value, Mapping)
        ]
    if "name" in document and not isinstance(document["name"], str):
        violations.append(Violation("/name", "must be a string"))
    return violations


def _name(document: Mapping[str, Any]) -> str:
    name = document.get("name")
    return name if isinstance(name, str) and name.strip() else DEFAULT_NAME


def _version(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1.0


def _tags(value: Any) -> list[str]:
    """n8n tags are objects `{id, name}` (or names, in hand-written files)."""
    tags = value if isinstance(value, list) else []
    names = [t.get("name") if isinstance(t, Mapping) else t for t in tags]
    return [n for n in names if isinstance(n, str)]


def _settings(
    settings: Mapping[str, Any], timezone: str | None, issues: list[ImportIssue]
) -> dict[str, Any]:
    """A2N settings from n8n's: the execution timeout (seconds, -1 for none) and the time zone;
    every other setting is reported."""
    result: dict[str, Any] = {}
    if timezone is not None:
        result["timezone"] = timezone
    for key, value in settings.items():
        if key == "executionTimeout" and isinstance(value, int) and not isinstance(value, bool):
            if value > 0:
                result["timeout"] = value * 1000
        elif key == "timezone" and value == timezone:
            continue
        else:
            issues.append(
                ImportIssue(
                    IssueKind.UNMAPPED_SETTING,
                    f"setting {key} = {json.dumps(value)} has no A2N equivalent; not imported",
                    "/settings" + pointer_of([key]),
                )
            )
    return result


def _report_document(
    document: Mapping[str, Any], issues: list[ImportIssue], ids: Mapping[str, str]
) -> None:
    """Top-level parts of the export that are not carried over."""
    if document.get("active") is True:
        issues.append(
            ImportIssue(
                IssueKind.INACTIVE,
                "the workflow was active in n8n; imported workflows start inactive",
                "/active",
            )
        )
    pinned = document.get("pinData")
    for name, items in pinned.items() if isinstance(pinned, Mapping) else []:
        if items:
            issues.append(
                ImportIssue(
                    IssueKind.PINNED_DATA,
                    "data pinned to this node for testing was not imported",
                    "/pinData" + pointer_of([name]),
                    name,
                    ids.get(name),
                )
            )
    if document.get("staticData"):
        issues.append(
            ImportIssue(
                IssueKind.UNMAPPED_FIELD,
                "static data (state n8n nodes keep between runs) was not imported",
                "/staticData",
            )
        )
    ignored = READ_FIELDS | INSTANCE_METADATA | {"staticData"}
    issues += [
        ImportIssue(
            IssueKind.UNMAPPED_FIELD,
            f"field {key} has no A2N equivalent and was not imported",
            pointer_of([key]),
        )
        for key in sorted(set(document) - ignored)
    ]
