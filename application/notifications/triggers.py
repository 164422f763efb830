"""What raises notifications from the event logs: a process manager (projections/notifications.py)
calls these handlers with its cursor, so each notification's deliveries commit with the manager's
position, and a re-delivered event raises nothing twice (dedupe keys name the event, and the
notification's id derives from its key).

- A run ends SUCCESS, FAILED or TIMEOUT and the version that ran asks for it in
  `settings.notifications` (domain/notifications.py): the workflow's owner is told on its channels.
- A security event of severity HIGH or CRITICAL is recorded: administrators are alerted on the alert
  channels; a lockout also tells the locked account by email.
- A health check changes status (a `HealthCheck` event, domain/operations/health.py): first
  seen failing, became degraded or unhealthy, recovered: administrators are alerted on the alert
  channels. Once per change, never per sample; and a check flapping between two statuses alerts
  at most once per status and hour.
- Two-factor sign-in is turned off, an API key is created: the account's owner is told by email
  (someone else holding the session would otherwise go unnoticed).

Events older than MAX_AGE are left alone: a manager catching up on history (a new installation)
would otherwise send news long stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from psycopg import Cursor

from application.errors import NotFound
from application.executions.commands import ExecutionService
from application.executions.event_triggers import ending_of
from application.notifications.store import Notice, Notifier
from domain.errors import UnknownPart
from domain.executions.execution import Execution, ExecutionMode, ExecutionStatus
from domain.identity.api_key import ApiKey
from domain.identity.security_event import SecurityEvent
from domain.identity.user import User
from domain.notifications import Severity, notification_settings
from domain.operations.health import STATUS_OF, HealthCheck, HealthStatus

log = structlog.get_logger("a2n.notifications")

MAX_AGE = timedelta(hours=1)
ALERTING_SEVERITIES: dict[str, Severity] = {"HIGH": "error", "CRITICAL": "critical"}
"""Security events that alert: a lockout, a reused refresh token... Single failed sign-ins
(MEDIUM) would flood the channels during an attack; the lockout they lead to alerts."""
_ENDINGS: dict[ExecutionStatus, tuple[str, str, Severity]] = {
    ExecutionStatus.SUCCESS: ("execution.succeeded", "succeeded", "info"),
    ExecutionStatus.FAILED: ("execution.failed", "failed", "error"),
    ExecutionStatus.TIMEOUT: ("execution.timed_out", "timed out", "error"),
}
USER_CHANNELS = ("email",)


class NotificationTriggers:
    """Turns events into notifications (see the module docstring)."""

    def __init__(
        self, executions: ExecutionService, notifier: Notifier, alert_channels: Sequence[str]
    ) -> None:
        self.executions = executions
        self.notifier = notifier
        self.alert_channels = tuple(alert_channels)

    def execution_ended(self, cur: Cursor[Any], event: Execution.Event) -> str | None:
        if _stale(event):
            return None
        ending = ending_of(self.executions, event)
        known = _ENDINGS.get(ending.status)
        if known is None or ending.mode is ExecutionMode.TEST:
            return None
        try:
            definition = self.executions.workflows.version_definition(
                ending.workflow_id, ending.workflow_version
            )
        except (NotFound, UnknownPart):
            return None
        wanted = notification_settings(definition.get("settings"))
        if wanted is None or not wanted.wants(str(ending.status)):
            return None
        row = cur.execute(
            "SELECT user_id, name FROM workflow WHERE id = %s", (ending.workflow_id,)
        ).fetchone()
        owner, name = row if row is not None else (ending.user_id, ending.workflow_id)
        kind, verb, severity = known
        lines = [
            f"Workflow: {name} ({ending.workflow_id}, version {ending.workflow_version})",
            f"Execution: {ending.execution_id}",
            f"Ended: {ending.ended_at.isoformat()}",
        ]
        if ending.error and ending.error.get("message"):
            where = ending.error.get("nodeName")
            lines.append(f"Error{f' in {where}' if where else ''}: {ending.error['message']}")
        notice = Notice(
            kind=kind,
            title=f"Workflow {name!r} {verb}",
            body="\n".join(lines),
            severity=severity,
            user_id=owner,
            sender_id=ending.user_id,
            resource_type="execution",
            resource_id=ending.execution_id,
            dedupe_key=f"execution:{ending.execution_id}:{ending.status}",
        )
        return self.notifier.raise_notification(cur, notice, wanted.channels)

    def security_event(self, cur: Cursor[Any], event: SecurityEvent.Recorded) -> None:
        severity = ALERTING_SEVERITIES.get(event.severity)
        if severity is None or _stale(event):
            return
        kind = f"security.{event.event_type.lower()}"
        alert = Notice(
            kind=kind,
            title=f"Security event: {event.event_type}",
            body=f"{event.description}\nUser: {event.user_id or '-'}\nEvent: {event.originator_id}",
            severity=severity,
            resource_type="security_event",
            resource_id=str(event.originator_id),
            dedupe_key=f"security:{event.originator_id}",
        )
        self.notifier.raise_notification(cur, alert, self.alert_channels)
        if event.event_type == "LOGIN_LOCKOUT" and event.user_id:
            self._tell_user(
                cur,
                event,
                event.user_id,
                "account.locked",
                "Your account was locked after failed sign-ins",
                "Sign-in to your account is locked for a while after repeated failed attempts. "
                "If these were not you, change your password once the lock ends.",
            )

    def health_check_changed(
        self, cur: Cursor[Any], event: HealthCheck.Registered | HealthCheck.Changed
    ) -> str | None:
        status, message, at = health_change(event)
        if _stale(event) or (status is HealthStatus.HEALTHY and event.originator_version == 1):
            return None  # first seen healthy: nothing to tell
        name = event.service_name
        severity: Severity = "info"
        kind, title = "health_check.recovered", f"Health check {name} recovered"
        if status is not HealthStatus.HEALTHY:
            kind, title = "health_check.failed", f"Health check {name} is {status}"
            severity = "critical" if status is HealthStatus.UNHEALTHY else "warning"
        alert = Notice(
            kind=kind,
            title=title,
            body=message or f"The health check {name} reports {status}.",
            severity=severity,
            resource_type="health_check",
            resource_id=name,
            dedupe_key=f"health_check:{event.originator_id}:{status}:{at:%Y-%m-%dT%H}",
        )
        return self.notifier.raise_notification(cur, alert, self.alert_channels)

    def two_factor_disabled(self, cur: Cursor[Any], event: User.TwoFactorDisabled) -> None:
        self._tell_user(
            cur,
            event,
            str(event.originator_id),
            "security.two_factor_disabled",
            "Two-factor sign-in was turned off",
            "Two-factor sign-in was turned off for your account. If this was not you, sign in, "
            "turn it back on and change your password.",
        )

    def api_key_created(self, cur: Cursor[Any], event: ApiKey.Created) -> None:
        self._tell_user(
            cur,
            event,
            event.user_id,
            "security.api_key_created",
            f"API key {event.name!r} created",
            f"An API key named {event.name!r} (prefix {event.prefix}) was created for your "
            "account. If this was not you, revoke it and change your password.",
        )

    def _tell_user(
        self, cur: Cursor[Any], event: Any, user_id: str, kind: str, title: str, body: str
    ) -> None:
        if _stale(event):
            return
        notice = Notice(
            kind=kind,
            title=title,
            body=body,
            severity="warning",
            user_id=user_id,
            resource_type="user",
            resource_id=user_id,
            dedupe_key=f"{kind}:{event.originator_id}:{event.originator_version}",
        )
        self.notifier.raise_notification(cur, notice, USER_CHANNELS)


def health_change(
    event: HealthCheck.Registered | HealthCheck.Changed,
) -> tuple[HealthStatus, str, datetime]:
    """The status a HealthCheck event leads to, its message and when it was observed."""
    if isinstance(event, HealthCheck.Registered):
        return HealthStatus(event.status), event.message, event.observed_at
    return STATUS_OF[type(event)], event.message, event.observed_at


def _stale(event: Any) -> bool:
    return bool(event.timestamp < datetime.now(UTC) - MAX_AGE)
