"""Runtime settings over HTTP: typed values stored as events, served with their source, their
history, and in effect without a restart, in this process and in the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from application.eventstore import event_store_env
from application.ids import new_id
from application.listener import Listener
from application.operations.app import OperationsApp
from application.operations.live import LiveSettings
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import API, Account, problem, promote, sign_up
from tests.api.test_webhooks import activated, hooked, unique_path
from tests.integration.helpers import rows, wait_until

Client = TestClient[Any]
CHANGED = (
    "log_level",
    "projection_batch_size",
    "retention.system_log",
    "min_position_timeout",
    "webhook_rate_limit",
    "projection_coalesce",
    "background_coalesce",
    "process_manager_coalesce",
)


@pytest.fixture
def admin(client: Client, owner: Account) -> Iterator[Account]:
    """An ADMIN; the settings these tests change go back to their defaults afterwards (the
    database is shared with the other tests of the run)."""
    account = promote(client, owner, sign_up(client))
    yield account
    for key in CHANGED:
        assert client.delete(f"{API}/admin/settings/{key}", headers=account).status_code == 200


def operations_head(client: Client) -> int:
    return int(client.app.state.services.runtime_settings.head())


def setting(client: Client, admin: Account, key: str, position: int | None = None) -> Any:
    headers = {**admin, **({"A2N-Min-Position": str(position)} if position else {})}
    response = client.get(f"{API}/admin/settings/{key}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def put(client: Client, admin: Account, key: str, value: Any) -> Any:
    return client.put(f"{API}/admin/settings/{key}", json={"value": value}, headers=admin)


def test_every_setting_is_listed_with_its_type_value_and_source(
    client: Client, admin: Account
) -> None:
    listed = client.get(f"{API}/admin/settings", headers=admin)
    assert listed.status_code == 200, listed.text
    found = {item["key"]: item for item in listed.json()["items"]}
    # The test app's settings chose these (as A2N_* variables would): the environment.
    assert (
        found["min_position_timeout"].items()
        >= {
            "type": "number",
            "value": 3.0,
            "default": 3.0,
            "source": "environment",
            "variable": "A2N_MIN_POSITION_TIMEOUT",
            "live": True,
        }.items()
    )
    assert found["log_level"]["choices"] == ["debug", "info", "warning", "error"]
    assert found["projection_batch_size"]["source"] == "default"
    assert (
        found["retention.system_log"].items()
        >= {
            "type": "interval",
            "value": "90 days",
            "source": "default",
        }.items()
    )
    assert {"retention.execution.success", "retention.audit_log", "webhook_wait"} <= set(found)
    # A2N_RATE_LIMITS=off in the test app: webhooks unlimited, as by default.
    assert (found["webhook_rate_limit"]["value"], found["webhook_rate_limit"]["type"]) == (
        "off",
        "rate",
    )


def test_a_change_is_stored_served_and_kept_in_its_history(client: Client, admin: Account) -> None:
    changed = put(client, admin, "projection_batch_size", 250)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["value"], body["source"], body["changedBy"]) == (250, "stored", admin.user_id)
    again = put(client, admin, "projection_batch_size", 300).json()
    served = setting(client, admin, "projection_batch_size", again["position"])
    stored = (300, "stored", admin.user_id)
    assert (served["value"], served["source"], served["changedBy"]) == stored
    assert served["default"] == 500
    assert served["changedAt"] is not None

    reset = client.delete(f"{API}/admin/settings/projection_batch_size", headers=admin)
    assert reset.status_code == 200, reset.text
    assert (reset.json()["value"], reset.json()["source"]) == (500, "default")
    served = setting(client, admin, "projection_batch_size", reset.json()["position"])
    assert (served["value"], served["source"]) == (500, "default")

    history = client.get(f"{API}/admin/settings/projection_batch_size/history", headers=admin)
    assert history.status_code == 200, history.text
    steps = [(c["value"], c["previous"], c["reset"]) for c in history.json()["items"]][-3:]
    assert steps == [(250, None, False), (300, 250, False), (None, 300, True)]
    assert {c["changedBy"] for c in history.json()["items"][-3:]} == {admin.user_id}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("projection_batch_size", "250"),  # a string for an integer
        ("projection_batch_size", 2.5),
        ("projection_batch_size", True),
        ("projection_batch_size", 0),  # out of range
        ("projection_batch_size", 10**9),
        ("min_position_timeout", -1),
        ("min_position_timeout", None),
        ("log_level", "LOUD"),
        ("log_level", 3),
        ("retention.system_log", "90"),
        ("retention.system_log", "0 days"),
        ("retention.system_log", "500 years"),
        ("retention.system_log", "1 day; DROP TABLE system_log"),
        ("webhook_rate_limit", "300"),
        ("webhook_rate_limit", "0/60"),
        ("webhook_rate_limit", "10/0"),
        ("webhook_rate_limit", 300),
    ],
)
def test_a_value_the_setting_cannot_take_is_422_and_nothing_is_stored(
    client: Client, admin: Account, key: str, value: Any
) -> None:
    before = operations_head(client)
    body = problem(put(client, admin, key, value), 422)
    assert body["errors"][0]["pointer"] == "/value"
    assert operations_head(client) == before


def test_unknown_keys_and_malformed_bodies_are_problems(client: Client, admin: Account) -> None:
    before = operations_head(client)
    problem(put(client, admin, "no_such_setting", 1), 404)
    problem(client.get(f"{API}/admin/settings/no_such_setting", headers=admin), 404)
    problem(client.get(f"{API}/admin/settings/no_such_setting/history", headers=admin), 404)
    problem(client.delete(f"{API}/admin/settings/no_such_setting", headers=admin), 404)
    url = f"{API}/admin/settings/log_level"
    headers = {**admin, "content-type": "application/json"}
    problem(client.put(url, content=b'{"value": ', headers=headers), 400)
    assert client.put(url, json={"value": "info", "extra": 1}, headers=admin).status_code in (
        400,
        422,
    )
    assert client.put(url, json=["info"], headers=admin).status_code in (400, 422)
    assert operations_head(client) == before


def test_a_retention_age_takes_effect_without_a_restart(client: Client, admin: Account) -> None:
    url = str(client.app.state.services.database.url)
    old, recent = new_id(), new_id()
    now = datetime.now(UTC)
    for line_id, at in ((old, now - timedelta(days=3)), (recent, now - timedelta(hours=12))):
        rows(
            url,
            "INSERT INTO system_log (id, level, service, component, event, message, host, pid, "
            "\"timestamp\") VALUES (%s, 'INFO', 'test', 'test', 'test.line', 'x', "
            "'here', 1, %s) RETURNING id",
            (line_id, at),
        )
    ran = client.post(f"{API}/admin/retention/run", headers=admin)
    assert ran.status_code == 200, ran.text
    kept = "SELECT id FROM system_log WHERE id IN (%s, %s) ORDER BY id"
    assert rows(url, kept, (old, recent)) == [(old,), (recent,)]  # 90 days: both stay

    assert put(client, admin, "retention.system_log", "2 days").status_code == 200
    ran = client.post(f"{API}/admin/retention/run", headers=admin)
    assert ran.status_code == 200, ran.text
    rule = next(r for r in ran.json()["rules"] if r["rule"] == "system_log")
    assert rule["olderThan"] == "2 days"
    assert rule["rows"] >= 1
    assert rows(url, kept, (old, recent)) == [(recent,)]


def test_the_webhook_rate_limit_takes_effect_without_a_restart(
    client: Client, admin: Account, user: Account
) -> None:
    path = unique_path()
    activated(client, user, hooked(path, method="POST"))
    assert {client.post(f"/webhook/{path}").status_code for _ in range(2)} == {202}
    assert put(client, admin, "webhook_rate_limit", "1/60").status_code == 200
    assert [client.post(f"/webhook/{path}").status_code for _ in range(2)] == [202, 429]
    assert (
        client.delete(f"{API}/admin/settings/webhook_rate_limit", headers=admin).status_code == 200
    )
    assert client.post(f"/webhook/{path}").status_code == 202


def test_the_log_level_takes_effect_without_a_restart(client: Client, admin: Account) -> None:
    root = logging.getLogger()
    assert root.level == logging.WARNING  # the test app's A2N_LOG_LEVEL
    assert put(client, admin, "log_level", "debug").status_code == 200
    assert root.level == logging.DEBUG
    assert client.delete(f"{API}/admin/settings/log_level", headers=admin).status_code == 200
    assert root.level == logging.WARNING


def test_projectors_and_process_managers_coalesce_as_set_without_a_restart(
    client: Client, admin: Account
) -> None:
    services = client.app.state.services
    for key, supervisor, attribute in (
        ("projection_coalesce", services.supervisor, "coalesce"),
        ("background_coalesce", services.supervisor, "background_coalesce"),
        ("process_manager_coalesce", services.process_managers, "coalesce"),
    ):
        default = getattr(services.settings, key)
        assert getattr(supervisor, attribute) == default
        assert put(client, admin, key, 0.07).status_code == 200
        assert getattr(supervisor, attribute) == 0.07
        problem(put(client, admin, key, 9), 422)
        assert getattr(supervisor, attribute) == 0.07
        assert client.delete(f"{API}/admin/settings/{key}", headers=admin).status_code == 200
        assert getattr(supervisor, attribute) == default


def test_other_processes_take_a_change_from_the_event_stores_notice(
    client: Client, admin: Account
) -> None:
    """Another process's cache, with its own event store and listener as `a2n serve` has."""
    services = client.app.state.services
    url = str(services.database.url)
    app = OperationsApp(env=event_store_env(url))
    listener = Listener(url, name="a2n-test-listener")
    other = LiveSettings(services.settings, app)
    other.follow(listener)
    listener.start()
    try:
        wait_until(lambda: listener.listening)
        assert other.value("min_position_timeout") == 3.0
        assert put(client, admin, "min_position_timeout", 7.5).status_code == 200
        wait_until(lambda: other.value("min_position_timeout") == 7.5)
        # ... and this process's own waits use it at once.
        assert services.live.value("min_position_timeout") == 7.5
    finally:
        listener.stop()
        app.close()


def test_app_setting_equals_a_rebuild_from_the_events(client: Client, admin: Account) -> None:
    put(client, admin, "retention.system_log", "45 days")
    position = put(client, admin, "retention.system_log", "60 days").json()["position"]
    setting(client, admin, "retention.system_log", position)
    url = str(client.app.state.services.database.url)
    result = Rebuilder(url, projector_named("operations")).verify()
    assert result.identical, result.differences
