"""Recording health checks' changes of status as events (domain/operations/health.py).

The monitor hands every sample here after storing it as a `health_check` row. A sample whose
status is the one in effect costs nothing (this process remembers each check's status); a change
loads the check's aggregate and records `Registered`, `Degraded`, `BecameUnhealthy` or
`Recovered` in the Operations log. The notification process manager raises the administrators'
alert from that event (application/notifications/triggers.py), and the `operations` projector
keeps `health_check_state`.
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.persistence import IntegrityError

from application.errors import NotFound
from application.eventstore import EventMetadata
from application.health.checks import Result
from application.operations.app import OperationsApp
from domain.operations.health import HealthCheck, HealthStatus, health_check_id_for

SCHEDULER = EventMetadata(actor_id="system")


class HealthStates:
    def __init__(self, app: OperationsApp) -> None:
        self.app = app
        self._status: dict[str, HealthStatus] = {}
        """The status in effect of each check this process recorded or loaded."""

    def observe(self, result: Result, at: datetime) -> int | None:
        """Record the sample's change of status, if it is one; the position reached, or None
        when nothing changed."""
        check_id = health_check_id_for(result.service_name, result.check_type)
        status = HealthStatus(result.status.value)
        if self._status.get(check_id) is status:
            return None
        changed: list[bool] = []

        def observe(check: HealthCheck) -> None:
            changed.append(check.observe(status, result.message, result.response_time, at))

        try:
            recorded = self.app.change(check_id, HealthCheck, observe, SCHEDULER)
            self._status[check_id] = recorded.aggregate.status
            return recorded.position if changed[-1] else None
        except NotFound:
            check = HealthCheck.register(
                result.service_name,
                result.check_type,
                status,
                result.message,
                result.response_time,
                at,
            )
            try:
                position = self.app.record(SCHEDULER, check)
            except IntegrityError:  # registered by another process meanwhile
                return self.observe(result, at)
            self._status[check_id] = check.status
            return position
