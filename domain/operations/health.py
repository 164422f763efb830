"""A health check's state over time: the changes of its status, not its samples.

The elected scheduler samples every configured check on its interval; the samples are telemetry
(the `health_check` rows, kept 30 days). What is worth keeping for ever, and what administrators
are alerted about, is when a check's status *changes*: it was first seen, it became degraded or
unhealthy, it recovered. Each configured check (a service name and a check type) is one
`HealthCheck` aggregate whose id derives from the two, so every process that samples it finds the
same one; `observe` records an event only when the status differs from the one in effect, so a
check failing on every sample records one fact, not one per sample.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate

_IDS = uuid.UUID("0c7f6f43-92a1-4f0e-b7a5-5d3e1c8a9b27")
MESSAGE_LENGTH = 500


class HealthStatus(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"


def health_check_id_for(service_name: str, check_type: str) -> str:
    """The id of the check of `service_name` by a check of `check_type` (the same for ever)."""
    return str(uuid.uuid5(_IDS, f"{check_type}\x00{service_name}"))


class HealthCheck(Aggregate):
    """The status in effect of one configured health check, and since when."""

    class Registered(Aggregate.Created):
        """The check's first sample: its status from then on."""

        service_name: str
        check_type: str
        status: str
        message: str
        response_time: int | None
        observed_at: datetime

    class Changed(Aggregate.Event):
        """Base of the status changes (never stored itself)."""

        service_name: str
        previous: str
        message: str
        response_time: int | None
        observed_at: datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.status = STATUS_OF[type(self)]
            aggregate.message = self.message
            aggregate.since = self.observed_at

    class Degraded(Changed):
        """Past a warning threshold (from HEALTHY or UNHEALTHY)."""

    class BecameUnhealthy(Changed):
        """Failing."""

    class Recovered(Changed):
        """HEALTHY again."""

    @event(Registered)
    def __init__(
        self,
        service_name: str,
        check_type: str,
        status: str,
        message: str,
        response_time: int | None,
        observed_at: datetime,
    ) -> None:
        self.service_name = service_name
        self.check_type = check_type
        self.status = HealthStatus(status)
        self.message = message
        self.since = observed_at

    @classmethod
    def register(
        cls,
        service_name: str,
        check_type: str,
        status: HealthStatus,
        message: str,
        response_time: int | None,
        observed_at: datetime,
    ) -> HealthCheck:
        return cls._create(
            cls.Registered,
            id=health_check_id_for(service_name, check_type),
            service_name=service_name,
            check_type=check_type,
            status=HealthStatus(status).value,
            message=message[:MESSAGE_LENGTH],
            response_time=response_time,
            observed_at=observed_at,
        )

    def observe(
        self,
        status: HealthStatus,
        message: str,
        response_time: int | None,
        observed_at: datetime,
    ) -> bool:
        """A sample of the check: records the change when its status differs from the one in
        effect (True), nothing otherwise (False). A sample older than the change in effect (a
        slower process) changes nothing either."""
        status = HealthStatus(status)
        if status is self.status or observed_at < self.since:
            return False
        self.trigger_event(
            _CHANGE_TO[status],
            service_name=self.service_name,
            previous=self.status.value,
            message=message[:MESSAGE_LENGTH],
            response_time=response_time,
            observed_at=observed_at,
        )
        return True


STATUS_OF: dict[type[HealthCheck.Changed], HealthStatus] = {
    HealthCheck.Degraded: HealthStatus.DEGRADED,
    HealthCheck.BecameUnhealthy: HealthStatus.UNHEALTHY,
    HealthCheck.Recovered: HealthStatus.HEALTHY,
}
"""The status each change event leads to."""
_CHANGE_TO: dict[HealthStatus, type[HealthCheck.Changed]] = {
    status: change for change, status in STATUS_OF.items()
}
