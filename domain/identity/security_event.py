"""SecurityEvent: something an administrator should look at (failed logins, token reuse...)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, ValidationFailed, Violation

MAX_NOTE = 2000


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
        note: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no note."""
            state["note"] = None

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

    def resolve(self, by: str, note: str | None = None) -> None:
        """Mark it dealt with, saying how in `note` (plain text; newlines and tabs allowed)."""
        if note is not None:
            note = note.strip()
            if (
                not note
                or len(note) > MAX_NOTE
                or any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in note)
            ):
                raise ValidationFailed(
                    [Violation("/note", f"must be 1 to {MAX_NOTE} printable characters")]
                )
        if self.resolved_by is not None:
            raise InvalidState("the security event is already resolved")
        self._resolved(resolved_by=by, note=note)

    @event(Resolved)
    def _resolved(self, resolved_by: str, note: str | None) -> None:
        self.resolved_by = resolved_by
