"""SecurityEvent: something an administrator should look at (failed logins, token reuse...)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class SecurityEvent(Aggregate):
    class Recorded(Aggregate.Created):
        event_type: str
        severity: str
        description: str
        user_id: str | None
        resource_type: str | None
        resource_id: str | None
        details: dict[str, Any]

    class Resolved(Aggregate.Event):
        resolved_by: str

    @event(Recorded)
    def __init__(
        self,
        event_type: str,
        severity: str,
        description: str,
        user_id: str | None,
        resource_type: str | None,
        resource_id: str | None,
        details: dict[str, Any],
    ) -> None:
        self.event_type = event_type
        self.severity = Severity(severity)
        self.user_id = user_id
        self.resolved_by: str | None = None

    @classmethod
    def record(
        cls,
        *,
        event_id: str,
        event_type: str,
        severity: Severity,
        description: str,
        user_id: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> SecurityEvent:
        return cls._create(
            cls.Recorded,
            id=event_id,
            event_type=event_type,
            severity=str(severity),
            description=description,
            user_id=user_id,
            resource_type=resource_type,
            resource_id=resource_id,
            details=details or {},
        )

    def resolve(self, by: str) -> None:
        if self.resolved_by is not None:
            raise InvalidState("the security event is already resolved")
        self._resolved(resolved_by=by)

    @event(Resolved)
    def _resolved(self, resolved_by: str) -> None:
        self.resolved_by = resolved_by
