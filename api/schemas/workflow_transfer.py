"""Response bodies of workflow export and import."""

from __future__ import annotations

import msgspec

from api.schemas.workflows import WorkflowCommandResult
from application.workflows.transfer import Imported


class ImportIssue(msgspec.Struct, rename="camel", omit_defaults=True):
    """One thing an import could not carry over as it was. `pointer` points into the uploaded
    document, `node` names the source node and `nodeId` the node it became."""

    kind: str
    message: str
    pointer: str | None = None
    node: str | None = None
    node_id: str | None = None


class ImportReport(msgspec.Struct, rename="camel"):
    format: str
    issues: list[ImportIssue]


class WorkflowImportResult(WorkflowCommandResult):
    """The created workflow, as POST /workflows answers it, plus the import report."""

    report: ImportReport

    @classmethod
    def from_import(cls, imported: Imported, viewer_id: str) -> WorkflowImportResult:
        created = WorkflowCommandResult.recorded(
            imported.recorded.aggregate, imported.recorded.position, viewer_id
        )
        issues = [
            ImportIssue(str(i.kind), i.message, i.pointer, i.node, i.node_id)
            for i in imported.issues
        ]
        return cls(
            **msgspec.structs.asdict(created),
            report=ImportReport(str(imported.source_format), issues),
        )
