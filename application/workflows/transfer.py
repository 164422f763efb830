"""Workflow export and import (A2N JSON, n8n JSON) as use cases.

Outside an installation credentials are referenced by name: a `CredentialDirectory` turns an
owner's credential ids into names for exports and names back into ids for imports (the
credentials context provides it: application/credentials/directory.py). An import always creates
a new, inactive workflow through `WorkflowService.create`, so it is validated and recorded like
any other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from application.caller import Caller
from application.eventstore import Recorded
from application.workflows.commands import WorkflowService
from domain.errors import ValidationFailed, Violation
from domain.workflows import n8n
from domain.workflows.credentials import credential_slots, with_credentials
from domain.workflows.transfer import (
    FORMAT,
    ImportIssue,
    SourceFormat,
    WorkflowDraft,
    detect_format,
    export_document,
    read_export,
)
from domain.workflows.workflow import Workflow


class CredentialDirectory(Protocol):
    """The credentials an owner may use, looked up by id or by name."""

    def names_of(self, owner_id: str, credential_ids: Collection[str]) -> Mapping[str, str]:
        """Id to name, for those of `credential_ids` the owner may use."""
        ...

    def ids_of(self, owner_id: str, references: Collection[str]) -> Mapping[str, str]:
        """Reference to id, for those of `references` that name (or else are the id of) a
        credential the owner may use."""
        ...


@dataclass(frozen=True)
class Imported:
    """A workflow created by an import, and what the import could not carry over."""

    recorded: Recorded[Workflow]
    source_format: SourceFormat
    issues: list[ImportIssue]


class WorkflowTransfer:
    """Export documents of workflows, and new workflows from A2N or n8n documents."""

    def __init__(self, workflows: WorkflowService, credentials: CredentialDirectory) -> None:
        self.workflows = workflows
        self.credentials = credentials

    def export(self, caller: Caller, workflow: Mapping[str, Any]) -> dict[str, Any]:
        """The export document of a workflow the caller has read (`name`, `description`,
        `tags`, `category`, `definition`); credential ids become their names."""
        definition = workflow["definition"]
        ids = {slot.reference for slot in credential_slots(definition)}
        names = self.credentials.names_of(caller.user_id, ids) if ids else {}
        # An id the owner cannot name (deleted, or no credentials context) stays an id:
        # imports then report it missing instead of the export losing it silently.
        named, _ = with_credentials(definition, names, keep_unmatched=True)
        return export_document(
            name=workflow["name"],
            description=workflow["description"],
            tags=workflow["tags"],
            category=workflow["category"],
            definition=named,
        )

    def import_document(
        self, caller: Caller, document: Mapping[str, Any], declared: SourceFormat | None
    ) -> Imported:
        """Create the caller's new, inactive workflow from an export document."""
        source_format = declared or detect_format(document)
        if source_format is None:
            raise ValidationFailed(
                [
                    Violation(
                        "",
                        f'is neither an A2N export ("format": "{FORMAT}") nor an n8n workflow '
                        "(a nodes array and a connections object); name the format with "
                        "?format=a2n or ?format=n8n",
                    )
                ]
            )
        limits = self.workflows.limits
        if source_format is SourceFormat.A2N:
            draft = read_export(document, limits)
        else:
            draft = n8n.convert(document, limits)
        self._resolve_credentials(caller, draft)
        if source_format is SourceFormat.N8N:
            n8n.repair(draft, limits)
        recorded = self.workflows.create(
            caller,
            name=draft.name,
            definition=draft.definition,
            description=draft.description,
            tags=draft.tags,
            category=draft.category,
        )
        return Imported(recorded, source_format, draft.issues)

    def _resolve_credentials(self, caller: Caller, draft: WorkflowDraft) -> None:
        """Point the draft's credential references at the caller's credentials of those names;
        the others are removed (failing closed) and reported missing."""
        references = {slot.reference for slot in credential_slots(draft.definition)}
        found = self.credentials.ids_of(caller.user_id, references) if references else {}
        draft.definition, missing = with_credentials(draft.definition, found, keep_unmatched=False)
        draft.missing_credentials(missing)
