"""Notifications: the channels, a workflow's `settings.notifications`, and the signature of the
generic webhook channel, and the `SystemNotification` aggregate (one raised notification). Pure
rules: no I/O.

`settings.notifications` (spec shape): `{"onSuccess": false, "onFailure": true,
"channels": ["email", "slack"]}`. A run that ends SUCCESS notifies when `onSuccess` is true; one
that ends FAILED or TIMEOUT when `onFailure` is true (a cancelled run was stopped by someone, who
knows). The channels' destinations are the installation's (A2N_NOTIFY_*), never a definition's:
a definition travels in events and exports, where webhook tokens must not.

The webhook channel signs `timestamp + "." + body` with HMAC-SHA256 (the scheme webhook triggers
check on incoming calls): header `A2N-Signature: sha256=<hex>`, header `A2N-Timestamp: <unix
seconds>`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import ValidationFailed, Violation

Channel = Literal["email", "slack", "discord", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "slack", "discord", "webhook")
Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")
STATUSES = ("queued", "sent", "failed")

SIGNATURE_HEADER = "A2N-Signature"
TIMESTAMP_HEADER = "A2N-Timestamp"
NOTIFICATIONS = "notifications"
_FIELDS = ("onSuccess", "onFailure", "channels")


@dataclass(frozen=True)
class NotificationSettings:
    """When a workflow's runs notify its owner, and through which channels."""

    on_success: bool
    on_failure: bool
    channels: tuple[Channel, ...]

    def wants(self, status: str) -> bool:
        """Whether a run that ended with `status` (SUCCESS, FAILED, TIMEOUT...) notifies."""
        if status == "SUCCESS":
            return self.on_success
        return status in ("FAILED", "TIMEOUT") and self.on_failure


def notification_settings(settings: Any) -> NotificationSettings | None:
    """The workflow's notification settings; None when it asks for none. Lenient (a definition
    saved before these were checked): unknown channels and non-boolean flags count as absent."""
    value = settings.get(NOTIFICATIONS) if isinstance(settings, Mapping) else None
    if not isinstance(value, Mapping):
        return None
    raw = value.get("channels")
    named = raw if isinstance(raw, list) else []
    channels = tuple(c for c in CHANNELS if c in named)
    found = NotificationSettings(
        on_success=value.get("onSuccess") is True,
        on_failure=value.get("onFailure") is True,
        channels=channels,
    )
    if not channels or not (found.on_success or found.on_failure):
        return None
    return found


def notification_violations(value: Any) -> list[Violation]:
    """What is wrong with a definition's `settings.notifications` (null or absent: nothing)."""
    at = f"/settings/{NOTIFICATIONS}"
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [Violation(at, 'must be {"onSuccess": bool, "onFailure": bool, "channels": [...]}')]
    violations = [
        Violation(f"{at}/{key}", "is not a field of notifications (onSuccess, onFailure, channels)")
        for key in value
        if key not in _FIELDS
    ]
    violations += [
        Violation(f"{at}/{flag}", "must be true or false")
        for flag in ("onSuccess", "onFailure")
        if flag in value and not isinstance(value[flag], bool)
    ]
    channels = value.get("channels", [])
    allowed = ", ".join(CHANNELS)
    if not isinstance(channels, list):
        violations.append(Violation(f"{at}/channels", f"must be a list of channels ({allowed})"))
    else:
        violations += [
            Violation(f"{at}/channels/{i}", f"must be one of {allowed}")
            for i, channel in enumerate(channels)
            if channel not in CHANNELS
        ]
        if len(set(map(str, channels))) != len(channels):
            violations.append(Violation(f"{at}/channels", "must name each channel once"))
    return violations


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `A2N-Signature` value of a webhook body sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signature_matches(secret: bytes, timestamp: int, body: bytes, given: str) -> bool:
    """Whether `given` is the signature of `body` at `timestamp` (constant-time compare): what
    a receiver runs, also to check its own verification code against ours."""
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), given.encode())


NOTIFICATION_IDS = uuid.UUID("6f0b8f52-3c1e-4a53-9d0a-5b7c1d2e8a41")
"""Namespace of the ids derived from dedupe keys."""


def notification_id_for(dedupe_key: str) -> str:
    """The id of the notification a dedupe key names (the same for ever): raising the same key
    twice creates the same aggregate twice, which the event store refuses the second time."""
    return str(uuid.uuid5(NOTIFICATION_IDS, dedupe_key))


class SystemNotification(Aggregate):
    """What A2N told whom (a user, or with no recipient the administrators), about what, on
    which channels. Title and body arrive as the application stores them: sealed with the
    recipient's personal data key when there is a recipient (erasing the user erases them)."""

    class Raised(Aggregate.Created):
        user_id: str | None
        sender_id: str
        kind: str
        severity: str
        title: str
        body: str
        resource_type: str | None
        resource_id: str | None
        dedupe_key: str | None
        channels: list[str]

    @event(Raised)
    def __init__(
        self,
        user_id: str | None,
        sender_id: str,
        kind: str,
        severity: str,
        title: str,
        body: str,
        resource_type: str | None,
        resource_id: str | None,
        dedupe_key: str | None,
        channels: list[str],
    ) -> None:
        self.user_id = user_id
        self.sender_id = sender_id
        self.kind = kind
        self.severity = severity
        self.title = title
        self.body = body
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.dedupe_key = dedupe_key
        self.channels = channels

    @classmethod
    def raise_new(
        cls,
        *,
        new_id: str,
        kind: str,
        severity: str,
        title: str,
        body: str,
        channels: Iterable[str],
        user_id: str | None = None,
        sender_id: str = "system",
        resource_type: str | None = None,
        resource_id: str | None = None,
        dedupe_key: str | None = None,
        seal: Callable[[str], str] = lambda text: text,
    ) -> SystemNotification:
        """A new notification: its id is `notification_id_for(dedupe_key)` when there is a key
        (so it is raised once), else `new_id`. `title` and `body` are checked in clear and
        stored as `seal` turns them. Channels are kept in CHANNELS order, each once."""
        if severity not in SEVERITIES:
            raise ValidationFailed(
                [Violation("/severity", f"must be one of {', '.join(SEVERITIES)}")]
            )
        wanted = set(channels)
        unknown = sorted(wanted - set(CHANNELS))
        if unknown:
            raise ValidationFailed([Violation("/channels", f"{', '.join(unknown)}: not a channel")])
        if not kind or not title.strip():
            raise ValidationFailed([Violation("/title", "a notification needs a kind and title")])
        return cls._create(
            cls.Raised,
            id=new_id if dedupe_key is None else notification_id_for(dedupe_key),
            user_id=user_id,
            sender_id=sender_id,
            kind=kind,
            severity=severity,
            title=seal(title),
            body=seal(body),
            resource_type=resource_type,
            resource_id=resource_id,
            dedupe_key=dedupe_key,
            channels=[channel for channel in CHANNELS if channel in wanted],
        )
