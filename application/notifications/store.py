"""Raising a notification: one `system_notification` row and a queued `notification_delivery` per
channel, in the caller's transaction (a process manager's, so a notification and the position of
the event it came from commit together). A `dedupe_key` makes raising idempotent: the second
raise of the same key stores nothing.

`Alerts.raise_alert` is the port other parts call for what administrators must hear about (a
parked projector, a failing health check): it goes to the alert channels (A2N_ALERT_CHANNELS, by
default every configured one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from psycopg import Connection, Cursor
from psycopg_pool import ConnectionPool

from application.ids import new_id
from domain.notifications import CHANNELS, SEVERITIES, Channel, Severity
from domain.text import clean_text

if TYPE_CHECKING:
    from application.settings import Settings

log = structlog.get_logger("a2n.notifications")

MAX_TITLE = 200
MAX_BODY = 4000


@dataclass(frozen=True)
class Notice:
    """What to tell, whom, and what it is about."""

    kind: str
    title: str
    body: str
    severity: Severity = "info"
    user_id: str | None = None
    """The user it is for; None: administrators only."""
    sender_id: str = "system"
    resource_type: str | None = None
    resource_id: str | None = None
    dedupe_key: str | None = None


def raise_notification(
    cur: Cursor[Any] | Connection[Any], notice: Notice, channels: Iterable[str]
) -> str | None:
    """Store `notice` with a queued delivery per channel; its id, or None when a notification
    with its dedupe key exists already."""
    if notice.severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    chosen = [channel for channel in CHANNELS if channel in set(channels)]
    notification_id = new_id()
    row = cur.execute(
        "INSERT INTO system_notification (id, user_id, sender_id, kind, severity, title, body, "
        "resource_type, resource_id, dedupe_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (
            notification_id,
            notice.user_id,
            notice.sender_id,
            clean_text(notice.kind, 100),
            notice.severity,
            clean_text(" ".join(notice.title.split()), MAX_TITLE),
            clean_text(notice.body, MAX_BODY),
            notice.resource_type,
            notice.resource_id,
            notice.dedupe_key,
        ),
    ).fetchone()
    if row is None:
        return None
    for channel in chosen:
        cur.execute(
            "INSERT INTO notification_delivery (id, notification_id, channel) VALUES (%s, %s, %s)",
            (new_id(), notification_id, channel),
        )
    log.info(
        "notification raised", notification_id=notification_id, kind=notice.kind, channels=chosen
    )
    return notification_id


def drop_notifications(conn: Connection[Any], user_id: str) -> None:
    """Delete every notification meant for this user, with its deliveries (erasure)."""
    conn.execute("DELETE FROM system_notification WHERE user_id = %s", (user_id,))


def configured_channels(settings: Settings) -> tuple[Channel, ...]:
    """Channels with a destination in the settings (email: SMTP is set up)."""
    present = {
        "email": settings.smtp is not None,
        "slack": bool(settings.notify_slack_url),
        "discord": bool(settings.notify_discord_url),
        "webhook": bool(settings.notify_webhook_url),
    }
    return tuple(channel for channel in CHANNELS if present[channel])


def alert_channels(settings: Settings) -> tuple[str, ...]:
    """Where administrators' alerts go: A2N_ALERT_CHANNELS, else every configured channel
    (email only with an A2N_ALERT_EMAIL to send to)."""
    if settings.alert_channels is not None:
        return settings.alert_channels
    return tuple(
        channel
        for channel in configured_channels(settings)
        if channel != "email" or settings.alert_email
    )


class Alerts:
    """Raises administrators' alerts on a pool the process has already (no pool of its own)."""

    def __init__(self, pool: ConnectionPool[Any], channels: Sequence[str]) -> None:
        self.pool = pool
        self.channels = tuple(channels)

    def raise_alert(
        self,
        kind: str,
        subject: str,
        body: str,
        severity: Severity = "error",
        *,
        dedupe_key: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> str | None:
        """Tell the administrators: a `system_notification` for admins only, delivered to the
        alert channels. `dedupe_key` (e.g. `health_check:postgres:<failure start>`) stores one
        alert however often it is raised. The id, or None when deduplicated."""
        notice = Notice(
            kind=kind,
            title=subject,
            body=body,
            severity=severity,
            resource_type=resource_type,
            resource_id=resource_id,
            dedupe_key=dedupe_key,
        )
        with self.pool.connection() as conn, conn.transaction():
            return raise_notification(conn, notice, self.channels)

    def health_check_failed(
        self, check: str, detail: str, *, status: str = "UNHEALTHY", at: datetime | None = None
    ) -> str | None:
        """A health check that is not HEALTHY (`status` UNHEALTHY: critical, else a warning):
        one alert per check and status per hour (of `at`, default now) while it keeps failing,
        so a check run every minute does not flood the channels."""
        moment = at or datetime.now(UTC)
        return self.raise_alert(
            "health_check.failed",
            f"Health check {check} is {status}",
            detail or f"The health check {check} reports {status}.",
            "critical" if status == "UNHEALTHY" else "warning",
            dedupe_key=f"health_check:{check}:{status}:{moment:%Y-%m-%dT%H}",
            resource_type="health_check",
            resource_id=check,
        )
