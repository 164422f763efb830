"""Notification commands: send a test notification to one channel (ADMIN, OWNER)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from api.auth import needs, principal_of
from api.context import check_command_body, services
from api.schemas.notifications import SendTestNotification, TestNotificationQueued
from application.notifications.store import Notice, configured_channels, raise_notification
from domain.errors import ValidationFailed, Violation
from domain.text import text_fault

AnyRequest = Request[Any, Any, Any]
MAX_MESSAGE = 1000
SETTING_OF = {
    "email": "A2N_SMTP_URL",
    "slack": "A2N_NOTIFY_SLACK_URL",
    "discord": "A2N_NOTIFY_DISCORD_URL",
    "webhook": "A2N_NOTIFY_WEBHOOK_URL",
}


class NotificationCommands(Controller):
    path = "/admin/notifications"
    tags = ["admin"]
    opt = needs("admin")
    before_request = staticmethod(check_command_body)

    @post(
        "/test",
        summary="Queue a test notification on one channel (email: to your own address); its "
        "delivery shows in GET /admin/notifications",
        sync_to_thread=True,
        status_code=202,
    )
    def test(
        self, request: AnyRequest, data: JSONBody[SendTestNotification]
    ) -> TestNotificationQueued:
        found = services(request)
        violations = []
        message = data.message
        if message is not None and (
            not message.strip() or len(message) > MAX_MESSAGE or text_fault(message)
        ):
            violations.append(
                Violation("/message", f"must be 1 to {MAX_MESSAGE} characters of valid text")
            )
        if data.channel not in configured_channels(found.settings):
            violations.append(
                Violation("/channel", f"is not configured here (set {SETTING_OF[data.channel]})")
            )
        if violations:
            raise ValidationFailed(violations)
        principal = principal_of(request)
        notice = Notice(
            kind="test",
            title="A2N test notification",
            body=message or f"A test of the {data.channel} channel, sent from A2N.",
            user_id=principal.user_id,
            sender_id=principal.user_id,
        )
        with found.connections.write.connection() as conn, conn.transaction():
            notification_id = raise_notification(conn, notice, (data.channel,))
        assert notification_id is not None  # no dedupe key: always stored
        return TestNotificationQueued(notification_id, data.channel, "queued")
