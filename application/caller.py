"""Who issues a command or query, and from which request."""

from __future__ import annotations

from dataclasses import dataclass, replace

from application.eventstore import EventMetadata


@dataclass(frozen=True)
class Caller:
    """The authenticated actor plus the request facts every event records."""

    user_id: str
    correlation_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    def acting_as(self, user_id: str) -> Caller:
        """The same request, now attributed to `user_id` (who just signed up or in)."""
        return replace(self, user_id=user_id)

    def metadata(self, causation_id: str | None = None) -> EventMetadata:
        return EventMetadata(
            actor_id=self.user_id,
            correlation_id=self.correlation_id,
            causation_id=causation_id or self.correlation_id,
            ip=self.ip,
            user_agent=self.user_agent,
        )
