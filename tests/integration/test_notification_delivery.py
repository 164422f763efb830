"""The notification sender against real receivers on 127.0.0.1 (HTTP servers for Slack, Discord
and the signed webhook; an SMTP server for email) and a real database of its own per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from application.egress import Egress
from application.identity.mail import RetryPolicy
from application.notifications.channels import Channels
from application.notifications.sender import NotificationSender
from application.notifications.store import Alerts, Notice, Notifier
from application.row_security import act_as_blocking
from application.settings import Settings
from domain.notifications import signature_matches
from projections import notifications_table
from tests.http_receiver import Receiver, running_receiver
from tests.integration.helpers import drain, rows
from tests.loopback import LOOPBACK_EGRESS
from tests.smtp_server import running_smtp_server

TOKEN = "/services/T000/B000/XXXXsecrettoken"
SECRET = "webhook-signing-secret-0123"
NOW_RETRY = RetryPolicy(first_delay=0.0, max_delay=0.0, max_attempts=3)


@pytest.fixture
def pool(fresh_database_url: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(
        fresh_database_url, min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as opened:
        yield opened


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as found:
        yield found


def sender(
    notifier: Notifier,
    pool: ConnectionPool[Any],
    egress: Egress = LOOPBACK_EGRESS,
    retry: RetryPolicy = NOW_RETRY,
    **env: str,
) -> NotificationSender:
    configured = Settings.from_env(env)
    return NotificationSender(
        pool,
        Channels(configured, egress),
        notifier,
        alert_email=configured.alert_email,
        retry=retry,
    )


def notify(
    notifier: Notifier,
    pool: ConnectionPool[Any],
    channel: str,
    title: str = "Workflow 'Sync' failed",
) -> str:
    notice = Notice(kind="execution.failed", title=title, body="Error: boom", severity="error")
    with pool.connection() as conn, conn.transaction():
        found = notifier.raise_notification(conn, notice, (channel,))
    assert found is not None
    return found


def delivery(pool: ConnectionPool[Any], notification_id: str) -> dict[str, Any]:
    with pool.connection() as conn:
        cur = conn.execute(
            "SELECT status, attempts, last_error, sent_at FROM notification_delivery "
            "WHERE notification_id = %s",
            (notification_id,),
        )
        names = [column.name for column in cur.description or ()]
        found = cur.fetchone()
    assert found is not None
    return dict(zip(names, found, strict=True))


def test_slack_receives_text(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    notification = notify(notifier, pool, "slack")
    report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert report.sent == 1
    [request] = receiver.requests
    assert request.path == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"text": "[ERROR] Workflow 'Sync' failed\nError: boom"}
    assert delivery(pool, notification) | {"sent_at": None} == {
        "status": "sent",
        "attempts": 1,
        "last_error": None,
        "sent_at": None,
    }


def test_discord_receives_content(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    notify(notifier, pool, "discord")
    sender(notifier, pool, A2N_NOTIFY_DISCORD_URL=receiver.url("/api/webhooks/1/tok")).send_due()
    [request] = receiver.requests
    assert request.json() == {"content": "[ERROR] Workflow 'Sync' failed\nError: boom"}


def test_webhook_is_signed_and_the_signature_verifies(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    notification = notify(notifier, pool, "webhook")
    sender(
        notifier,
        pool,
        A2N_NOTIFY_WEBHOOK_URL=receiver.url("/hook"),
        A2N_NOTIFY_WEBHOOK_SECRET=SECRET,
    ).send_due()
    [request] = receiver.requests
    stamp = int(request.headers["a2n-timestamp"])
    given = request.headers["a2n-signature"]
    assert given.startswith("sha256=")
    assert signature_matches(SECRET.encode(), stamp, request.body, given)
    assert not signature_matches(b"another-secret-000000", stamp, request.body, given)
    assert not signature_matches(SECRET.encode(), stamp + 1, request.body, given)
    document = request.json()
    assert document["id"] == notification == request.headers["a2n-notification-id"]
    assert (document["kind"], document["severity"]) == ("execution.failed", "error")
    assert document["title"] == "Workflow 'Sync' failed"


def test_email_goes_through_smtp(pool: ConnectionPool[Any], notifier: Notifier) -> None:
    with running_smtp_server("plain") as server:
        notification = notify(notifier, pool, "email")
        report = sender(
            notifier,
            pool,
            A2N_SMTP_URL=server.url(),
            A2N_SMTP_INSECURE="true",
            A2N_MAIL_FROM="A2N <a2n@example.com>",
            A2N_ALERT_EMAIL="ops@example.com",
        ).send_due()
        assert report.sent == 1
        [mail] = server.received
    assert mail.recipients == ["ops@example.com"]
    assert mail.message["Subject"] == "[A2N] Workflow 'Sync' failed"
    assert "Error: boom" in mail.message.get_content()
    assert delivery(pool, notification)["status"] == "sent"


def test_a_failed_attempt_is_retried_then_succeeds(
    pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    with running_receiver(statuses=[503]) as receiver:
        notification = notify(notifier, pool, "slack")
        report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert (report.retrying, report.sent) == (1, 1)
    assert len(receiver.requests) == 2
    found = delivery(pool, notification)
    assert (found["status"], found["attempts"], found["last_error"]) == ("sent", 2, None)


def test_a_delivery_waits_out_its_backoff(pool: ConnectionPool[Any], notifier: Notifier) -> None:
    slow = RetryPolicy(first_delay=3600.0, max_delay=3600.0, max_attempts=3)
    with running_receiver(statuses=[500]) as receiver:
        notification = notify(notifier, pool, "slack")
        report = sender(
            notifier, pool, retry=slow, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)
        ).send_due()
    assert (report.retrying, report.sent) == (1, 0)
    found = delivery(pool, notification)
    assert (found["status"], found["attempts"]) == ("queued", 1)
    assert "answered HTTP 500" in found["last_error"]
    [(wait,)] = rows(
        pool.conninfo,
        "SELECT extract(epoch FROM next_attempt_at - last_attempt_at) FROM notification_delivery",
    )
    assert wait == pytest.approx(3600, abs=5)


def test_a_refusal_fails_for_good_without_the_token(
    pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    with running_receiver(statuses=[404]) as receiver:
        notification = notify(notifier, pool, "slack")
        report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert (report.gave_up, len(receiver.requests)) == (1, 1)
    found = delivery(pool, notification)
    assert (found["status"], found["attempts"]) == ("failed", 1)
    assert found["last_error"].startswith(f"http://127.0.0.1:{receiver.port}/… answered HTTP 404")
    assert "secrettoken" not in found["last_error"]


def test_retries_stop_after_the_last_attempt(pool: ConnectionPool[Any], notifier: Notifier) -> None:
    with running_receiver(statuses=[500, 502, 503, 504]) as receiver:
        notification = notify(notifier, pool, "discord")
        report = sender(notifier, pool, A2N_NOTIFY_DISCORD_URL=receiver.url(TOKEN)).send_due()
    assert (report.retrying, report.gave_up) == (2, 1)
    assert len(receiver.requests) == 3
    found = delivery(pool, notification)
    assert (found["status"], found["attempts"]) == ("failed", 3)


def test_the_egress_rules_refuse_a_private_destination(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    notification = notify(notifier, pool, "webhook")
    report = sender(
        notifier,
        pool,
        Egress(),  # no A2N_EGRESS_ALLOW: loopback is refused
        A2N_NOTIFY_WEBHOOK_URL=receiver.url(TOKEN),
        A2N_NOTIFY_WEBHOOK_SECRET=SECRET,
    ).send_due()
    assert report.gave_up == 1
    assert receiver.requests == []
    found = delivery(pool, notification)
    assert (found["status"], found["attempts"]) == ("failed", 1)
    assert found["last_error"].startswith("refused by the egress rules (A2N_EGRESS_ALLOW)")
    assert "secrettoken" not in found["last_error"]


def test_an_unconfigured_channel_fails_with_the_setting_to_set(
    pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    notification = notify(notifier, pool, "slack")
    sender(notifier, pool).send_due()
    found = delivery(pool, notification)
    assert found["status"] == "failed"
    assert found["last_error"] == "the channel is not configured (A2N_NOTIFY_SLACK_URL is not set)"


def test_an_alert_is_stored_once_per_dedupe_key(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    alerts = Alerts(pool, notifier, ("slack",))

    def unwell(status: str, detail: str) -> str | None:
        severity = "critical" if status == "UNHEALTHY" else "warning"
        title = f"Health check postgres is {status}"
        key = f"health_check:postgres:{status}:2026-12-01T10"
        return alerts.raise_alert("health_check.failed", title, detail, severity, dedupe_key=key)

    first = unwell("UNHEALTHY", "connection refused")
    again = unwell("UNHEALTHY", "still refused")
    assert first is not None
    assert again is None  # the same dedupe key: stored once
    slower = unwell("DEGRADED", "slow")
    assert slower is not None
    sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    texts = sorted(request.json()["text"] for request in receiver.requests)
    assert texts == [
        "[CRITICAL] Health check postgres is UNHEALTHY\nconnection refused",
        "[WARNING] Health check postgres is DEGRADED\nslow",
    ]
    drain(pool.conninfo, notifications_table.projector)
    assert rows(pool.conninfo, "SELECT DISTINCT kind, user_id FROM system_notification") == [
        ("health_check.failed", None)
    ]


def test_a_credential_about_to_expire_is_told_to_its_owner_once(
    pool: ConnectionPool[Any], notifier: Notifier
) -> None:
    with pool.connection() as conn:
        conn.execute(
            'INSERT INTO "user" (id, email, created_at, updated_at) '
            "VALUES ('u-1', 'ann@example.com', now(), now())"
        )
        for credential, expires in (("c-soon", "3 days"), ("c-later", "30 days")):
            conn.execute(
                "INSERT INTO credential (id, name, type, encrypted_data, encryption_version, "
                "expires_at, created_at, updated_at, user_id, revision) VALUES (%s, %s, "
                "'API_KEY', 'x', 'v1', now() + %s::interval, now(), now(), 'u-1', 1)",
                (credential, f"Stripe {credential}", expires),
            )
    with running_smtp_server("plain") as server:
        notifier = sender(
            notifier,
            pool,
            A2N_SMTP_URL=server.url(),
            A2N_SMTP_INSECURE="true",
            A2N_MAIL_FROM="A2N <a2n@example.com>",
        )
        assert notifier.raise_expiring_credentials() == 1
        assert notifier.raise_expiring_credentials() == 0  # told once per expiry
        notifier.send_due()
        [mail] = server.received
    assert mail.recipients == ["ann@example.com"]
    assert mail.message["Subject"].startswith("[A2N] Credential 'Stripe c-soon' expires")
    drain(pool.conninfo, notifications_table.projector)
    assert rows(pool.conninfo, "SELECT kind, user_id, resource_id FROM system_notification") == [
        ("credential.expiring", "u-1", "c-soon")
    ]


def test_row_level_security_shows_users_their_own_and_admins_all(
    pool: ConnectionPool[Any],
    notifier: Notifier,
) -> None:
    with pool.connection() as conn, conn.transaction():
        for user_id in ("u-ann", "u-bob", None):
            notice = Notice(kind="test", title="t", body="b", user_id=user_id)
            notifier.raise_notification(conn, notice, ("slack",))
    drain(pool.conninfo, notifications_table.projector)

    def visible(user_id: str, role: str) -> list[Any]:
        with pool.connection() as conn, conn.transaction():
            act_as_blocking(conn, user_id, role)
            # No WHERE clause: the policies alone decide.
            notes = conn.execute("SELECT user_id FROM system_notification").fetchall()
            deliveries = conn.execute("SELECT count(*) FROM notification_delivery").fetchone()
        return [sorted(n[0] or "-" for n in notes), deliveries[0] if deliveries else None]

    assert visible("u-ann", "USER") == [["u-ann"], 1]
    assert visible("u-carl", "USER") == [[], 0]
    assert visible("u-carl", "ADMIN") == [["-", "u-ann", "u-bob"], 3]


def test_a_projected_notification_and_one_not_yet_projected_are_sent_alike(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    """The sender reads a notification from system_notification, or from the event store while
    the projector has not written it (or is parked, perhaps on the alert saying so)."""
    projected = notify(notifier, pool, "slack", "Projected first")
    drain(pool.conninfo, notifications_table.projector)
    unprojected = notify(notifier, pool, "slack", "Not projected yet")
    report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert report.sent == 2
    assert sorted(request.json()["text"] for request in receiver.requests) == [
        "[ERROR] Not projected yet\nError: boom",
        "[ERROR] Projected first\nError: boom",
    ]
    assert delivery(pool, projected)["status"] == delivery(pool, unprojected)["status"] == "sent"


def test_a_delivery_to_an_erased_recipient_not_yet_projected_fails_for_good(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    notice = Notice(kind="test", title="For Ann", body="private", user_id="u-ann")
    with pool.connection() as conn, conn.transaction():
        notification = notifier.raise_notification(conn, notice, ("slack",))
    assert notification is not None
    assert notifier.personal is not None
    notifier.personal.erase("u-ann")
    report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert report.sent == 0
    assert receiver.requests == []
    found = delivery(pool, notification)
    assert (found["status"], found["last_error"]) == ("failed", "the recipient was erased")


def test_a_delivery_whose_notification_has_no_event_fails_without_stopping_the_others(
    pool: ConnectionPool[Any], notifier: Notifier, receiver: Receiver
) -> None:
    """A delivery queued before notifications were events, its row gone in a rebuild."""
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO notification_delivery (id, notification_id, channel, next_attempt_at) "
            "VALUES ('d-old', 'n-old', 'slack', now() - interval '1 minute')"
        )
    notification = notify(notifier, pool, "slack")
    report = sender(notifier, pool, A2N_NOTIFY_SLACK_URL=receiver.url(TOKEN)).send_due()
    assert report.sent == 1
    assert delivery(pool, notification)["status"] == "sent"
    assert rows(
        pool.conninfo, "SELECT status, last_error FROM notification_delivery WHERE id = 'd-old'"
    ) == [("failed", "the notification is gone")]
