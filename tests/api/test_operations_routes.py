"""Operations routes for administrators: the system log with its filters and pages, and where
every projector stands."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from projections.registry import PROJECTORS
from tests.api.helpers import API, Account, problem, promote, sign_up

Client = TestClient[Any]


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


def logs(client: Client, admin: Account, **params: Any) -> Any:
    response = client.get(f"{API}/admin/system-logs", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_process_start_is_logged_with_its_run_id(client: Client, admin: Account) -> None:
    run = client.app.state.services.journal.run_id
    [started] = logs(client, admin, event="process.started", correlationId=run)["items"]
    assert (started["level"], started["component"], started["service"]) == (
        "INFO",
        "process",
        "serve",
    )
    assert started["metadata"]["roles"] == ["api", "projectors", "workers"]
    assert logs(client, admin, event="process.started", correlationId=run, level="WARN") == {
        "items": [],
        "nextCursor": None,
    }
    assert logs(client, admin, event="process.started", service="schedule")["items"] == []


def test_a_retention_run_and_a_setting_change_are_logged_with_the_request(
    client: Client, admin: Account
) -> None:
    request_id = f"ops-test-{uuid.uuid4().hex}"
    ran = client.post(f"{API}/admin/retention/run", headers={**admin, "X-Request-Id": request_id})
    assert ran.status_code == 200, ran.text
    finished = logs(client, admin, component="retention", event="retention.finished")["items"][0]
    assert finished["userId"] == admin.user_id
    run = logs(client, admin, correlationId=finished["correlationId"])["items"]
    assert [line["event"] for line in run] == ["retention.finished", "retention.started"]
    assert set(finished["metadata"]["rows"]) >= {"system_log", "execution_log"}

    changed = client.put(
        f"{API}/admin/settings/webhook_wait",
        json={"value": 30.0},
        headers={**admin, "X-Request-Id": request_id},
    )
    assert changed.status_code == 200, changed.text
    [line] = logs(client, admin, correlationId=request_id)["items"]
    assert (line["event"], line["userId"], line["metadata"]) == (
        "setting.changed",
        admin.user_id,
        {"key": "webhook_wait", "value": 30.0},
    )


def test_system_logs_come_in_pages_newest_first(client: Client, admin: Account) -> None:
    first = logs(client, admin, limit=2)
    assert len(first["items"]) == 2
    assert first["nextCursor"] is not None
    second = logs(client, admin, limit=2, cursor=first["nextCursor"])
    assert second["items"]
    times = [line["timestamp"] for line in first["items"] + second["items"]]
    assert times == sorted(times, reverse=True)
    assert {line["id"] for line in first["items"]}.isdisjoint(
        {line["id"] for line in second["items"]}
    )
    assert logs(client, admin, **{"from": "2999-01-01T00:00:00Z"})["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"level": "LOUD"},
        {"from": "2026-01-01T00:00:00"},  # no time zone
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "yesterday"},
        {"cursor": "not-a-cursor"},
        {"component": "proc\u0000ess"},
        {"event": "x" * 201},
        {"limit": 0},
        {"limit": 501},
    ],
)
def test_bad_system_log_filters_are_400(
    client: Client, admin: Account, params: dict[str, Any]
) -> None:
    problem(client.get(f"{API}/admin/system-logs", params=params, headers=admin), 400)


def test_every_projector_shows_its_position_lag_and_state(client: Client, admin: Account) -> None:
    response = client.get(f"{API}/admin/projections", headers=admin)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {(p.name, a) for p in PROJECTORS for a in p.applications} <= {
        (i["projector"], i["application"]) for i in items
    }
    operations = next(i for i in items if i["projector"] == "operations")
    assert operations["application"] == "operations"
    for item in items:
        assert item["lag"] == max(0, item["head"] - item["position"])
        assert item["state"] in {"running", "standby", "starting", "restarting", "parked"}
        assert item["skipped"] == [] or all("position" in k for k in item["skipped"])
