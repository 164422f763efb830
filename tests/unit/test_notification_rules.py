"""The rules of notifications: a workflow's settings.notifications, and the webhook signature a
receiver checks."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from domain.notifications import (
    NotificationSettings,
    notification_settings,
    notification_violations,
    signature,
    signature_matches,
)


def test_the_spec_shape_is_read() -> None:
    wanted = notification_settings(
        {"notifications": {"onSuccess": False, "onFailure": True, "channels": ["email", "slack"]}}
    )
    assert wanted == NotificationSettings(False, True, ("email", "slack"))
    assert wanted is not None
    assert [wanted.wants(s) for s in ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED")] == [
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"notifications": None},
        {"notifications": {"onFailure": True, "channels": []}},
        {"notifications": {"onSuccess": False, "onFailure": False, "channels": ["email"]}},
        {"notifications": {"onFailure": "yes", "channels": ["email"]}},  # saved before checks
        {"notifications": {"onFailure": True, "channels": ["sms"]}},
        None,
    ],
)
def test_settings_that_ask_for_nothing_notify_nobody(settings: Any) -> None:
    assert notification_settings(settings) is None


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (None, {}),
        ({"onSuccess": True, "onFailure": False, "channels": ["webhook", "discord"]}, {}),
        ("email", {"": "must be"}),
        ({"onSuccess": 1, "channels": []}, {"/onSuccess": "must be true or false"}),
        ({"channels": ["email", "pager"]}, {"/channels/1": "must be one of email, slack"}),
        ({"channels": ["slack", "slack"]}, {"/channels": "must name each channel once"}),
        ({"channels": {"slack": True}}, {"/channels": "must be a list of channels"}),
        ({"onError": True}, {"/onError": "is not a field of notifications"}),
    ],
)
def test_violations_point_at_the_field(value: Any, found: dict[str, str]) -> None:
    violations = notification_violations(value)
    assert {
        v.pointer.removeprefix("/settings/notifications"): v.message for v in violations
    }.keys() == found.keys()
    for violation in violations:
        pointer = violation.pointer.removeprefix("/settings/notifications")
        assert violation.message.startswith(found[pointer])


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"n1"}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(b"secret", 1_700_000_000, body) == f"sha256={expected}"
    assert signature_matches(b"secret", 1_700_000_000, body, f"sha256={expected}")
    assert not signature_matches(b"secret", 1_700_000_000, body + b" ", f"sha256={expected}")
    assert not signature_matches(b"secret", 1_700_000_001, body, f"sha256={expected}")
