"""Outgoing mail: queued in `mail_outbox`, delivered by the mail sender when SMTP is configured.

Without SMTP the mail waits in the outbox, where an OWNER (and the tests) can read it. Links carry
single-use secrets, so mail bodies never go to the logs and are cleared once sent; the row stays
for audit.

Delivery is at least once: a sender claims one due row with `FOR UPDATE SKIP LOCKED` and holds that
lock until the server accepted the mail and the row says so, so concurrent senders never send the
same mail twice. Only a crash between the server's acceptance and the commit sends it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from application.ids import new_id
from application.smtp import DeliveryFailed, SmtpServer, SmtpTransport

if TYPE_CHECKING:
    from application.settings import Settings

log = structlog.get_logger("a2n.mail")

_CLAIM = (
    "SELECT id, to_address, subject, body, purpose, attempts FROM mail_outbox "
    "WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() "
    "ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)


class Outbox:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def queue(self, *, user_id: str, to: str, subject: str, body: str, purpose: str) -> str:
        message_id = new_id()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO mail_outbox (id, user_id, to_address, subject, body, purpose) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (message_id, user_id, to, subject, body, purpose),
            )
        return message_id

    def drop(self, user_id: str) -> None:
        """Delete every message to this account, sent or not: each holds its address."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM mail_outbox WHERE user_id = %s", (user_id,))


@dataclass(frozen=True)
class _DueMail:
    id: str
    to_address: str
    subject: str
    body: str | None
    purpose: str
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed mail is tried again: doubling delays, then the sender gives up."""

    first_delay: float = 60.0
    max_delay: float = 3600.0
    max_attempts: int = 10

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return min(self.max_delay, self.first_delay * 2.0 ** (attempts - 1))


@dataclass
class DeliveryReport:
    """What one pass over the outbox did."""

    sent: int = 0
    retrying: int = 0
    gave_up: int = 0

    @property
    def failed(self) -> int:
        return self.retrying + self.gave_up


class MailSender:
    """Delivers due outbox rows through one SMTP server and records every attempt on the row."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        server: SmtpServer,
        mail_from: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.pool = pool
        self.server = server
        self.mail_from = mail_from
        self.envelope_from = parseaddr(mail_from)[1]
        self.domain = self.envelope_from.rpartition("@")[2]
        self.retry = retry or RetryPolicy()

    @classmethod
    def configured(cls, pool: ConnectionPool[Any], settings: Settings) -> MailSender | None:
        """The sender A2N_SMTP_URL and A2N_MAIL_FROM describe; None without SMTP."""
        if settings.smtp is None or settings.mail_from is None:
            return None
        return cls(pool, settings.smtp, settings.mail_from)

    def send_due(self) -> DeliveryReport:
        """Deliver every mail that is due now, one row (and transaction) at a time.

        A failure that is not the message's own (server down, TLS or sign-in refused) ends the
        pass: the other due mail would only fail the same way and burn its attempts.
        """
        report = DeliveryReport()
        with SmtpTransport(self.server) as transport:
            while True:
                with self.pool.connection() as conn, conn.transaction():
                    mail = conn.cursor(row_factory=class_row(_DueMail)).execute(_CLAIM).fetchone()
                    if mail is None:
                        return report
                    attempt = mail.attempts + 1
                    try:
                        transport.send(
                            self._message(mail),
                            sender=self.envelope_from,
                            recipient=mail.to_address,
                        )
                    except DeliveryFailed as failure:
                        self._failed(conn, mail, attempt, failure, report)
                        if not failure.permanent:
                            return report
                        continue
                    conn.execute(
                        "UPDATE mail_outbox SET sent_at = now(), body = NULL, attempts = %s, "
                        "last_attempt_at = now(), last_error = NULL WHERE id = %s",
                        (attempt, mail.id),
                    )
                report.sent += 1
                log.info("mail sent", mail_id=mail.id, purpose=mail.purpose, attempts=attempt)

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Send due mail every `poll_interval` seconds until `stop` is set (the sender role)."""
        while not stop.is_set():
            try:
                self.send_due()
            except psycopg.Error as exc:  # the database is away: try again on the next poll
                log.warning("mail sender cannot reach the database", error=str(exc))
            except Exception:  # a bug must not stop mail for good; the rows say what was done
                log.exception("mail sender pass failed")
            stop.wait(poll_interval)

    def _message(self, mail: _DueMail) -> EmailMessage:
        try:
            message = EmailMessage()
            message["From"] = self.mail_from
            message["To"] = mail.to_address
            message["Subject"] = mail.subject
            message["Date"] = formatdate(usegmt=True)
            # The outbox id: a server or reader can tell a re-sent copy from a new mail.
            message["Message-ID"] = f"<{mail.id}@{self.domain}>"
            message.set_content(mail.body or "")
        except (ValueError, TypeError) as exc:
            raise DeliveryFailed(f"cannot build the message: {exc}", permanent=True) from None
        return message

    def _failed(
        self,
        conn: psycopg.Connection[Any],
        mail: _DueMail,
        attempts: int,
        failure: DeliveryFailed,
        report: DeliveryReport,
    ) -> None:
        give_up = failure.permanent or attempts >= self.retry.max_attempts
        delay = self.retry.delay(attempts)
        conn.execute(
            "UPDATE mail_outbox SET attempts = %s, last_error = %s, last_attempt_at = now(), "
            "next_attempt_at = now() + make_interval(secs => %s), "
            "failed_at = CASE WHEN %s THEN now() END WHERE id = %s",
            (attempts, failure.reason, delay, give_up, mail.id),
        )
        details = {"mail_id": mail.id, "purpose": mail.purpose, "attempts": attempts}
        if give_up:
            report.gave_up += 1
            log.error("mail delivery given up", **details, error=failure.reason)
        else:
            report.retrying += 1
            log.warning("mail delivery failed", **details, error=failure.reason, retry_in=delay)
