"""Moving workflows between installations: A2N's export document and what an import yields.

An export document is JSON that stands on its own: a format marker and version, the workflow's
details and its definition, and nothing tied to the exporting installation (no user ids, no
credential ids: credentials are referenced by name, see `domain.workflows.credentials`). An
import reads such a document, or an n8n workflow (`domain.workflows.n8n`), into a
`WorkflowDraft` plus a report of everything that could not be carried over as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.errors import ValidationFailed, Violation
from domain.text import text_violations
from domain.workflows.credentials import CredentialSlot, SlotKind
from domain.workflows.limits import DefinitionLimits

FORMAT = "a2n.workflow"
FORMAT_VERSION = 1
DOCUMENT_FIELDS = (
    "format",
    "formatVersion",
    "name",
    "description",
    "tags",
    "category",
    "definition",
)


class SourceFormat(StrEnum):
    A2N = "a2n"
    N8N = "n8n"


class IssueKind(StrEnum):
    """What an import report entry is about."""

    UNSUPPORTED_NODE = "unsupportedNode"  # imported as a noop placeholder
    SKIPPED_NODE = "skippedNode"  # not a node of the graph (a sticky note)
    UNMAPPED_PARAMETER = "unmappedParameter"  # a parameter A2N has no place for
    UNMAPPED_SETTING = "unmappedSetting"  # a workflow setting A2N has no place for
    UNMAPPED_FIELD = "unmappedField"  # a top-level field of the document
    DISABLED_NODE = "disabledNode"  # imported, but disabled
    PINNED_DATA = "pinnedData"  # test data pinned to a node; not imported
    MISSING_CREDENTIAL = "missingCredential"  # no credential of the importer has that name
    EXPRESSION = "expression"  # uses what A2N's expression language lacks: review it
    DROPPED_CONNECTION = "droppedConnection"  # a connection the definition cannot hold
    INVALID_CONFIG = "invalidConfig"  # the mapped config broke the node type's rules
    INACTIVE = "inactive"  # the source was active; imports always start inactive


@dataclass(frozen=True)
class ImportIssue:
    """One thing the import could not carry over as it was. `pointer` points into the
    uploaded document; `node` is the source node's name and `node_id` the node it became."""

    kind: IssueKind
    message: str
    pointer: str | None = None
    node: str | None = None
    node_id: str | None = None


@dataclass(frozen=True)
class NodeOrigin:
    """Where an imported node came from in the uploaded document."""

    pointer: str
    name: str | None


@dataclass
class WorkflowDraft:
    """A workflow read from an import document, before credentials are resolved."""

    name: str
    definition: dict[str, Any]
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    category: str | None = None
    issues: list[ImportIssue] = field(default_factory=list)
    origins: dict[str, NodeOrigin] = field(default_factory=dict)

    def missing_credentials(self, slots: Sequence[CredentialSlot]) -> None:
        """Report credential references that no credential of the importer matched."""
        for slot in slots:
            origin = self.origins.get(slot.node_id or "")
            self.issues.append(
                ImportIssue(
                    IssueKind.MISSING_CREDENTIAL,
                    f"no credential of yours is named {slot.reference!r}; the node was "
                    "imported without it"
                    + (" and disabled" if slot.kind is SlotKind.WEBHOOK_AUTH else ""),
                    pointer=origin.pointer if origin else None,
                    node=origin.name if origin else None,
                    node_id=slot.node_id,
                )
            )


def export_document(
    *,
    name: str,
    description: str | None,
    tags: Sequence[str],
    category: str | None,
    definition: Mapping[str, Any],
) -> dict[str, Any]:
    """The export document of a workflow whose credential references are already names."""
    return {
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "name": name,
        "description": description,
        "tags": list(tags),
        "category": category,
        "definition": dict(definition),
    }


def detect_format(document: Mapping[str, Any]) -> SourceFormat | None:
    """The format a document is in, judged by its shape: A2N exports carry their marker; an
    n8n workflow has a `nodes` array and a `connections` object (A2N's is an array)."""
    if "format" in document or "formatVersion" in document:
        return SourceFormat.A2N
    if isinstance(document.get("nodes"), list) and isinstance(
        document.get("connections", {}), Mapping
    ):
        return SourceFormat.N8N
    return None


def check_document(document: Any, limits: DefinitionLimits) -> None:
    """Refuse documents no import should walk: nested deeper than a definition may be (one
    level is allowed for the wrapper around it) or holding NUL characters."""
    unsafe = text_violations(document, limits.max_depth + 1)
    if unsafe:
        raise ValidationFailed(unsafe)


def read_export(document: Mapping[str, Any], limits: DefinitionLimits) -> WorkflowDraft:
    """The workflow an A2N export document describes; its shape errors are reported all at
    once with pointers into the document (the definition's own rules are checked on create)."""
    check_document(document, limits)
    violations = [
        Violation(f"/{key}", "is not a field of an A2N export")
        for key in sorted(set(document) - set(DOCUMENT_FIELDS))
    ]
    if document.get("format") != FORMAT:
        violations.append(Violation("/format", f"must be {FORMAT!r}"))
    version = document.get("formatVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        violations.append(Violation("/formatVersion", "must be a positive integer"))
    elif version > FORMAT_VERSION:
        violations.append(
            Violation(
                "/formatVersion",
                f"is {version}, from a newer A2N; this server reads version {FORMAT_VERSION}",
            )
        )
    if "name" not in document:
        violations.append(Violation("/name", "is required"))
    definition = document.get("definition", {})
    if not isinstance(definition, Mapping):
        violations.append(Violation("/definition", "must be an object"))
    else:
        violations += [
            Violation(f"/definition/{key}", "must be an array")
            for key in ("nodes", "connections")
            if key in definition and not isinstance(definition[key], list)
        ]
    if violations:
        raise ValidationFailed(violations)
    nodes = definition.get("nodes", [])
    return WorkflowDraft(
        name=document["name"],
        definition=dict(definition),
        description=document.get("description"),
        tags=document.get("tags", []),
        category=document.get("category"),
        origins={
            node["id"]: NodeOrigin(f"/definition/nodes/{index}", node.get("name"))
            for index, node in enumerate(nodes)
            if isinstance(node, Mapping) and isinstance(node.get("id"), str)
        },
    )
