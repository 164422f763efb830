"""Response bodies of the node catalog routes (camelCase JSON)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from domain.nodes.collection import NodeCollection
from domain.nodes.definition import NodeDefinition
from domain.nodes.rating import NodeRating
from domain.nodes.template import NodeTemplate


class _Out(msgspec.Struct, rename="camel"):
    pass


class NodeSummary(_Out):
    """A row of GET /nodes (no schemas: fetch one node for those)."""

    id: str
    name: str
    display_name: str
    description: str | None
    type: str
    category: str
    version: str
    is_active: bool
    is_built_in: bool
    is_public: bool
    icon: str | None
    color: str | None
    tags: list[str]
    metadata: dict[str, Any]
    usage_count: int
    success_rate: int | None
    avg_execution_time: int | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    deprecated_at: datetime | None
    created_by: str | None
    replaced_by: str | None
    """Once deprecated: the node type to use instead, if its author named one."""
    revision: int | None
    """A custom node's event count (its ETag); null for built-ins."""
    rating_average: float | None
    """Mean of its ratings, 1 to 5; null while unrated."""
    rating_count: int


class NodeVersionRead(_Out):
    version: str
    published_at: datetime | None
    created_at: datetime
    created_by: str
    change_log: str | None


class NodeRead(NodeSummary):
    """GET /nodes/{id}: settingsSchema is the JSON Schema of the node's `config`."""

    documentation: str | None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    settings_schema: dict[str, Any]
    credentials: dict[str, Any] | None
    rate_limit: dict[str, Any] | None
    retry_policy: dict[str, Any] | None
    timeout: int | None
    execution_mode: str
    implementation: dict[str, Any] | None
    deprecation_reason: str | None
    versions: list[NodeVersionRead]
    """A custom node's versions, oldest first (others see only published ones); [] for
    built-ins."""


class NodePage(_Out):
    items: list[NodeSummary]
    next_cursor: str | None


class _Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    pass


class CreateNode(_Body):
    """A custom node type and its first version (unpublished until POST .../publish).

    `name` is the type workflow definitions use, namespaced (`acme.send_invoice`); they pin a
    version: `"type": "acme.send_invoice@1.0.0"`. `settingsSchema` is the JSON Schema of the
    node's `config`; `inputSchema` / `outputSchema` of the items it takes and emits."""

    name: str
    type: str
    """ACTION, TRANSFORM or FLOW (a plain string: the decoder's enum error is less helpful)."""
    display_name: str
    implementation: dict[str, Any]
    """{"runtime": "PYTHON", "entryPoint"}, {"runtime": "NODE", "source"} (a JavaScript module:
    `module.exports = async (items, config, context) => items`), {"runtime": "WEBHOOK", "url",
    "timeoutMs"?, "retries"?} or {"runtime": "DOCKER", "image"}."""
    version: str = "1.0.0"
    description: str | None = None
    category: str = "custom"
    visibility: str = "PRIVATE"
    icon: str | None = None
    color: str | None = None
    documentation: str | None = None
    tags: list[str] = []
    settings_schema: dict[str, Any] | UnsetType = UNSET
    input_schema: dict[str, Any] | UnsetType = UNSET
    output_schema: dict[str, Any] | UnsetType = UNSET
    outputs: list[str] | UnsetType = UNSET
    timeout: int | UnsetType | None = UNSET
    execution_mode: str | UnsetType = UNSET
    change_log: str | None = None


DETAIL_KEYS = (
    "display_name",
    "description",
    "category",
    "visibility",
    "icon",
    "color",
    "documentation",
    "tags",
)
VERSION_KEYS = (
    "version",
    "settings_schema",
    "input_schema",
    "output_schema",
    "outputs",
    "implementation",
    "timeout",
    "execution_mode",
    "change_log",
)


class UpdateNode(_Body):
    """Only the fields present change. Schemas, outputs, implementation, timeout and execution
    mode belong to a version: changing any of them records a new `version` (required then,
    higher than the latest), whose other parts are the latest version's."""

    display_name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    category: str | UnsetType = UNSET
    visibility: str | UnsetType = UNSET
    icon: str | UnsetType | None = UNSET
    color: str | UnsetType | None = UNSET
    documentation: str | UnsetType | None = UNSET
    tags: list[str] | UnsetType = UNSET
    version: str | UnsetType = UNSET
    settings_schema: dict[str, Any] | UnsetType = UNSET
    input_schema: dict[str, Any] | UnsetType = UNSET
    output_schema: dict[str, Any] | UnsetType = UNSET
    outputs: list[str] | UnsetType = UNSET
    implementation: dict[str, Any] | UnsetType = UNSET
    timeout: int | UnsetType | None = UNSET
    execution_mode: str | UnsetType = UNSET
    change_log: str | UnsetType | None = UNSET


class PublishNode(_Body):
    """Which version to publish; the latest when left out."""

    version: str | None = None


class DeprecateNode(_Body):
    """`replacement`: the node type users should move to (a built-in or a custom node)."""

    replacement: str | None = None
    reason: str | None = None


class NodeVersionState(_Out):
    version: str
    published_at: datetime | None
    change_log: str | None
    implementation: dict[str, Any]


class NodeCommandResult(_Out):
    """A custom node as its events define it, after a command."""

    id: str
    name: str
    type: str
    display_name: str
    description: str | None
    category: str
    visibility: str
    icon: str | None
    color: str | None
    documentation: str | None
    tags: list[str]
    latest_version: str
    versions: list[NodeVersionState]
    is_active: bool
    deprecated_at: datetime | None
    replaced_by: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    revision: int
    position: int
    signing_secret: str | None
    """The key a WEBHOOK version's requests are signed with (see README, *Custom nodes in
    workflows*), in the answer to the command that recorded that version only; else null."""

    @classmethod
    def recorded(
        cls, node: NodeDefinition, position: int, signing_secret: str | None
    ) -> NodeCommandResult:
        return cls(
            signing_secret=signing_secret,
            id=node.id,
            name=node.name,
            type=node.kind,
            display_name=node.display_name,
            description=node.description,
            category=node.category,
            visibility=node.visibility,
            icon=node.icon,
            color=node.color,
            documentation=node.documentation,
            tags=node.tags,
            latest_version=node.latest["version"],
            versions=[
                NodeVersionState(
                    version=number,
                    published_at=node.published.get(number),
                    change_log=spec["change_log"],
                    implementation=spec["implementation"],
                )
                for number, spec in node.versions.items()
            ],
            is_active=not node.is_deprecated,
            deprecated_at=node.deprecated_at,
            replaced_by=node.replacement,
            created_by=node.author_id,
            created_at=node.created_on,
            updated_at=node.modified_on,
            revision=node.version,
            position=position,
        )


class RateNode(_Body):
    """1 to 5 stars, and optionally what you think of the node (up to 5000 characters)."""

    rating: int
    review: str | None = None


class RatingRead(_Out):
    id: str
    node_definition_id: str
    user_id: str
    rating: int
    review: str | None
    created_at: datetime
    updated_at: datetime
    revision: int


class RatingCommandResult(_Out):
    id: str
    node_definition_id: str
    user_id: str
    rating: int
    review: str | None
    revision: int
    position: int

    @classmethod
    def recorded(cls, rating: NodeRating, position: int, review: str | None) -> RatingCommandResult:
        """`review`: the text as sent (the aggregate holds it sealed)."""
        return cls(
            id=rating.id,
            node_definition_id=rating.node_id,
            user_id=rating.user_id,
            rating=rating.rating,
            review=review,
            revision=rating.version,
            position=position,
        )


class RatingPage(_Out):
    items: list[RatingRead]
    next_cursor: str | None


class UsageDay(_Out):
    date: date
    executions: int
    successes: int
    failures: int
    avg_duration_ms: int
    p95_duration_ms: int
    """To within 10% (a histogram of durations)."""
    distinct_users: int


class NodeStats(_Out):
    """A node type's runs: all time (`usageCount`, `successRate` in %, `avgExecutionTime` in ms)
    and per UTC day from `from` to `to` (days without runs left out)."""

    node_definition_id: str
    usage_count: int
    success_rate: int | None
    avg_execution_time: int | None
    from_: date = msgspec.field(name="from")
    to: date
    days: list[UsageDay]


class CreateCollection(_Body):
    """`items`: node types by id or type name, in order (built-in names, custom node ids)."""

    name: str
    description: str | None = None
    visibility: str = "PRIVATE"
    items: list[str] = []


class AddCollectionItem(_Body):
    """A node type by id or type name; `position` 0 puts it first (the end by default)."""

    node_id: str
    position: int | None = None


class UpdateCollection(_Body):
    """Only the fields present change; `items` lists the collection's nodes (ids or type
    names), each once, in their new order."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    visibility: str | UnsetType = UNSET
    items: list[str] | UnsetType = UNSET


class CollectionRead(_Out):
    id: str
    name: str
    description: str | None
    visibility: str
    item_count: int
    items: list[str]
    """node_definition ids, in order."""
    user_id: str
    created_at: datetime
    updated_at: datetime
    revision: int


class CollectionCommandResult(_Out):
    id: str
    name: str
    description: str | None
    visibility: str
    items: list[str]
    user_id: str
    revision: int
    position: int

    @classmethod
    def recorded(cls, collection: NodeCollection, position: int) -> CollectionCommandResult:
        return cls(
            id=collection.id,
            name=collection.name,
            description=collection.description,
            visibility=collection.visibility,
            items=list(collection.items),
            user_id=collection.owner_id,
            revision=collection.version,
            position=position,
        )


class CollectionPage(_Out):
    items: list[CollectionRead]
    next_cursor: str | None


class CreateTemplate(_Body):
    """`nodeType` as a definition names it: a built-in type or a pinned `type@version`;
    `config` must suit its schema."""

    node_type: str
    name: str
    config: dict[str, Any] = {}
    description: str | None = None
    visibility: str = "PRIVATE"
    tags: list[str] = []


class UpdateTemplate(_Body):
    """Only the fields present change; `config` is checked against the template's node type."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    visibility: str | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET


class TemplateRead(_Out):
    id: str
    node_definition_id: str
    node_type: str
    name: str
    description: str | None
    visibility: str
    config: dict[str, Any]
    tags: list[str]
    user_id: str
    created_at: datetime
    updated_at: datetime
    revision: int


class TemplateCommandResult(_Out):
    id: str
    node_definition_id: str
    node_type: str
    name: str
    description: str | None
    visibility: str
    config: dict[str, Any]
    tags: list[str]
    user_id: str
    revision: int
    position: int

    @classmethod
    def recorded(cls, template: NodeTemplate, position: int) -> TemplateCommandResult:
        return cls(
            id=template.id,
            node_definition_id=template.node_id,
            node_type=template.node_type,
            name=template.name,
            description=template.description,
            visibility=template.visibility,
            config=template.config,
            tags=template.tags,
            user_id=template.owner_id,
            revision=template.version,
            position=position,
        )


class TemplatePage(_Out):
    items: list[TemplateRead]
    next_cursor: str | None
