"""Response bodies of operations routes (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.retention import Report, RuleResult
from projections.rebuild_jobs import RebuildState


class RetentionRuleRun(msgspec.Struct, rename="camel"):
    """What one retention rule did."""

    rule: str
    table: str
    older_than: str
    """The age past which rows go (a PostgreSQL interval: `90 days`)."""
    rows: int
    """Rows deleted (audit_log: moved to audit_log_archive)."""
    cutoff: datetime | None
    skipped: str | None
    """Why the rule did not run (its table does not exist here)."""

    @classmethod
    def of(cls, result: RuleResult) -> RetentionRuleRun:
        rule = result.rule
        return cls(rule.name, rule.table, rule.keep, result.rows, result.cutoff, result.skipped)


class RetentionRun(msgspec.Struct, rename="camel"):
    """POST /admin/retention/run: what was pruned, and whether the daily statistics were
    refreshed. Retention records no event: `position` is the Executions log's head."""

    rules: list[RetentionRuleRun]
    refreshed: bool
    seconds: float
    position: int

    @classmethod
    def of(cls, report: Report, position: int) -> RetentionRun:
        return cls(
            [RetentionRuleRun.of(result) for result in report.results],
            report.refreshed,
            round(report.seconds, 3),
            position,
        )


class HealthCheckRead(msgspec.Struct, rename="camel"):
    """One result of a health check (a row of health_check)."""

    id: str
    service_name: str
    check_type: str
    status: str
    """HEALTHY, DEGRADED or UNHEALTHY."""
    response_time: int | None
    """Milliseconds the probe took, when it reached something remote."""
    message: str
    details: dict[str, Any]
    created_at: datetime
    next_check_at: datetime

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> HealthCheckRead:
        return cls(**{name: row[name] for name in cls.__struct_fields__})


class HealthCheckPage(msgspec.Struct, rename="camel"):
    items: list[HealthCheckRead]
    next_cursor: str | None


class SettingChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /admin/settings/{key}: the new value, of the setting's type."""

    value: Any


class SettingRead(msgspec.Struct, rename="camel", omit_defaults=True):
    """A runtime setting: the value in effect and where it comes from (`stored` by an admin,
    else the `environment` variable, else the built-in `default`)."""

    key: str
    type: str
    value: Any
    default: Any
    source: str
    description: str
    live: bool
    """Takes effect without a restart (every setting here does)."""
    variable: str | None = None
    """The environment variable that sets the default."""
    choices: list[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    """Range of the value (intervals: in days)."""
    changed_by: str | None = None
    changed_at: datetime | None = None
    revision: int | None = None
    position: int | None = None
    """After a change: the event store position reached (Operations log)."""


class SettingPage(msgspec.Struct, rename="camel"):
    items: list[SettingRead]
    next_cursor: str | None = None


class SettingChangeRead(msgspec.Struct, rename="camel"):
    """One event of a setting's history."""

    value: Any
    previous: Any
    reset: bool
    changed_by: str
    changed_at: datetime
    version: int


class SettingHistoryPage(msgspec.Struct, rename="camel"):
    items: list[SettingChangeRead]
    next_cursor: str | None = None


class SystemLogRead(msgspec.Struct, rename="camel"):
    id: str
    level: str
    service: str
    component: str
    event: str
    message: str
    metadata: dict[str, Any] | None
    correlation_id: str | None
    user_id: str | None
    host: str
    pid: int
    timestamp: datetime


class SystemLogPage(msgspec.Struct, rename="camel"):
    items: list[SystemLogRead]
    next_cursor: str | None


class RebuildRead(msgspec.Struct, rename="camel"):
    """The latest rebuild of a projector started through the API."""

    state: str
    """running, succeeded, failed, or interrupted (its process stopped while it ran)."""
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    events_done: int
    events_total: int
    positions: dict[str, int] | None
    error: str | None

    @classmethod
    def of(cls, found: RebuildState) -> RebuildRead:
        return cls(
            found.state,
            found.requested_by,
            found.started_at,
            found.finished_at,
            found.events_done,
            found.events_total,
            found.positions,
            found.error,
        )


class RebuildStarted(msgspec.Struct, rename="camel"):
    """POST /admin/projections/{name}/rebuild: the rebuild runs in the background; `watch` is
    where its state shows (the projector's `rebuild`). A rebuild records no event: `position`
    is the Operations log's head."""

    projector: str
    rebuild: RebuildRead
    watch: str
    position: int


class ProjectorRead(msgspec.Struct, rename="camel"):
    """Where one projector stands in one event log (`a2n project status`)."""

    projector: str
    application: str
    position: int
    head: int
    lag: int
    state: str
    """parked, or how its runner in this process does (running, standby, restarting, ...), or
    external when another process runs it."""
    updated_at: datetime | None
    parked: dict[str, Any] | None
    skipped: list[dict[str, Any]]
    last_error: str | None = None
    restarts: int | None = None
    rebuild: RebuildRead | None = None
    """The latest rebuild started through the API, if any."""


class ProjectorPage(msgspec.Struct, rename="camel"):
    items: list[ProjectorRead]
    next_cursor: str | None = None
