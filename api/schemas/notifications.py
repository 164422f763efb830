"""Request and response bodies of the notification routes (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

ChannelName = Literal["email", "slack", "discord", "webhook"]
DeliveryStatus = Literal["queued", "sent", "failed"]
Severity = Literal["info", "warning", "error", "critical"]


class SendNotification(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /admin/notifications: a message to one user (`userId`: email goes to their address)
    or, without it, to the administrators."""

    title: str
    body: str
    channels: list[ChannelName]
    severity: Severity = "info"
    user_id: str | None = None


class NotificationQueued(msgspec.Struct, rename="camel"):
    """The notification, with a queued delivery per channel: follow them in
    GET /admin/notifications."""

    id: str
    channels: list[ChannelName]
    position: int
    """Notifications log position reached: A2N-Min-Position for GET /admin/notifications."""


class SendTestNotification(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /admin/notifications/test: a test message on one channel (email: to you)."""

    channel: ChannelName
    message: str | None = None
    """Text to send (at most 1000 characters); a default text otherwise."""


class TestNotificationQueued(msgspec.Struct, rename="camel"):
    """The test notification, queued: follow its delivery in GET /admin/notifications."""

    id: str
    channel: ChannelName
    status: DeliveryStatus
    position: int
    """Notifications log position reached: A2N-Min-Position for GET /admin/notifications."""


class DeliveryRead(msgspec.Struct, rename="camel"):
    """One channel's delivery of a notification."""

    id: str
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    """Why the last attempt failed (never a webhook token or password)."""
    sent_at: datetime | None


class NotificationRead(msgspec.Struct, rename="camel"):
    id: str
    user_id: str | None
    """Whom it is for; null: administrators."""
    sender_id: str
    kind: str
    severity: str
    title: str
    body: str
    resource_type: str | None
    resource_id: str | None
    created_at: datetime
    deliveries: list[DeliveryRead]

    @classmethod
    def of(cls, row: dict[str, Any]) -> NotificationRead:
        deliveries = [msgspec.convert(d, DeliveryRead, strict=False) for d in row["deliveries"]]
        return cls(**{**row, "deliveries": deliveries})


class NotificationPage(msgspec.Struct, rename="camel"):
    items: list[NotificationRead]
    next_cursor: str | None
