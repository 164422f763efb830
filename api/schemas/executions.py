"""Response bodies of the execution and statistics routes (camelCase JSON)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Self

import msgspec


class _Out(msgspec.Struct, rename="camel"):
    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Self:
        """The answer for a query row (which may hold more columns, such as sort keys)."""
        return cls(**{name: row[name] for name in cls.__struct_fields__})


class ExecutionSummary(_Out):
    """A row of GET /executions (no payloads: fetch one run for those)."""

    id: str
    workflow_id: str
    workflow_version: int
    user_id: str
    """Who started the run (for a trigger, the user it runs for)."""
    status: str
    mode: str
    trigger_id: str | None
    priority: int
    parent_execution_id: str | None
    retry_of: str | None
    retry_count: int
    """Node attempts retried during the run."""
    max_retries: int | None
    error_message: str | None
    worker_id: str | None
    start_time: datetime | None
    end_time: datetime | None
    duration: int | None
    """Milliseconds, once the run ended."""
    created_at: datetime
    """When the run was queued."""
    updated_at: datetime
    revision: int


class ExecutionRead(ExecutionSummary):
    """GET /executions/{id}: the run with what it was given and what it produced."""

    trigger_data: dict[str, Any]
    input_data: list[Any]
    output_data: list[Any] | None
    error_details: dict[str, Any] | None
    context_data: dict[str, Any]
    metadata: dict[str, Any]


class ExecutionPage(_Out):
    items: list[ExecutionSummary]
    next_cursor: str | None


class NodeStateRead(_Out):
    """One node of a run (GET /executions/{id}/nodes), in definition order."""

    id: str
    execution_id: str
    node_id: str
    node_name: str | None
    node_type: str
    sequence: int
    status: str
    start_time: datetime | None
    end_time: datetime | None
    duration: int | None
    """Milliseconds its attempts ran, summed."""
    input_count: int | None
    output_data: dict[str, Any] | None
    """Items it sent, by output handle."""
    error_message: str | None
    error_details: dict[str, Any] | None
    attempt: int
    retry_count: int
    skip_reason: str | None
    created_at: datetime
    updated_at: datetime


class NodeStatePage(_Out):
    items: list[NodeStateRead]
    next_cursor: str | None


class LogRead(_Out):
    id: str
    execution_id: str
    node_id: str | None
    """The node that logged it; null for lines about the whole run."""
    level: str
    message: str
    details: dict[str, Any]
    timestamp: datetime


class LogPage(_Out):
    items: list[LogRead]
    next_cursor: str | None


class MetricRead(_Out):
    id: str
    execution_id: str
    node_id: str | None
    """The node measured; null for the whole run."""
    name: str
    """duration_ms, items_in or items_out."""
    value: float
    unit: str
    tags: dict[str, Any]
    """The node attempt measured."""
    timestamp: datetime

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Self:
        return super().of_row({**row, "name": row["metric_name"], "value": row["metric_value"]})


class MetricPage(_Out):
    items: list[MetricRead]
    next_cursor: str | None


class DailyStatsRead(_Out):
    """One day of daily_execution_stats."""

    execution_date: date
    total_executions: int
    successful_executions: int
    failed_executions: int
    avg_duration: float | None
    """Mean duration in milliseconds of the runs that ended."""
    unique_users: int
    unique_workflows: int

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Self:
        mean = row["avg_duration"]
        return super().of_row({**row, "avg_duration": None if mean is None else float(mean)})


class DailyStatsPage(_Out):
    items: list[DailyStatsRead]
    next_cursor: str | None


class WorkflowStatsRead(_Out):
    """GET /stats/workflows/{id}: the workflow's run counters."""

    workflow_id: str
    execution_count: int
    """Runs that ended, whatever the outcome."""
    success_count: int
    failure_count: int
    """Runs that failed or timed out."""
    cancelled_count: int
    success_rate: float | None
    """success_count / execution_count; null before any run ended."""
    last_executed_at: datetime | None
    """Start time of the latest run."""
    avg_execution_time: int | None
    """Mean duration in milliseconds."""

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Self:
        ended = row["execution_count"]
        return cls(
            **row,
            cancelled_count=ended - row["success_count"] - row["failure_count"],
            success_rate=row["success_count"] / ended if ended else None,
        )


class ScheduleRead(_Out):
    """A schedule of a schedule trigger node (GET /schedules)."""

    id: str
    workflow_id: str
    trigger_id: str
    node_id: str
    status: str
    """ARMED (it fires) or DISARMED."""
    cron: str | None
    interval_seconds: int | None
    timezone: str | None
    misfire: str
    """runOnce or skip: what happens to runs missed while no scheduler ran."""
    next_run_at: datetime | None
    retry_at: datetime | None
    """When a firing that failed is tried again."""
    last_run_at: datetime | None
    last_execution_id: str | None
    run_count: int
    missed_count: int
    attempts: int
    """Failed attempts to queue the latest failed occurrence's run; 0 after a run is queued."""
    retries: int
    last_error: str | None
    disarmed_reason: str | None
    created_at: datetime
    updated_at: datetime
    revision: int


class SchedulePage(_Out):
    items: list[ScheduleRead]
    next_cursor: str | None
