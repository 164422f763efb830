"""The four channels, each one call that either delivers a message or raises `DeliveryFailed`
(application/smtp.py) with a storable reason and whether trying again can help.

- email: through A2N_SMTP_URL (application/smtp.py), to the user's address, or A2N_ALERT_EMAIL
  for administrators' alerts;
- slack: POST `{"text": ...}` to the incoming-webhook URL;
- discord: POST `{"content": ...}` to the webhook URL;
- webhook: POST the notification as JSON, signed (domain/notifications.py: `A2N-Signature`,
  `A2N-Timestamp`).

HTTP goes through the egress rules (application/egress.py): a URL on a refused network fails for
good with the rule's reason. Webhook URLs carry their token in the path, so reasons and logs name
only the scheme and host (`safe_url`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from application.egress import Egress, EgressRefused
from application.smtp import MAX_ERROR, DeliveryFailed, SmtpTransport
from domain.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

if TYPE_CHECKING:
    from application.settings import Settings

HTTP_TIMEOUT = 10.0
DISCORD_MAX = 2000
"""Discord refuses content longer than this."""
RETRYABLE_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Message:
    """One notification as a channel sends it."""

    delivery_id: str
    notification_id: str
    kind: str
    severity: str
    title: str
    body: str
    user_id: str | None
    resource_type: str | None
    resource_id: str | None
    created_at: datetime

    def text(self) -> str:
        return f"[{self.severity.upper()}] {self.title}\n{self.body}"

    def document(self) -> dict[str, Any]:
        """The webhook channel's JSON body."""
        return {
            "id": self.notification_id,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "userId": self.user_id,
            "resourceType": self.resource_type,
            "resourceId": self.resource_id,
            "createdAt": self.created_at.isoformat(),
        }


def safe_url(url: str) -> str:
    """`url` without what may be secret (path, query, user info): for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


class Channels:
    """Sends messages to the destinations the settings name; one HTTP client for all calls."""

    def __init__(
        self,
        settings: Settings,
        egress: Egress,
        *,
        timeout: float = HTTP_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.client = httpx.Client(
            transport=egress.transport(), timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        self.client.close()

    def send(self, channel: str, message: Message, email_to: str | None) -> None:
        """Deliver `message` on `channel`, or raise `DeliveryFailed`."""
        settings = self.settings
        if channel == "email":
            self._email(message, email_to)
        elif channel == "slack":
            self._post(settings.notify_slack_url, "A2N_NOTIFY_SLACK_URL", {"text": message.text()})
        elif channel == "discord":
            content = message.text()[:DISCORD_MAX]
            self._post(settings.notify_discord_url, "A2N_NOTIFY_DISCORD_URL", {"content": content})
        elif channel == "webhook":
            self._webhook(message)
        else:
            raise DeliveryFailed(f"unknown channel {channel!r}", permanent=True)

    def _webhook(self, message: Message) -> None:
        secret = self.settings.notify_webhook_secret
        body = json.dumps(message.document(), separators=(",", ":")).encode()
        stamp = int(self.clock())
        headers = {
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: signature((secret or "").encode(), stamp, body),
            "A2N-Notification-Id": message.notification_id,
        }
        self._post(self.settings.notify_webhook_url, "A2N_NOTIFY_WEBHOOK_URL", body, headers)

    def _post(
        self,
        url: str | None,
        variable: str,
        payload: dict[str, Any] | bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not url:
            raise DeliveryFailed(
                f"the channel is not configured ({variable} is not set)", permanent=True
            )
        shown = safe_url(url)
        sent_headers = {"Content-Type": "application/json", "User-Agent": "A2N-Notifications"}
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            response = self.client.post(
                url, content=content, headers=sent_headers | (headers or {})
            )
        except EgressRefused as exc:
            raise DeliveryFailed(
                f"refused by the egress rules (A2N_EGRESS_ALLOW): {exc.message}", permanent=True
            ) from None
        except httpx.HTTPError as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc}", url)
            raise DeliveryFailed(f"{shown}: {reason}") from None
        if response.is_success:
            return
        status = response.status_code
        detail = _scrub(" ".join(response.text[:200].split()), url)
        permanent = 400 <= status < 500 and status not in RETRYABLE_STATUSES
        raise DeliveryFailed(
            f"{shown} answered HTTP {status}: {detail}"[:MAX_ERROR], permanent=permanent
        )

    def _email(self, message: Message, to: str | None) -> None:
        settings = self.settings
        if settings.smtp is None or settings.mail_from is None:
            raise DeliveryFailed(
                "email is not configured (A2N_SMTP_URL is not set)", permanent=True
            )
        if not to:
            raise DeliveryFailed(
                "no address to send to (the user has none, or A2N_ALERT_EMAIL is not set)",
                permanent=True,
            )
        sender = parseaddr(settings.mail_from)[1]
        mail = EmailMessage()
        mail["From"] = settings.mail_from
        mail["To"] = to
        mail["Subject"] = f"[A2N] {message.title}"
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{message.delivery_id}@{sender.rpartition('@')[2]}>"
        mail.set_content(message.body)
        with SmtpTransport(settings.smtp) as transport:
            transport.send(mail, sender=sender, recipient=to)


def _scrub(text: str, url: str) -> str:
    """`text` with the URL and its path (which hold the token) cut out."""
    parts = urlsplit(url)
    for hidden in (url, parts.path, parts.query):
        if hidden and hidden != "/":
            text = text.replace(hidden, "/…")
    return text
