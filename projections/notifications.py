"""The notification process manager: follows the Executions, Identity and Operations logs like a
projector
(tracked in `projection_tracking`, one process at a time, parked by the supervisor) and raises
notifications in the same transaction as its position (application/notifications/triggers.py).

It runs beside the execution workers, where the write side is at hand. It is never rebuilt:
replaying old events would notify again (its dedupe keys and MAX_AGE also keep that from
happening).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import Cursor

from domain.executions.execution import FINAL_EVENTS
from domain.identity.api_key import ApiKey
from domain.identity.security_event import SecurityEvent
from domain.identity.user import User
from domain.operations.health import HealthCheck
from projections.projector import EventContext, Projector

if TYPE_CHECKING:
    from application.notifications.triggers import NotificationTriggers

NAME = "notifications"
APPLICATIONS = ("executions", "identity", "operations")
ABOUT = (
    "raises notifications when runs end, security events happen, accounts change and health "
    "checks change status"
)

description = Projector(NAME, applications=APPLICATIONS, tables=(), about=ABOUT)
"""The manager as status and resume commands see it (no handlers: those need the write side)."""


def process_manager(triggers: NotificationTriggers) -> Projector:
    """The manager, raising notifications through `triggers`."""
    manager = Projector(NAME, applications=APPLICATIONS, tables=(), about=ABOUT)

    @manager.on(*FINAL_EVENTS)
    def execution_ended(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        triggers.execution_ended(cur, event)

    @manager.on(SecurityEvent.Recorded)
    def security_event(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        triggers.security_event(cur, event)

    @manager.on(User.TwoFactorDisabled)
    def two_factor_disabled(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        triggers.two_factor_disabled(cur, event)

    @manager.on(ApiKey.Created)
    def api_key_created(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        triggers.api_key_created(cur, event)

    @manager.on(
        HealthCheck.Registered,
        HealthCheck.Degraded,
        HealthCheck.BecameUnhealthy,
        HealthCheck.Recovered,
    )
    def health_check_changed(cur: Cursor[Any], event: Any, ctx: EventContext) -> None:
        triggers.health_check_changed(cur, event)

    return manager
