"""GET /schedules and /schedules/{id}: who sees which schedules, filters, bad input; and the
schedules' next run times on GET /workflows/{id}/triggers.

The API's test app runs no scheduler (schedules would fire in every test's database); these tests
bring schedules in step with their workflows through the same use case the scheduler calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from application.executions.schedules import Change
from domain.executions.schedule import schedule_id
from domain.workflows.triggers import trigger_id
from tests.api.helpers import (
    API,
    Account,
    executions_head,
    problem,
    read,
    scheduled_workflow,
    schedules_of,
    share,
    sign_up,
)
from tests.api.test_row_level_security import as_role, values

Client = TestClient[Any]


def head(client: Client) -> int:
    return executions_head(client)


def listed(client: Client, user: Account, **params: Any) -> list[dict[str, Any]]:
    page = read(client, user, "/schedules", executions_head(client), **params)
    assert page["nextCursor"] is None
    items: list[dict[str, Any]] = page["items"]
    return items


def test_your_schedules_say_when_they_run_next(client: Client, user: Account) -> None:
    before = datetime.now(UTC)
    wid = scheduled_workflow(client, user)
    items = {item["nodeId"]: item for item in listed(client, user)}
    assert sorted(items) == ["daily", "tick"]
    tick = items["tick"]
    assert tick["id"] == schedule_id(wid, "tick")
    assert (tick["workflowId"], tick["triggerId"]) == (wid, trigger_id(wid, "tick"))
    assert (tick["status"], tick["intervalSeconds"], tick["cron"]) == ("ARMED", 600, None)
    assert (tick["misfire"], tick["retries"], tick["attempts"], tick["runCount"]) == (
        "runOnce",
        3,
        0,
        0,
    )
    next_run = datetime.fromisoformat(tick["nextRunAt"])
    assert before + timedelta(seconds=600) <= next_run <= datetime.now(UTC) + timedelta(seconds=600)
    daily = items["daily"]
    assert (daily["cron"], daily["timezone"], daily["misfire"]) == (
        "30 6 * * *",
        "America/New_York",
        "skip",
    )
    assert datetime.fromisoformat(daily["nextRunAt"]).astimezone(UTC).minute == 30

    one = read(client, user, f"/schedules/{tick['id']}", executions_head(client))
    assert one == tick
    # The triggers' main log is the workflows log: name the executions log (schedules are there).
    triggers = client.get(
        f"{API}/workflows/{wid}/triggers",
        headers={**user, "A2N-Min-Position": f"executions:{executions_head(client)}"},
    ).json()["items"]
    assert {t["nodeId"]: t["nextRunAt"] for t in triggers} == {
        "tick": tick["nextRunAt"],
        "daily": daily["nextRunAt"],
    }, "the triggers show the armed schedules' times, intervals included"


def test_filters_and_deactivation(client: Client, user: Account) -> None:
    wid = scheduled_workflow(client, user)
    other = scheduled_workflow(client, user)
    assert {i["workflowId"] for i in listed(client, user, workflowId=wid)} == {wid}
    off = client.post(f"{API}/workflows/{other}/deactivate", headers=user)
    assert off.status_code == 200, off.text
    assert schedules_of(client).sync(other, "tick") is Change.DISARMED
    disarmed = listed(client, user, status="DISARMED")
    assert [(i["workflowId"], i["nodeId"]) for i in disarmed] == [(other, "tick")]
    assert disarmed[0]["disarmedReason"] == "the workflow was deactivated"
    assert disarmed[0]["nextRunAt"] is None
    assert len(listed(client, user, status="ARMED")) == 3


def test_pages_follow_the_cursor(client: Client, user: Account) -> None:
    for _ in range(2):
        scheduled_workflow(client, user)
    first = read(client, user, "/schedules", executions_head(client), limit=3)
    assert len(first["items"]) == 3
    assert first["nextCursor"] is not None
    position = executions_head(client)
    rest = read(client, user, "/schedules", position, limit=3, cursor=first["nextCursor"])
    assert len(rest["items"]) == 1
    assert rest["nextCursor"] is None
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4


def test_sharees_see_a_workflows_schedules_and_strangers_do_not(
    client: Client, user: Account
) -> None:
    wid = scheduled_workflow(client, user)
    viewer, stranger = sign_up(client), sign_up(client)
    position = share(client, user, wid, viewer.user_id, "VIEW")["position"]
    read(client, user, f"/workflows/{wid}/shares", position)
    sid = schedule_id(wid, "tick")
    assert {i["id"] for i in listed(client, viewer)} == {sid, schedule_id(wid, "daily")}
    assert read(client, viewer, f"/schedules/{sid}", executions_head(client))["id"] == sid
    assert listed(client, stranger) == []
    assert listed(client, stranger, workflowId=wid) == []
    problem(client.get(f"{API}/schedules/{sid}", headers=stranger), 404)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"workflowId": "not-an-id"}, 400),
        ({"status": "PAUSED"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "501"}, 400),
        ({"cursor": "garbage"}, 400),
    ],
)
def test_bad_list_parameters_are_problems(
    client: Client, user: Account, params: dict[str, str], status: int
) -> None:
    problem(client.get(f"{API}/schedules", params=params, headers=user), status)


def test_an_unknown_or_malformed_schedule_is_404(client: Client, user: Account) -> None:
    problem(client.get(f"{API}/schedules/not-an-id", headers=user), 404)
    unknown = schedule_id("0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f99", "tick")
    problem(client.get(f"{API}/schedules/{unknown}", headers=user), 404)
    problem(client.get(f"{API}/schedules"), 401)


def test_row_level_security_shows_schedules_with_their_workflow(
    client: Client, user: Account, database_url: str
) -> None:
    wid = scheduled_workflow(client, user)
    stranger = sign_up(client)
    mine = {schedule_id(wid, "tick"), schedule_id(wid, "daily")}
    with as_role(database_url, "a2n_app", user.user_id) as conn:
        assert mine <= values(conn, "SELECT id FROM execution_schedule")
    with as_role(database_url, "a2n_app", stranger.user_id) as conn:
        assert not mine & values(conn, "SELECT id FROM execution_schedule")
    with as_role(database_url, "a2n_analyst") as conn:
        assert mine <= values(conn, "SELECT id FROM execution_schedule")
