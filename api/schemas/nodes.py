"""Response bodies of the node catalog routes (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


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


class NodePage(_Out):
    items: list[NodeSummary]
    next_cursor: str | None
