"""What the execution commands answer: the run as its events left it (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain.executions.execution import Execution


class ExecutionRun(msgspec.Struct, rename="camel", omit_defaults=True):
    """A queued, running or ended execution, with the event store position reached."""

    id: str
    workflow_id: str
    workflow_version: int
    mode: str
    status: str
    priority: int
    position: int
    start_time: datetime | None = None
    end_time: datetime | None = None
    parent_execution_id: str | None = None
    retry_of: str | None = None
    error_message: str | None = None
    output_items: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, execution: Execution, position: int) -> ExecutionRun:
        return cls(
            id=execution.id,
            workflow_id=execution.workflow_id,
            workflow_version=execution.workflow_version,
            mode=str(execution.mode),
            status=str(execution.status),
            priority=execution.priority,
            position=position,
            start_time=execution.started_at,
            end_time=execution.ended_at,
            parent_execution_id=execution.parent_execution_id,
            retry_of=execution.retry_of,
            error_message=execution.error_message,
            output_items=execution.output_items if execution.is_final else None,
        )
