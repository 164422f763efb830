"""Notifications end to end: runs through the API end in the in-process worker, the notification
manager beside it raises what `settings.notifications` asks for, and the sender delivers to
receivers the test runs on 127.0.0.1. The app has a database of its own, so its sender is the
only one delivering these rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pyotp
import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from domain.notifications import signature_matches
from projections.runner import lock_key
from tests.api.helpers import (
    API,
    RUNNABLE,
    Account,
    owner_of,
    problem,
    promote,
    published,
    register,
    run,
)
from tests.api.helpers import sign_up as new_account
from tests.api.test_event_triggers import FAILING
from tests.http_receiver import Receiver, running_receiver
from tests.integration.helpers import rows

Client = TestClient[Any]
SECRET = "notification-webhook-secret"
SLACK_PATH = "/services/T1/B1/slacktoken"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as found:
        yield found


@pytest.fixture(scope="module")
def app_and_owner(
    api_settings: Settings, make_database: Callable[..., str], receiver: Receiver
) -> Iterator[tuple[Client, Account, Settings]]:
    settings = replace(
        api_settings,
        database_url=make_database(),
        notify_slack_url=receiver.url(SLACK_PATH),
        notify_webhook_url=receiver.url("/hook"),
        notify_webhook_secret=SECRET,
        notify_poll_interval=0.1,
    )
    app = create_app(settings, run_projectors=True, run_workers=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, owner_of(client), settings


@pytest.fixture(scope="module")
def client(app_and_owner: tuple[Client, Account, Settings]) -> Client:
    return app_and_owner[0]


@pytest.fixture(scope="module")
def admin(app_and_owner: tuple[Client, Account, Settings]) -> Account:
    client, owner, _ = app_and_owner
    return promote(client, owner, new_account(client))


@pytest.fixture
def user(client: Client) -> Account:
    return new_account(client)


def notifications(
    client: Client, account: Account, path: str = "/notifications", **params: Any
) -> dict[str, Any]:
    response = client.get(f"{API}{path}", params=params, headers=account)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def delivered(
    client: Client, account: Account, resource_id: str, path: str = "/notifications"
) -> dict[str, Any]:
    """The notification about `resource_id` (or with that id) once it has deliveries and none of
    them is queued (every caller's has a channel). Its event is projected before the raiser
    commits its deliveries: listed with none, it is not delivered yet."""
    deadline = time.monotonic() + 20
    while True:
        items = notifications(client, account, path, limit=500)["items"]
        found = [n for n in items if resource_id in (n["resourceId"], n["id"])]
        deliveries = found[0]["deliveries"] if found else []
        if deliveries and all(d["status"] != "queued" for d in deliveries):
            return found[0]
        assert time.monotonic() < deadline, items
        time.sleep(0.05)


def requests_to(receiver: Receiver, path: str, text: str) -> list[Any]:
    return [r for r in receiver.requests if r.path == path and text in r.body.decode()]


STORED = (
    "SELECT (SELECT count(*) FROM notifications_events) + "
    "(SELECT count(*) FROM notification_delivery)"
)
"""Notifications raised (events) and deliveries queued."""


def notifying(definition: dict[str, Any], **wanted: Any) -> dict[str, Any]:
    return {**definition, "settings": {"notifications": wanted}}


def test_a_failed_run_notifies_its_owner_on_the_workflow_channels(
    client: Client, user: Account, receiver: Receiver
) -> None:
    failing = published(
        client, user, notifying(FAILING, onFailure=True, channels=["slack", "webhook"])
    )
    failed = run(client, user, failing, wait="true")
    assert failed["status"] == "FAILED"
    notification = delivered(client, user, failed["id"])
    assert notification["kind"] == "execution.failed"
    assert notification["userId"] == user.user_id
    assert notification["severity"] == "error"
    assert "boom" in notification["body"]
    assert {(d["channel"], d["status"], d["attempts"]) for d in notification["deliveries"]} == {
        ("slack", "sent", 1),
        ("webhook", "sent", 1),
    }
    [slack] = requests_to(receiver, SLACK_PATH, failed["id"])
    assert slack.json()["text"].startswith("[ERROR] Workflow 'Runnable' failed")
    [hook] = requests_to(receiver, "/hook", failed["id"])
    stamp = int(hook.headers["a2n-timestamp"])
    assert signature_matches(SECRET.encode(), stamp, hook.body, hook.headers["a2n-signature"])
    assert hook.json()["resourceId"] == failed["id"]


def test_a_run_notifies_only_for_the_endings_it_asks_for(
    client: Client, user: Account, receiver: Receiver
) -> None:
    quiet = published(client, user, notifying(RUNNABLE, onFailure=True, channels=["slack"]))
    loud = published(client, user, notifying(RUNNABLE, onSuccess=True, channels=["slack"]))
    unheard = run(client, user, quiet, wait="true")
    heard = run(client, user, loud, wait="true")
    assert (unheard["status"], heard["status"]) == ("SUCCESS", "SUCCESS")
    # The manager handles endings in order: once the second is notified, the first was seen.
    assert delivered(client, user, heard["id"])["kind"] == "execution.succeeded"
    items = notifications(client, user, limit=500)["items"]
    assert unheard["id"] not in {n["resourceId"] for n in items}
    assert requests_to(receiver, SLACK_PATH, unheard["id"]) == []


@pytest.mark.parametrize(
    ("settings", "pointer"),
    [
        ({"notifications": {"onFailure": True, "channels": ["sms"]}}, "/channels/0"),
        ({"notifications": {"onFailure": "yes", "channels": ["email"]}}, "/onFailure"),
        ({"notifications": {"onFailure": True, "channel": ["email"]}}, "/channel"),
        ({"notifications": {"channels": "email"}}, "/channels"),
        ({"notifications": ["email"]}, ""),
    ],
)
def test_bad_notification_settings_are_refused_and_nothing_is_stored(
    client: Client, user: Account, settings: dict[str, Any], pointer: str
) -> None:
    refused = client.post(
        f"{API}/workflows",
        json={"name": "Refused", "definition": {**RUNNABLE, "settings": settings}},
        headers=user,
    )
    errors = problem(refused, 422)["errors"]
    assert f"/definition/settings/notifications{pointer}" in [e["pointer"] for e in errors]
    assert client.get(f"{API}/workflows", headers=user).json()["items"] == []


def test_users_see_their_own_notifications_and_admins_all(
    client: Client, user: Account, admin: Account
) -> None:
    failing = published(client, user, notifying(FAILING, onFailure=True, channels=["slack"]))
    failed = run(client, user, failing, wait="true")
    delivered(client, user, failed["id"])
    stranger = new_account(client)
    assert notifications(client, stranger)["items"] == []
    seen = delivered(client, admin, failed["id"], "/admin/notifications")
    assert seen["userId"] == user.user_id
    assert client.get(f"{API}/notifications").status_code == 401
    assert client.get(f"{API}/admin/notifications").status_code == 401
    problem(client.get(f"{API}/admin/notifications", headers=user), 403)
    problem(
        client.post(f"{API}/admin/notifications/test", json={"channel": "slack"}, headers=user), 403
    )
    assert rows_of(client, "SELECT count(*) FROM system_notification WHERE kind = 'test'") == 0


def test_admins_filter_notifications_and_page_through_them(
    client: Client, user: Account, admin: Account
) -> None:
    failing = published(client, user, notifying(FAILING, onFailure=True, channels=["slack"]))
    first = run(client, user, failing, wait="true")
    second = run(client, user, failing, wait="true")
    delivered(client, admin, second["id"], "/admin/notifications")
    path = "/admin/notifications"
    ids = {first["id"], second["id"]}

    def about(**params: Any) -> list[str]:
        items = notifications(client, admin, path, limit=500, **params)["items"]
        return [n["resourceId"] for n in items if n["resourceId"] in ids]

    assert set(about(kind="execution.failed", channel="slack", status="sent")) == ids
    assert set(about(kind="execution.")) == ids
    assert about(kind="security.") == []
    assert about(channel="email") == []
    assert about(status="failed") == []
    assert about(**{"from": "2999-01-01T00:00:00Z"}) == []
    assert set(about(to="2999-01-01T00:00:00Z")) == ids
    page = notifications(client, admin, path, limit=1, kind="execution.failed")
    following = notifications(
        client, admin, path, limit=1, kind="execution.failed", cursor=page["nextCursor"]
    )
    assert [n["resourceId"] for n in page["items"] + following["items"]] == [
        second["id"],
        first["id"],
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "delivered"},
        {"channel": "sms"},
        {"from": "2026-01-01T00:00:00"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"cursor": "not-a-cursor"},
        {"limit": "0"},
        {"kind": "a\u0000b"},
    ],
)
def test_bad_list_parameters_are_problems(
    client: Client, admin: Account, params: dict[str, str]
) -> None:
    response = client.get(f"{API}/admin/notifications", params=params, headers=admin)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_test_notification_reaches_its_channel(
    client: Client, admin: Account, receiver: Receiver
) -> None:
    sent = client.post(
        f"{API}/admin/notifications/test",
        json={"channel": "slack", "message": "Hello from the test"},
        headers=admin,
    )
    assert sent.status_code == 202, sent.text
    queued = sent.json()
    assert (queued["channel"], queued["status"]) == ("slack", "queued")
    notification = delivered(client, admin, queued["id"], "/admin/notifications")
    assert (notification["kind"], notification["userId"]) == ("test", admin.user_id)
    assert [(d["channel"], d["status"]) for d in notification["deliveries"]] == [("slack", "sent")]
    [request] = requests_to(receiver, SLACK_PATH, "Hello from the test")
    assert request.json()["text"] == "[INFO] A2N test notification\nHello from the test"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"channel": "sms"}, 422),
        ({"channel": "slack", "extra": 1}, 422),
        ({}, 422),
        ("slack", 422),
        ({"channel": "discord"}, 422),  # not configured here
        ({"channel": "email"}, 422),  # no SMTP here
        ({"channel": "slack", "message": "nul\u0000"}, 422),
        ({"channel": "slack", "message": "x" * 1001}, 422),
        ({"channel": "slack", "message": "   "}, 422),
    ],
)
def test_a_bad_test_request_is_a_problem_and_stores_nothing(
    client: Client, admin: Account, body: Any, status: int
) -> None:
    before = rows_of(client, STORED)
    response = client.post(f"{API}/admin/notifications/test", json=body, headers=admin)
    problem(response, status)
    assert rows_of(client, STORED) == before


def test_an_api_key_created_is_told_to_its_owner(client: Client, user: Account) -> None:
    made = client.post(
        f"{API}/me/api-keys", json={"name": "deploy", "scopes": ["workflows:read"]}, headers=user
    )
    assert made.status_code == 201, made.text
    deadline = time.monotonic() + 20
    while True:
        items = notifications(client, user, kind="security.api_key_created")["items"]
        if items:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [notice] = items
    assert notice["title"] == "API key 'deploy' created"
    assert made.json()["key"] not in notice["body"]
    assert [d["channel"] for d in notice["deliveries"]] == ["email"]


def test_erasure_deletes_the_notifications_of_the_account(
    app_and_owner: tuple[Client, Account, Settings], user: Account
) -> None:
    client, owner, _ = app_and_owner
    made = client.post(
        f"{API}/me/api-keys", json={"name": "gone", "scopes": ["workflows:read"]}, headers=user
    )
    assert made.status_code == 201, made.text
    mine = f"SELECT count(*) FROM system_notification WHERE user_id = '{user.user_id}'"
    deliveries = f"{DELIVERIES} = '{user.user_id}')"
    deadline = time.monotonic() + 20
    # The notification's event is saved at once, its delivery rows when the manager's page
    # commits: wait for both, so the erasure below has something of each to delete.
    while rows_of(client, mine) == 0 or rows_of(client, deliveries) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    erased = client.post(f"{API}/users/{user.user_id}/erase", headers=owner)
    assert erased.status_code == 200, erased.text
    assert rows_of(client, mine) == 0
    # A notification the projector had not reached at the erasure loses its deliveries when
    # it does (it can no longer open the texts).
    while rows_of(client, deliveries) != 0:
        assert time.monotonic() < deadline, "the erased account's deliveries remain"
        time.sleep(0.05)
    # The events stay, their title and body sealed with the erased key: unreadable for good.
    personal = client.app.state.services.identity.personal
    events = client.app.state.services.notifier.app.events
    [raised] = list(events.get(notification_of(client, user.user_id)))
    assert raised.kind == "security.api_key_created"
    assert personal.open(user.user_id, raised.title) is None
    assert personal.open(user.user_id, raised.body) is None
    assert "gone" not in raised.title + raised.body


DELIVERIES = (
    "SELECT count(*) FROM notification_delivery d WHERE d.notification_id IN "
    "(SELECT originator_id FROM notifications_events "
    "WHERE convert_from(state, 'UTF8')::jsonb ->> 'user_id'"
)


def notification_of(client: Client, user_id: str) -> str:
    return str(
        rows_of(
            client,
            "SELECT originator_id FROM notifications_events "
            f"WHERE convert_from(state, 'UTF8')::jsonb ->> 'user_id' = '{user_id}'",
        )
    )


def rows_of(client: Client, query: str) -> Any:
    url = client.app.state.services.database.url
    [(value,)] = rows(url, query)
    return value


def test_a_lockout_alerts_the_administrators_and_tells_the_account(
    client: Client, admin: Account, user: Account, receiver: Receiver
) -> None:
    for _ in range(5):  # the default A2N_LOGIN_MAX_FAILURES
        client.post(f"{API}/auth/login", json={"email": user.email, "password": "wrong password"})
    locked = client.post(f"{API}/auth/login", json={"email": user.email, "password": "x"})
    assert locked.status_code == 429, locked.text
    deadline = time.monotonic() + 20
    while True:
        alerts = notifications(client, admin, "/admin/notifications", kind="security.login_lockout")
        mine = [a for a in alerts["items"] if user.user_id in a["body"]]
        # The event is saved (and may be projected) before the raiser's transaction commits its
        # deliveries: wait for them, then for their outcome.
        if (
            mine
            and mine[0]["deliveries"]
            and all(d["status"] != "queued" for d in mine[0]["deliveries"])
        ):
            break
        assert time.monotonic() < deadline, alerts
        time.sleep(0.05)
    [alert] = mine
    assert (alert["userId"], alert["severity"]) == (None, "error")
    # Alerts go to every configured channel (no A2N_ALERT_CHANNELS, no SMTP here).
    assert {(d["channel"], d["status"]) for d in alert["deliveries"]} == {
        ("slack", "sent"),
        ("webhook", "sent"),
    }
    [told] = notifications(client, user, kind="account.locked")["items"]
    assert told["title"] == "Your account was locked after failed sign-ins"
    assert notifications(client, user, kind="security.")["items"] == []  # the alert is admins'


def test_turning_two_factor_off_is_told_to_the_account(client: Client, user: Account) -> None:
    secret = client.post(f"{API}/me/2fa/setup", headers=user).json()["secret"]
    confirmed = client.post(
        f"{API}/me/2fa/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=user
    )
    assert confirmed.status_code == 200, confirmed.text
    recovery = confirmed.json()["recoveryCodes"][0]
    disabled = client.post(f"{API}/me/2fa/disable", json={"code": recovery}, headers=user)
    assert disabled.status_code == 200, disabled.text
    deadline = time.monotonic() + 20
    while not (found := notifications(client, user, kind="security.two_factor_disabled")["items"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(n["title"], n["severity"]) for n in found] == [
        ("Two-factor sign-in was turned off", "warning")
    ]


def test_the_lists_document_their_filters(client: Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    for path in ("/api/v1/notifications", "/api/v1/admin/notifications"):
        parameters = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"status", "channel", "kind", "from", "to", "limit", "cursor"} <= parameters
    test = schema["paths"]["/api/v1/admin/notifications/test"]["post"]["responses"]
    assert "application/problem+json" in test["422"]["content"]


def test_an_admin_sends_a_notification_to_a_user(
    client: Client, admin: Account, user: Account, receiver: Receiver
) -> None:
    sent = client.post(
        f"{API}/admin/notifications",
        json={
            "title": "Maintenance tonight",
            "body": "A2N restarts at 22:00 UTC.",
            "severity": "warning",
            "channels": ["slack", "webhook"],
            "userId": user.user_id,
        },
        headers=admin,
    )
    assert sent.status_code == 202, sent.text
    queued = sent.json()
    assert queued["channels"] == ["slack", "webhook"]
    # Read your writes: with the position it answered, the lists show it at once.
    at_once = {"A2N-Min-Position": str(queued["position"])}
    for account, path in ((user, "/notifications"), (admin, "/admin/notifications")):
        listed = client.get(f"{API}{path}", params={"limit": 500}, headers={**account, **at_once})
        assert listed.status_code == 200, listed.text
        assert queued["id"] in [n["id"] for n in listed.json()["items"]]
    told = delivered(client, user, queued["id"])
    assert (told["kind"], told["title"], told["senderId"]) == (
        "admin.message",
        "Maintenance tonight",
        admin.user_id,
    )
    assert {(d["channel"], d["status"]) for d in told["deliveries"]} == {
        ("slack", "sent"),
        ("webhook", "sent"),
    }
    assert requests_to(receiver, SLACK_PATH, "A2N restarts at 22:00 UTC.")


def test_a_notification_may_go_to_an_account_the_read_model_has_not_caught_up_with(
    client: Client, admin: Account
) -> None:
    """The recipient is looked up in its events, not in the `user` table, which follows a
    save a moment later: a notification to an account just signed up was refused 422 when the
    identity projector had not applied it yet (seen in a make test run)."""
    url = str(client.app.state.services.database.url)
    with psycopg.connect(url, autocommit=True) as holder:
        # The identity projector cannot take its lock meanwhile: nothing of it is applied.
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_key("identity"),))
        try:
            fresh = register(client, f"late-{uuid.uuid4().hex[:8]}@example.com")["id"]
            assert rows(url, 'SELECT 1 FROM "user" WHERE id = %s', (fresh,)) == []
            sent = client.post(
                f"{API}/admin/notifications",
                json={**GOOD, "channels": ["webhook"], "userId": fresh},
                headers=admin,
            )
        finally:
            holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (lock_key("identity"),))
    assert sent.status_code == 202, sent.text


GOOD = {"title": "Hello", "body": "Text", "channels": ["slack"]}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({**GOOD, "title": " "}, "/title"),
        ({**GOOD, "title": "x" * 201}, "/title"),
        ({**GOOD, "body": "nul\u0000"}, "/body"),
        ({**GOOD, "channels": []}, "/channels"),
        ({**GOOD, "channels": ["slack", "slack"]}, "/channels"),
        ({**GOOD, "channels": ["slack", "discord"]}, "/channels/1"),  # not configured here
        ({**GOOD, "channels": ["pager"]}, "/channels/0"),
        ({**GOOD, "severity": "fatal"}, "/severity"),
        ({**GOOD, "userId": "0190c7a0-0000-7000-8000-000000000000"}, "/userId"),
        ({**GOOD, "userId": "a\u0000b"}, "/userId"),
        ({**GOOD, "extra": True}, ""),
        ({"title": "Hello", "channels": ["slack"]}, ""),
    ],
)
def test_a_bad_notification_is_a_problem_and_stores_nothing(
    client: Client, admin: Account, body: dict[str, Any], pointer: str
) -> None:
    before = rows_of(client, STORED)
    response = client.post(f"{API}/admin/notifications", json=body, headers=admin)
    errors = problem(response, 422)["errors"]
    assert any(e["pointer"].startswith(pointer) for e in errors), errors
    assert rows_of(client, STORED) == before


def test_the_process_managers_wait_as_set_and_the_projectors_do_not(client: Client) -> None:
    """A2N_PROCESS_MANAGER_COALESCE reaches the managers' supervisor alone: the projectors,
    which reads wait for, keep A2N_PROJECTION_COALESCE."""
    services = client.app.state.services
    settings = services.settings
    assert settings.process_manager_coalesce != settings.projection_coalesce
    assert services.process_managers.coalesce == settings.process_manager_coalesce
    assert services.supervisor.coalesce == settings.projection_coalesce
