"""Request and response bodies of the workflow routes (camelCase JSON, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.params import PathParameter
from msgspec import UNSET, UnsetType

from application.workflows.comments import CommentRecorded
from domain.workflows.workflow import Workflow


class _Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    pass


class Position(_Body):
    x: int | float
    y: int | float


class Node(_Body):
    id: str
    type: str
    name: str | None = None
    position: Position | None = None
    config: dict[str, Any] = {}
    credentials: list[str] = []
    disabled: bool = False
    notes: str | None = None


class Connection(_Body):
    source: str
    target: str
    source_handle: str = "output"
    target_handle: str = "input"


class Definition(_Body):
    nodes: list[Node] = []
    connections: list[Connection] = []
    variables: dict[str, Any] = {}
    settings: dict[str, Any] = {}


class CreateWorkflow(_Body):
    name: str
    description: str | None = None
    definition: Definition | None = None
    tags: list[str] = []
    category: str | None = None
    visibility: Literal["PRIVATE", "PUBLIC"] = "PRIVATE"
    is_template: bool = False


class UpdateWorkflow(_Body):
    """Only the fields present change; `variables` and `settings` save a new version."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType = UNSET
    category: str | UnsetType | None = UNSET
    visibility: Literal["PRIVATE", "PUBLIC"] | UnsetType = UNSET
    """PUBLIC: every user may view, export and duplicate it. Owner and ADMIN sharees only."""
    is_template: bool | UnsetType = UNSET
    """Offered in the template gallery while PUBLIC. Owner and ADMIN sharees only."""
    variables: dict[str, Any] | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType = UNSET


class ReplaceDefinition(Definition):
    change_message: str | None = None


class DuplicateWorkflow(_Body):
    name: str | None = None


def as_plain(body: msgspec.Struct) -> dict[str, Any]:
    """A request struct as the JSON-shaped dict the domain validates (unset fields left out)."""
    plain: dict[str, Any] = msgspec.to_builtins(body)
    return plain


def set_fields(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sets, by their Python (domain) names, with plain JSON values."""
    plain = as_plain(body)
    return {
        field.name: plain[field.encode_name]
        for field in msgspec.structs.fields(body)
        if field.encode_name in plain
    }


class _Out(msgspec.Struct, rename="camel"):
    pass


class WorkflowState(_Out):
    """A workflow as its events define it (command results and historical reads)."""

    id: str
    name: str
    description: str | None
    definition: dict[str, Any]
    is_active: bool
    is_template: bool
    visibility: str
    version: int
    published_version: int | None
    tags: list[str]
    category: str | None
    variables: dict[str, Any]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    archived_at: datetime | None
    user_id: str
    revision: int
    duplicated_from: str | None
    permission: str | None
    """The caller's permission in this state (OWNER or a share level); null in a past state
    (`?version=`, `?asOf=`) from before the caller had any."""

    @classmethod
    def of(cls, workflow: Workflow, viewer_id: str) -> WorkflowState:
        return cls(**_state_fields(workflow, viewer_id))


class WorkflowCommandResult(WorkflowState):
    position: int

    @classmethod
    def recorded(cls, workflow: Workflow, position: int, viewer_id: str) -> WorkflowCommandResult:
        return cls(**_state_fields(workflow, viewer_id), position=position)


class WorkflowSummary(_Out):
    """A row of GET /workflows (no definition: fetch one workflow for that)."""

    id: str
    name: str
    description: str | None
    is_active: bool
    is_template: bool
    visibility: str
    version: int
    published_version: int | None
    tags: list[str]
    category: str | None
    execution_count: int
    success_count: int
    failure_count: int
    last_executed_at: datetime | None
    avg_execution_time: int | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    archived_at: datetime | None
    user_id: str
    revision: int
    duplicated_from: str | None
    permission: str
    """The caller's permission: OWNER, or the level of the share that lets them see it."""


class WorkflowRead(WorkflowSummary):
    """GET /workflows/{id}: the read model row, statistics included."""

    definition: dict[str, Any]
    variables: dict[str, Any]
    settings: dict[str, Any]


class WorkflowPage(_Out):
    items: list[WorkflowSummary]
    next_cursor: str | None


class FacetCount(_Out):
    """A category or tag, and how many of the workflows counted carry it."""

    name: str
    count: int


class FacetPage(_Out):
    items: list[FacetCount]
    next_cursor: str | None


class TriggerRead(_Out):
    """A trigger node of the definition the workflow runs (GET /workflows/{id}/triggers).

    Webhook triggers carry the URLs that start them; schedule triggers of an active workflow carry
    when they fire next: their armed schedule's next run time (see GET /schedules), or before the
    scheduler armed it, a cron trigger's next occurrence (an interval has none until armed)."""

    id: str
    node_id: str
    node_name: str | None
    type: str
    config: dict[str, Any]
    is_active: bool
    workflow_version: int
    webhook_path: str | None
    webhook_methods: list[str] | None
    webhook_auth_mode: str | None
    response_mode: str | None
    webhook_url: str | None
    webhook_test_url: str | None
    cron: str | None
    interval_seconds: int | None
    timezone: str | None
    misfire: str | None
    next_run_at: datetime | None
    event_workflow_id: str | None
    event_status: str | None
    event_name: str | None
    created_at: datetime
    updated_at: datetime


class TriggerList(_Out):
    items: list[TriggerRead]
    next_cursor: str | None = None


def _state_fields(workflow: Workflow, viewer_id: str) -> dict[str, Any]:
    definition = workflow.definition
    return {
        "id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "definition": definition,
        "is_active": workflow.is_active,
        "is_template": workflow.is_template,
        "visibility": workflow.visibility,
        "version": workflow.definition_version,
        "published_version": workflow.published_version,
        "tags": list(workflow.tags),
        "category": workflow.category,
        "variables": definition.get("variables", {}),
        "settings": definition.get("settings", {}),
        "created_at": workflow.created_on,
        "updated_at": workflow.modified_on,
        "published_at": workflow.published_at,
        "archived_at": workflow.archived_at,
        "user_id": workflow.owner_id,
        "revision": workflow.version,
        "duplicated_from": workflow.duplicated_from,
        "permission": workflow.permission_of(viewer_id),
    }


# -- versions ---------------------------------------------------------------------------------


class RevertVersion(_Body):
    change_message: str | None = None


class VersionSummary(_Out):
    """A row of GET /workflows/{id}/versions (no definition: fetch one version for that)."""

    id: str
    workflow_id: str
    version: int
    change_log: str | None
    is_published: bool
    published_at: datetime | None
    created_at: datetime
    created_by: str

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> VersionSummary:
        return cls(**_version_fields(row))


class VersionRead(VersionSummary):
    definition: dict[str, Any]

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> VersionRead:
        return cls(**_version_fields(row), definition=row["definition"])


class VersionPage(_Out):
    items: list[VersionSummary]
    next_cursor: str | None


class VersionDiff(_Out):
    """GET /workflows/{id}/versions/{n}/diff: applying `patch` to version `against`'s definition
    gives version `version`'s."""

    version: int
    against: int
    patch: list[dict[str, Any]]


def _version_fields(row: dict[str, Any]) -> dict[str, Any]:
    fields = {name: row[name] for name in VersionSummary.__struct_fields__ if name in row}
    fields["created_by"] = row["user_id"]
    return fields


VersionNumber = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
"""A version number in a route path: 1 or more (0 and numbers past int4 are 400)."""
# -- sharing ---------------------------------------------------------------------------------


class ShareWorkflow(_Body):
    """Name the recipient by exactly one of `userId` and `email`."""

    permission: Literal["VIEW", "EXECUTE", "EDIT", "ADMIN"]
    user_id: str | None = None
    email: str | None = None


class TransferWorkflow(_Body):
    user_id: str


class ShareRead(_Out):
    id: str
    workflow_id: str
    user_id: str
    permission: str
    shared_by: str
    created_at: datetime
    updated_at: datetime


class SharePage(_Out):
    items: list[ShareRead]
    next_cursor: str | None


class ShareCommandResult(_Out):
    """A share as granted or changed; `revision` is the workflow's (its ETag)."""

    id: str
    workflow_id: str
    user_id: str
    permission: str
    revision: int
    position: int


class UnshareResult(_Out):
    workflow_id: str
    user_id: str
    revision: int
    position: int


# -- comments --------------------------------------------------------------------------------


class PostComment(_Body):
    """A new thread (optionally about node `nodeId`), or with `parentId` a reply to one."""

    content: str
    node_id: str | None = None
    parent_id: str | None = None


class UpdateComment(_Body):
    """Only the fields present change: `content` (its author), `isResolved` (a thread's first
    comment; its author or EDIT)."""

    content: str | UnsetType = UNSET
    is_resolved: bool | UnsetType = UNSET


class _Comment(_Out):
    id: str
    workflow_id: str
    user_id: str
    node_id: str | None
    parent_id: str | None
    content: str | None
    is_resolved: bool
    revision: int


class CommentRead(_Comment):
    """A comment as the read model has it; `content` is null for a deleted comment kept because
    it has replies (`isDeleted`), and once its author's account was erased. A reply's
    `isResolved` is its thread's."""

    resolved_at: datetime | None
    resolved_by: str | None
    is_deleted: bool
    deleted_at: datetime | None
    edited_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CommentPage(_Out):
    items: list[CommentRead]
    next_cursor: str | None


class CommentCommandResult(_Comment):
    """A comment as its events left it; `revision` is its ETag. `isResolved` is the comment's
    own state (a reply's is always false; lists show a reply with its thread's)."""

    position: int

    @classmethod
    def of(cls, recorded: CommentRecorded) -> CommentCommandResult:
        comment = recorded.comment
        return cls(
            id=comment.id,
            workflow_id=comment.workflow_id,
            user_id=comment.author_id,
            node_id=comment.node_id,
            parent_id=comment.parent_id,
            content=recorded.content,
            is_resolved=comment.is_resolved,
            revision=comment.version,
            position=recorded.position,
        )


class CommentDeleted(_Out):
    id: str
    workflow_id: str
    revision: int
    position: int
