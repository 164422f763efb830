"""The notification sender: delivers queued `notification_delivery` rows, records every attempt,
and retries with doubling delays (the mail sender's RetryPolicy) until it gives up.

It runs beside the execution workers (`a2n up`, `a2n work`) on the process's write pool. A
delivery is claimed by moving its `next_attempt_at` a lease ahead (FOR UPDATE SKIP LOCKED, one
short transaction), so no connection is held while a channel answers and concurrent senders never
take the same row; a sender that dies mid-call leaves the row to be tried again when the lease
runs out (at least once, like mail).

A delivery whose notification the `system_notifications` projector has not written yet (or will
not: it is parked, perhaps on the very alert saying so) is read from the event store instead.

Each pass also raises `credential.expiring` for active credentials that expire within
CREDENTIAL_NOTICE (one notification per credential and expiry date, by email to its owner).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application.errors import NotFound
from application.identity.mail import DeliveryReport, RetryPolicy
from application.notifications.channels import Channels, Message
from application.notifications.store import Notice, Notifier
from application.smtp import DeliveryFailed
from domain.notifications import SystemNotification

log = structlog.get_logger("a2n.notifications")

LEASE_SECONDS = 300.0
"""How long a claimed delivery is left alone: longer than any channel's timeout."""
MAX_PER_PASS = 200
CREDENTIAL_NOTICE = "7 days"
CREDENTIAL_CHECK_SECONDS = 600.0
DEFAULT_RETRY = RetryPolicy(first_delay=30.0, max_delay=3600.0, max_attempts=8)

_CLAIM = """
WITH claimed AS (
    UPDATE notification_delivery SET next_attempt_at = now() + make_interval(secs => %s)
    WHERE id = (SELECT d.id FROM notification_delivery d
                WHERE d.status = 'queued' AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at, d.id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, notification_id, channel, attempts
)
SELECT c.id AS delivery_id, c.notification_id, c.channel, c.attempts, n.id IS NOT NULL AS projected,
       n.kind, n.severity, n.title, n.body, n.user_id, n.resource_type, n.resource_id,
       n.created_at, u.email
FROM claimed c LEFT JOIN system_notification n ON n.id = c.notification_id
LEFT JOIN "user" u ON u.id = n.user_id
"""

_EXPIRING = f"""
SELECT c.id, c.user_id, c.name, c.expires_at,
       'credential:' || c.id || ':' || c.expires_at::text AS dedupe_key
FROM credential c
WHERE c.is_active AND c.expires_at IS NOT NULL
  AND c.expires_at <= now() + interval '{CREDENTIAL_NOTICE}'
  AND NOT EXISTS (SELECT 1 FROM system_notification n
                  WHERE n.dedupe_key = 'credential:' || c.id || ':' || c.expires_at::text)
ORDER BY c.expires_at LIMIT 100
"""


@dataclass(frozen=True)
class _Claimed:
    message: Message
    channel: str
    attempts: int
    email_to: str | None


class NotificationSender:
    """Delivers due deliveries through `channels` (see the module docstring)."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        channels: Channels,
        notifier: Notifier,
        *,
        alert_email: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.pool = pool
        self.channels = channels
        self.notifier = notifier
        self.alert_email = alert_email
        self.retry = retry
        self._credentials_checked = 0.0

    def send_due(self) -> DeliveryReport:
        """Deliver what is due now, one delivery at a time (at most MAX_PER_PASS)."""
        report = DeliveryReport()
        for _ in range(MAX_PER_PASS):
            claimed = self._claim()
            if claimed is None:
                break
            attempt = claimed.attempts + 1
            try:
                self.channels.send(claimed.channel, claimed.message, claimed.email_to)
            except DeliveryFailed as failure:
                self._failed(claimed, attempt, failure, report)
                continue
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE notification_delivery SET status = 'sent', attempts = %s, "
                    "sent_at = now(), last_attempt_at = now(), last_error = NULL WHERE id = %s",
                    (attempt, claimed.message.delivery_id),
                )
            report.sent += 1
            log.info(
                "notification sent",
                delivery_id=claimed.message.delivery_id,
                channel=claimed.channel,
                kind=claimed.message.kind,
                attempts=attempt,
            )
        return report

    def raise_expiring_credentials(self) -> int:
        """Raise `credential.expiring` for each credential about to expire not yet told of."""
        raised = 0
        with self.pool.connection() as conn, conn.transaction():
            rows = conn.execute(_EXPIRING).fetchall()
            for credential_id, user_id, name, expires_at, dedupe_key in rows:
                notice = Notice(
                    kind="credential.expiring",
                    title=f"Credential {name!r} expires {expires_at:%Y-%m-%d %H:%M} UTC",
                    body=f"The credential {name!r} ({credential_id}) stops working at "
                    f"{expires_at.isoformat()}. Replace or extend it before then.",
                    severity="warning",
                    user_id=user_id,
                    resource_type="credential",
                    resource_id=credential_id,
                    dedupe_key=dedupe_key,
                )
                raised += self.notifier.raise_notification(conn, notice, ("email",)) is not None
        return raised

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Deliver every `poll_interval` seconds until `stop` is set (beside the workers)."""
        while not stop.is_set():
            try:
                if time.monotonic() - self._credentials_checked >= CREDENTIAL_CHECK_SECONDS:
                    self._credentials_checked = time.monotonic()
                    self.raise_expiring_credentials()
                self.send_due()
            except psycopg.Error as exc:  # the database is away: try again on the next poll
                log.warning("notification sender cannot reach the database", error=str(exc))
            except Exception:  # a bug must not stop notifications for good
                log.exception("notification sender pass failed")
            stop.wait(poll_interval)

    def _claim(self) -> _Claimed | None:
        row = None
        while row is None:
            with self.pool.connection() as conn, conn.transaction():
                cur = conn.cursor(row_factory=dict_row)
                row = cur.execute(_CLAIM, (LEASE_SECONDS,)).fetchone()
            if row is None:
                return None
            if not row["projected"]:
                # Not in system_notification (yet, or its projector is parked: perhaps the
                # very alert saying so): the event store has it.
                row = self._unprojected(row)
        message = Message(
            delivery_id=row["delivery_id"],
            notification_id=row["notification_id"],
            kind=row["kind"],
            severity=row["severity"],
            title=row["title"],
            body=row["body"],
            user_id=row["user_id"],
            resource_type=row["resource_type"],
            resource_id=row["resource_id"],
            created_at=row["created_at"],
        )
        email_to = row["email"] if row["user_id"] is not None else self.alert_email
        return _Claimed(message, row["channel"], row["attempts"], email_to)

    def _unprojected(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """`row` completed from its notification's Raised event (texts opened) and recipient's
        address; None (and the delivery failed for good) when the recipient was erased, or the
        notification has no event (a row from before the events, gone in a rebuild)."""
        try:
            found = self.notifier.app.load(row["notification_id"], SystemNotification)
        except NotFound:
            self._give_up(row, "the notification is gone")
            return None
        title: str | None = found.title
        body: str | None = found.body
        email = None
        if found.user_id is not None:
            personal = self.notifier.personal
            title, body = (
                None if personal is None else personal.open(found.user_id, text)
                for text in (found.title, found.body)
            )
            if title is None or body is None:
                self._give_up(row, "the recipient was erased")
                return None
            with self.pool.connection() as conn:
                got = conn.execute(
                    'SELECT email FROM "user" WHERE id = %s', (found.user_id,)
                ).fetchone()
            email = None if got is None else got[0]
        return row | {
            "kind": found.kind,
            "severity": found.severity,
            "title": title,
            "body": body,
            "user_id": found.user_id,
            "resource_type": found.resource_type,
            "resource_id": found.resource_id,
            "created_at": found.created_on,
            "email": email,
        }

    def _give_up(self, row: dict[str, Any], reason: str) -> None:
        """Fail a claimed delivery for good without trying it."""
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE notification_delivery SET status = 'failed', last_error = %s WHERE id = %s",
                (reason, row["delivery_id"]),
            )
        log.warning("notification delivery given up", delivery_id=row["delivery_id"], error=reason)

    def _failed(
        self, claimed: _Claimed, attempts: int, failure: DeliveryFailed, report: DeliveryReport
    ) -> None:
        give_up = failure.permanent or attempts >= self.retry.max_attempts
        delay = self.retry.delay(attempts)
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE notification_delivery SET attempts = %s, last_error = %s, "
                "last_attempt_at = now(), next_attempt_at = now() + make_interval(secs => %s), "
                "status = CASE WHEN %s THEN 'failed' ELSE 'queued' END WHERE id = %s",
                (attempts, failure.reason, delay, give_up, claimed.message.delivery_id),
            )
        details = {
            "delivery_id": claimed.message.delivery_id,
            "channel": claimed.channel,
            "attempts": attempts,
            "error": failure.reason,
        }
        if give_up:
            report.gave_up += 1
            log.error("notification delivery given up", **details)
        else:
            report.retrying += 1
            log.warning("notification delivery failed", **details, retry_in=delay)
