"""Logs never carry secrets: secret-looking keys and secrets inside text are masked."""

from __future__ import annotations

from application.logs import REDACTED, redact_secrets, redact_text


def test_secret_keys_are_masked_at_any_depth() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "login",
            "password": "hunter2",
            "headers": {"Authorization": "Bearer abc", "accept": "json"},
            "items": [{"api_key": "a2n_live_123"}],
        },
    )
    assert event["password"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert event["items"] == [{"api_key": REDACTED}]
    assert event["event"] == "login"


def test_secrets_inside_text_are_masked() -> None:
    text = (
        "connect postgresql://a2n:s3cret@db/a2n failed; header Bearer eyJhbGciOi.x.y; "
        "key a2n_AbCdEf123456; redis://:r3dis-pw@cache:6379/0"
    )
    masked = redact_text(text)
    for secret in ("s3cret", "eyJhbGciOi", "AbCdEf123456", "r3dis-pw"):
        assert secret not in masked
    assert "postgresql://a2n:" in masked
