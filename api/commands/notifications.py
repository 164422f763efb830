"""Notification commands (ADMIN, OWNER): send a notification to a user or to the administrators
on chosen channels, or a test notification to one channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from api.auth import needs, principal_of
from api.context import check_command_body, current_actor, services
from api.schemas.notifications import (
    NotificationQueued,
    SendNotification,
    SendTestNotification,
    TestNotificationQueued,
)
from application.ids import is_id
from application.notifications.store import (
    MAX_BODY,
    MAX_TITLE,
    Notice,
    Raised,
    configured_channels,
)
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
        "/",
        summary="Send a notification to a user (userId) or to the administrators on the chosen "
        "channels; its deliveries show in GET /admin/notifications",
        sync_to_thread=True,
        status_code=202,
    )
    def send(self, request: AnyRequest, data: JSONBody[SendNotification]) -> NotificationQueued:
        violations = _text("/title", data.title, MAX_TITLE) + _text("/body", data.body, MAX_BODY)
        if not data.channels or len(set(data.channels)) != len(data.channels):
            violations.append(Violation("/channels", "must name one or more channels, each once"))
        violations += _unconfigured(request, data.channels, "/channels/{}")
        if data.user_id is not None and not is_id(data.user_id):
            violations.append(Violation("/userId", "is not an account id"))
        elif data.user_id is not None and not services(request).identity.is_account(data.user_id):
            violations.append(Violation("/userId", "is not an account here"))
        if violations:
            raise ValidationFailed(violations)
        sender = principal_of(request).user_id
        notice = Notice(
            kind="admin.message",
            title=data.title,
            body=data.body,
            severity=data.severity,
            user_id=data.user_id,
            sender_id=sender,
        )
        raised = _queued(request, notice, data.channels)
        return NotificationQueued(raised.id, list(data.channels), raised.position)

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
        message = data.message
        violations = [] if message is None else _text("/message", message, MAX_MESSAGE)
        violations += _unconfigured(request, [data.channel], "/channel")
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
        raised = _queued(request, notice, [data.channel])
        return TestNotificationQueued(raised.id, data.channel, "queued", raised.position)


def _text(pointer: str, value: str, limit: int) -> list[Violation]:
    if not value.strip() or len(value) > limit or text_fault(value):
        return [Violation(pointer, f"must be 1 to {limit} characters of valid text")]
    return []


def _unconfigured(request: AnyRequest, channels: Sequence[str], pointer: str) -> list[Violation]:
    """Channels this installation cannot deliver to, each with the setting to set."""
    configured = configured_channels(services(request).settings)
    return [
        Violation(pointer.format(i), f"is not configured here (set {SETTING_OF[channel]})")
        for i, channel in enumerate(channels)
        if channel not in configured
    ]


def _queued(request: AnyRequest, notice: Notice, channels: Sequence[str]) -> Raised:
    found = services(request)
    meta = current_actor(request).metadata()
    with found.connections.write.connection() as conn, conn.transaction():
        raised = found.notifier.raise_notice(conn, notice, channels, meta)
    if raised is None:  # no dedupe key: only an erased recipient raises nothing
        raise ValidationFailed([Violation("/userId", "is not an account here")])
    return raised
