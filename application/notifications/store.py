"""Raising a notification: a `SystemNotification` aggregate saved in the Notifications log (the
`system_notification` table is its projection, projections/notifications_table.py) and a queued
`notification_delivery` per channel, written on the caller's connection (a process manager's, so
the deliveries commit with the position of the event they came from).

A `dedupe_key` makes raising idempotent: the notification's id derives from it, so the second
raise of the same key saves nothing (it still makes sure the deliveries exist: a process manager
that saved the event but failed before committing its position gets them on its second try).
Title and body of a notification for a user are sealed with that user's personal data key:
erasing the user makes them unreadable in the events, and the projection drops the rows.

`Alerts.raise_alert` is the port other parts call for what administrators must hear about (a
parked projector, a failing health check): it goes to the alert channels (A2N_ALERT_CHANNELS, by
default every configured one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from eventsourcing.persistence import IntegrityError
from psycopg import Connection, Cursor
from psycopg_pool import ConnectionPool

from application.eventstore import EventMetadata
from application.identity.personal_data import PersonalDataErased
from application.ids import new_id
from domain.notifications import CHANNELS, Channel, Severity, SystemNotification
from domain.text import clean_text

if TYPE_CHECKING:
    from application.identity.personal_data import PersonalData
    from application.notifications.app import NotificationsApp
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


@dataclass(frozen=True)
class Raised:
    """A notification as raised: its id and the Notifications log position it reached."""

    id: str
    position: int


class Notifier:
    """Raises notifications into `app`; `personal` seals what is meant for a user (without it,
    only notifications for the administrators can be raised)."""

    def __init__(self, app: NotificationsApp, personal: PersonalData | None = None) -> None:
        self.app = app
        self.personal = personal

    def raise_notice(
        self,
        cur: Cursor[Any] | Connection[Any],
        notice: Notice,
        channels: Iterable[str],
        meta: EventMetadata | None = None,
    ) -> Raised | None:
        """Save `notice` and queue a delivery per channel on `cur`; None when a notification
        with its dedupe key exists already, or its user is erased (nothing to tell any more)."""
        if notice.user_id is not None and _erased(cur, notice.user_id):
            return None
        try:
            notification = SystemNotification.raise_new(
                new_id=new_id(),
                kind=clean_text(notice.kind, 100),
                severity=notice.severity,
                title=clean_text(" ".join(notice.title.split()), MAX_TITLE),
                body=clean_text(notice.body, MAX_BODY),
                channels=channels,
                user_id=notice.user_id,
                sender_id=notice.sender_id,
                resource_type=notice.resource_type,
                resource_id=notice.resource_id,
                dedupe_key=notice.dedupe_key,
                seal=self._sealer(notice.user_id),
            )
        except PersonalDataErased:  # erased since: the `user` table has not caught up yet
            return None
        raised: Raised | None = None
        if notice.dedupe_key is None or self.app.revision(notification.id) is None:
            try:
                position = self.app.record(
                    meta or EventMetadata(actor_id=notice.sender_id), notification
                )
                raised = Raised(notification.id, position)
            except IntegrityError:
                if notice.dedupe_key is None:
                    raise  # a fresh id taken: not a repeat, a fault
        for channel in notification.channels:
            cur.execute(
                "INSERT INTO notification_delivery (id, notification_id, channel) "
                "VALUES (%s, %s, %s) ON CONFLICT (notification_id, channel) DO NOTHING",
                (new_id(), notification.id, channel),
            )
        if raised is not None:
            log.info(
                "notification raised",
                notification_id=notification.id,
                kind=notice.kind,
                channels=notification.channels,
            )
        return raised

    def raise_notification(
        self, cur: Cursor[Any] | Connection[Any], notice: Notice, channels: Iterable[str]
    ) -> str | None:
        """`raise_notice`, its id only."""
        raised = self.raise_notice(cur, notice, channels)
        return None if raised is None else raised.id

    def _sealer(self, user_id: str | None) -> Any:
        if user_id is None:
            return lambda text: text
        personal = self.personal
        if personal is None:
            raise RuntimeError("notifications for a user need the personal data keys")
        return lambda text: personal.seal(user_id, text)


def _erased(cur: Cursor[Any] | Connection[Any], user_id: str) -> bool:
    row = cur.execute(
        "SELECT 1 FROM \"user\" WHERE id = %s AND status = 'DELETED'", (user_id,)
    ).fetchone()
    return row is not None


def drop_notifications(conn: Cursor[Any] | Connection[Any], user_id: str) -> None:
    """Delete the deliveries of every notification meant for this user and the notifications:
    at the erasure, and again when the notifications projector comes to it (it may have
    projected some of them since; a rebuild, which can no longer open their sealed texts,
    leaves them out)."""
    conn.execute(
        "DELETE FROM notification_delivery d USING system_notification n "
        "WHERE n.id = d.notification_id AND n.user_id = %s",
        (user_id,),
    )
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

    def __init__(
        self, pool: ConnectionPool[Any], notifier: Notifier, channels: Sequence[str]
    ) -> None:
        self.pool = pool
        self.notifier = notifier
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
            return self.notifier.raise_notification(conn, notice, self.channels)
