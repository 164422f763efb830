"""Response bodies of operations routes (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.retention import Report, RuleResult


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
