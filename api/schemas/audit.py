"""Response bodies of the audit routes (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.audit import AggregateState, RecordedEvent
from application.event_chain import ChainReport, LogCheck


class AuditEvent(msgspec.Struct, rename="camel"):
    """One stored event: its place in its log, its own fields (secrets hidden) and metadata."""

    application: str
    position: int
    aggregate_id: str
    aggregate_version: int
    type: str
    topic: str
    timestamp: datetime
    data: dict[str, Any]
    metadata: dict[str, str]

    @classmethod
    def of(cls, event: RecordedEvent) -> AuditEvent:
        return cls(**vars(event))


class AuditEventPage(msgspec.Struct, rename="camel"):
    items: list[AuditEvent]
    next_cursor: str | None


class AuditStreamPage(msgspec.Struct, rename="camel"):
    """GET /audit/events: a page of the stream, and where it stands in every log it read."""

    items: list[AuditEvent]
    next_cursor: str | None
    after: str
    """Send as `after` to read on from here later (`identity:12,workflows:40,...`)."""


class AggregateStateRead(msgspec.Struct, rename="camel"):
    application: str
    aggregate_id: str
    type: str
    version: int
    latest_version: int
    timestamp: datetime
    state: dict[str, Any]

    @classmethod
    def of(cls, found: AggregateState) -> AggregateStateRead:
        return cls(**vars(found))


class AuditLogRead(msgspec.Struct, rename="camel"):
    id: str
    application: str
    position: int
    user_id: str | None
    action: str
    resource: str
    resource_id: str
    resource_version: int
    old_values: Any
    new_values: Any
    ip_address: str | None
    user_agent: str | None
    correlation_id: str | None
    metadata: dict[str, Any]
    timestamp: datetime


class AuditLogPage(msgspec.Struct, rename="camel"):
    items: list[AuditLogRead]
    next_cursor: str | None


class ChainBreakRead(msgspec.Struct, rename="camel"):
    kind: str
    position: int
    aggregate_id: str
    aggregate_version: int
    detail: str


class LogCheckRead(msgspec.Struct, rename="camel"):
    application: str
    ok: bool
    checked: int
    sealed_through: int
    sealed_link: str | None
    unsealed: int
    broken: ChainBreakRead | None

    @classmethod
    def of(cls, check: LogCheck) -> LogCheckRead:
        broken = check.broken
        return cls(
            application=check.application,
            ok=check.ok,
            checked=check.checked,
            sealed_through=check.sealed_through,
            sealed_link=check.sealed_link,
            unsealed=check.unsealed,
            broken=None
            if broken is None
            else ChainBreakRead(
                kind=broken.kind,
                position=broken.position,
                aggregate_id=broken.aggregate_id,
                aggregate_version=broken.aggregate_version,
                detail=broken.describe(check.application),
            ),
        )


class ChainReportRead(msgspec.Struct, rename="camel"):
    """GET /audit/verify: ok, or per log the first event that no longer matches its seal."""

    ok: bool
    logs: list[LogCheckRead]

    @classmethod
    def of(cls, report: ChainReport) -> ChainReportRead:
        return cls(ok=report.ok, logs=[LogCheckRead.of(check) for check in report.logs])
