"""Execution queries over HTTP: runs, their nodes, logs and metrics; filters, pages, who sees
what; daily and per-workflow statistics; the runs each user started."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from application.executions.app import ExecutionsApp
from application.pagination import encode_cursor
from domain.executions.execution import ExecutionMode
from tests.api.helpers import (
    API,
    Account,
    create,
    problem,
    promote,
    read,
    run_seen,
    share,
    sign_up,
)
from tests.integration.helpers import GRAPH, record_run

Client = TestClient[Any]


def workflow_of(client: Client, user: Account, **body: Any) -> str:
    made = create(client, user, definition=GRAPH, **body)
    read(client, user, f"/workflows/{made['id']}", made["position"])
    found: str = made["id"]
    return found


def every_page(client: Client, user: Account, path: str, **params: Any) -> list[list[Any]]:
    """The items of each page of a list, following nextCursor to the end."""
    pages: list[list[Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{API}{path}", params=query, headers=user).json()
        pages.append(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages


def test_a_run_reads_whole_with_its_nodes_logs_and_metrics(
    client: Client, user: Account, runs: ExecutionsApp
) -> None:
    wid = workflow_of(client, user)
    run = run_seen(client, runs, user, wid, retries=1)

    body = client.get(f"{API}/executions/{run.id}", headers=user).json()
    assert {k: body[k] for k in ("id", "workflowId", "workflowVersion", "userId")} == {
        "id": run.id,
        "workflowId": wid,
        "workflowVersion": 1,
        "userId": user.user_id,
    }
    assert (body["status"], body["mode"], body["duration"], body["retryCount"]) == (
        "SUCCESS",
        "manual",
        100,
        1,
    )
    assert body["inputData"] == [{"n": 1}]
    assert body["outputData"] == [{"n": 1}, {"n": 2}]
    assert body["triggerData"] == {"source": "test"}
    assert body["contextData"] == {"startNodeId": "start"}
    assert body["metadata"] == {"actor_id": user.user_id, "correlation_id": "req-run"}
    assert body["startTime"] <= body["endTime"]

    nodes = client.get(f"{API}/executions/{run.id}/nodes", headers=user).json()
    assert [(n["nodeId"], n["status"], n["attempt"], n["retryCount"]) for n in nodes["items"]] == [
        ("start", "SUCCESS", 1, 0),
        ("work", "SUCCESS", 2, 1),
        ("after", "SKIPPED", 0, 0),
    ]
    assert nodes["items"][1]["outputData"] == {"output": [{"n": 1}, {"n": 2}]}
    assert nodes["items"][1]["duration"] == 40
    assert nodes["items"][2]["skipReason"] == "no input items"
    assert nodes["nextCursor"] is None

    lines = client.get(f"{API}/executions/{run.id}/logs", headers=user).json()["items"]
    assert lines[0]["message"] == "Execution started on worker worker-1, 3 nodes to run"
    assert lines[0]["nodeId"] is None
    assert lines[-1]["message"] == "Execution succeeded in 100 ms"
    assert {"nodeId": "start", "level": "DEBUG", "details": {"runBy": "test"}}.items() <= next(
        line for line in lines if line["message"] == "started by hand"
    ).items()

    metrics = client.get(f"{API}/executions/{run.id}/metrics", headers=user).json()["items"]
    assert [
        (m["nodeId"], m["name"], m["value"], m["unit"], m["tags"])
        for m in metrics
        if m["name"] == "duration_ms"
    ] == [
        ("start", "duration_ms", 5.0, "ms", {"attempt": 1}),
        ("work", "duration_ms", 20.0, "ms", {"attempt": 1}),
        ("work", "duration_ms", 20.0, "ms", {"attempt": 2}),
        (None, "duration_ms", 100.0, "ms", {}),
    ]


def test_runs_are_listed_newest_first_with_filters(
    client: Client, user: Account, runs: ExecutionsApp
) -> None:
    first, second = workflow_of(client, user), workflow_of(client, user)
    made = {
        "ok": run_seen(client, runs, user, first).id,
        "failed": run_seen(client, runs, user, first, "FAILED").id,
        "other": run_seen(client, runs, user, second).id,
        "queued": run_seen(client, runs, user, second, "QUEUED").id,
    }

    def ids(**params: str) -> list[str]:
        body = client.get(f"{API}/executions", params=params, headers=user).json()
        return [item["id"] for item in body["items"]]

    assert ids() == [made["queued"], made["other"], made["failed"], made["ok"]]
    assert ids(workflowId=first) == [made["failed"], made["ok"]]
    assert ids(status="FAILED") == [made["failed"]]
    assert ids(status="QUEUED", workflowId=second) == [made["queued"]]
    assert ids(status="TIMEOUT") == []
    summary = client.get(f"{API}/executions", headers=user).json()["items"][0]
    assert summary["status"] == "QUEUED"
    assert "inputData" not in summary

    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert ids(**{"from": (now - hour).isoformat()}) == ids()
    assert ids(**{"from": (now + hour).isoformat()}) == []
    assert ids(to=(now - hour).isoformat()) == []
    queued_at = client.get(f"{API}/executions/{made['other']}", headers=user).json()["createdAt"]
    assert ids(**{"from": queued_at}) == [made["queued"], made["other"]]
    assert ids(to=queued_at) == [made["failed"], made["ok"]]


def test_lists_page_with_cursors(client: Client, user: Account, runs: ExecutionsApp) -> None:
    wid = workflow_of(client, user)
    made = [run_seen(client, runs, user, wid, retries=2).id for _ in range(5)]

    pages = every_page(client, user, "/executions", limit="2")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item["id"] for page in pages for item in page] == made[::-1]

    whole = client.get(f"{API}/executions/{made[0]}/logs", headers=user).json()["items"]
    paged = every_page(client, user, f"/executions/{made[0]}/logs", limit="4")
    assert [item for page in paged for item in page] == whole
    assert len(whole) == 13

    nodes = every_page(client, user, f"/executions/{made[0]}/nodes", limit="1")
    assert [page[0]["nodeId"] for page in nodes] == ["start", "work", "after"]
    metrics = every_page(client, user, f"/executions/{made[0]}/metrics", limit="3")
    all_metrics = client.get(f"{API}/executions/{made[0]}/metrics", headers=user).json()["items"]
    assert [item for page in metrics for item in page] == all_metrics


def test_logs_filter_by_minimum_level_and_node(
    client: Client, user: Account, runs: ExecutionsApp
) -> None:
    run = run_seen(client, runs, user, workflow_of(client, user), "FAILED", retries=1)
    path = f"/executions/{run.id}/logs"

    def lines(**params: str) -> list[tuple[str | None, str]]:
        items = client.get(f"{API}{path}", params=params, headers=user).json()["items"]
        return [(item["nodeId"], item["level"]) for item in items]

    everything = lines()
    assert {level for _, level in everything} == {"DEBUG", "INFO", "WARN", "ERROR"}
    assert lines(level="DEBUG") == everything
    assert lines(level="WARN") == [("work", "WARN"), ("work", "ERROR"), (None, "ERROR")]
    assert lines(level="ERROR") == [("work", "ERROR"), (None, "ERROR")]
    assert lines(level="FATAL") == []
    assert {node for node, _ in lines(nodeId="work")} == {"work"}
    assert lines(nodeId="work", level="ERROR") == [("work", "ERROR")]
    assert lines(nodeId="nowhere") == []


def test_runs_are_seen_by_their_starter_and_the_workflows_collaborators_only(
    client: Client, runs: ExecutionsApp
) -> None:
    alice, viewer, stranger = sign_up(client), sign_up(client), sign_up(client)
    wid = workflow_of(client, alice)
    position = share(client, alice, wid, viewer.user_id, "VIEW")["position"]
    read(client, viewer, f"/workflows/{wid}", position)
    # The viewer runs it (as a trigger might for them), and so does the owner.
    by_viewer = run_seen(client, runs, viewer, wid)
    by_alice = run_seen(client, runs, alice, wid, "FAILED")
    public = workflow_of(client, alice, visibility="PUBLIC")
    on_public = run_seen(client, runs, alice, public)

    def visible(account: Account) -> set[str]:
        items = client.get(f"{API}/executions", params={"limit": "500"}, headers=account)
        return {item["id"] for item in items.json()["items"]}

    assert visible(alice) == {by_viewer.id, by_alice.id, on_public.id}
    assert visible(viewer) == {by_viewer.id, by_alice.id}
    assert visible(stranger) == set()
    for suffix in ("", "/nodes", "/logs", "/metrics"):
        problem(client.get(f"{API}/executions/{by_alice.id}{suffix}", headers=stranger), 404)
        problem(client.get(f"{API}/executions/{on_public.id}{suffix}", headers=stranger), 404)
        assert client.get(f"{API}/executions/{by_alice.id}{suffix}", headers=viewer).is_success
    # Counters of a public workflow are for every viewer; its runs are not.
    assert client.get(f"{API}/stats/workflows/{public}", headers=stranger).is_success

    revoked = client.delete(f"{API}/workflows/{wid}/shares/{viewer.user_id}", headers=alice)
    assert revoked.status_code == 200, revoked.text
    mine = client.get(
        f"{API}/executions",
        headers={**viewer, "A2N-Min-Position": f"workflows:{revoked.json()['position']}"},
    )
    assert {item["id"] for item in mine.json()["items"]} == {by_viewer.id}
    problem(client.get(f"{API}/executions/{by_alice.id}", headers=viewer), 404)


def test_workflow_counters_follow_runs_that_ended(
    client: Client, user: Account, runs: ExecutionsApp
) -> None:
    wid = workflow_of(client, user)
    empty = client.get(f"{API}/stats/workflows/{wid}", headers=user).json()
    assert empty == {
        "workflowId": wid,
        "executionCount": 0,
        "successCount": 0,
        "failureCount": 0,
        "cancelledCount": 0,
        "successRate": None,
        "lastExecutedAt": None,
        "avgExecutionTime": None,
    }
    for outcome in ("SUCCESS", "SUCCESS", "FAILED", "TIMEOUT", "CANCELLED", "RUNNING"):
        last = record_run(runs, wid, user.user_id, outcome)  # type: ignore[arg-type]
    stats = read(client, user, f"/stats/workflows/{wid}", last.position)
    assert {k: v for k, v in stats.items() if k != "lastExecutedAt"} == {
        "workflowId": wid,
        "executionCount": 5,
        "successCount": 2,
        "failureCount": 2,
        "cancelledCount": 1,
        "successRate": 0.4,
        "avgExecutionTime": 100,
    }
    started = read(client, user, f"/executions/{last.id}", last.position)["startTime"]
    assert stats["lastExecutedAt"] == started
    listed = read(client, user, f"/workflows/{wid}", 0)
    assert (listed["executionCount"], listed["successCount"], listed["failureCount"]) == (5, 2, 2)
    assert listed["lastExecutedAt"] == started


def test_daily_stats_are_for_admins_once_refreshed(
    client: Client, owner: Account, user: Account, runs: ExecutionsApp, database_url: str
) -> None:
    admin = promote(client, owner, sign_up(client))
    run_seen(client, runs, user, workflow_of(client, user))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT refresh_daily_stats()")
        expected = conn.execute(
            "SELECT DATE(start_time), count(*), count(DISTINCT user_id) FROM execution "
            "WHERE start_time IS NOT NULL GROUP BY 1 ORDER BY 1 DESC"
        ).fetchall()
    body = client.get(f"{API}/stats/daily", headers=admin).json()
    assert [
        (date.fromisoformat(d["executionDate"]), d["totalExecutions"], d["uniqueUsers"])
        for d in body["items"]
    ] == expected
    assert body["items"][0]["successfulExecutions"] >= 1
    problem(client.get(f"{API}/stats/daily", headers=user), 403)


def test_each_user_counts_the_runs_they_started(client: Client, runs: ExecutionsApp) -> None:
    alice, bob = sign_up(client), sign_up(client)
    wid = workflow_of(client, alice)
    share(client, alice, wid, bob.user_id, "EXECUTE")
    record_run(runs, wid, alice.user_id, mode=ExecutionMode.WEBHOOK)
    record_run(runs, wid, alice.user_id, "QUEUED", mode=ExecutionMode.TEST)
    last = record_run(runs, wid, bob.user_id, "FAILED")
    at = {"A2N-Min-Position": f"executions:{last.position}"}
    assert client.get(f"{API}/me", headers={**alice, **at}).json()["workflowsExecuted"] == 2
    assert client.get(f"{API}/me", headers={**bob, **at}).json()["workflowsExecuted"] == 1


BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/executions", {"limit": "0"}, "limit"),
    ("/executions", {"limit": "501"}, "limit"),
    ("/executions", {"limit": "ten"}, "limit"),
    ("/executions", {"status": "DONE"}, "status"),
    ("/executions", {"status": "success"}, "status"),
    ("/executions", {"workflowId": "not-an-id"}, "workflowId"),
    ("/executions", {"workflowId": "x" * 65}, "workflowId"),
    ("/executions", {"from": "yesterday"}, "from"),
    ("/executions", {"from": "2026-01-01T00:00:00"}, "from"),
    ("/executions", {"to": "2026-13-01T00:00:00Z"}, "to"),
    ("/executions", {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ("/executions", {"cursor": "not-a-cursor"}, "cursor"),
    ("/executions", {"cursor": encode_cursor({"version": "1"})}, "cursor"),
    ("/executions/{id}/nodes", {"cursor": encode_cursor({"sequence": "first"})}, "cursor"),
    ("/executions/{id}/nodes", {"limit": "0"}, "limit"),
    ("/executions/{id}/logs", {"level": "LOUD"}, "level"),
    ("/executions/{id}/logs", {"nodeId": "n" * 256}, "nodeId"),
    ("/executions/{id}/logs", {"cursor": encode_cursor({"version": "1", "seq": "-1"})}, "cursor"),
    ("/executions/{id}/logs", {"cursor": encode_cursor({"id": "1"})}, "cursor"),
    ("/executions/{id}/metrics", {"limit": "501"}, "limit"),
    ("/executions/{id}/metrics", {"cursor": "!!"}, "cursor"),
]


@pytest.fixture(scope="module")
def my_run(client: Client, runs: ExecutionsApp) -> tuple[Account, str]:
    me = sign_up(client)
    return me, run_seen(client, runs, me, workflow_of(client, me)).id


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_QUERIES)
def test_bad_query_parameters_are_400_naming_the_parameter(
    client: Client, my_run: tuple[Account, str], path: str, params: dict[str, str], parameter: str
) -> None:
    me, run_id = my_run
    response = client.get(API + path.replace("{id}", run_id), params=params, headers=me)
    assert [e["parameter"] for e in problem(response, 400)["errors"]] == [parameter]


def test_a_bad_daily_stats_cursor_is_400(client: Client, owner: Account) -> None:
    for cursor in ("??", encode_cursor({"date": "someday"}), encode_cursor({"id": "1"})):
        response = client.get(f"{API}/stats/daily", params={"cursor": cursor}, headers=owner)
        assert [e["parameter"] for e in problem(response, 400)["errors"]] == ["cursor"]


@pytest.mark.parametrize("suffix", ["", "/nodes", "/logs", "/metrics"])
@pytest.mark.parametrize(
    "bad_id", ["nope", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "..%2F..%2Fetc", "unknown-uuid", "upper"]
)
def test_malformed_or_unknown_ids_are_404(
    client: Client, my_run: tuple[Account, str], suffix: str, bad_id: str
) -> None:
    me, run_id = my_run
    if bad_id == "unknown-uuid":
        bad_id = "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"
    elif bad_id == "upper":
        bad_id = run_id.upper()
    problem(client.get(f"{API}/executions/{bad_id}{suffix}", headers=me), 404)


@pytest.mark.parametrize("bad_id", ["nope", "0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60"])
def test_workflow_stats_of_a_malformed_or_unknown_id_are_404(
    client: Client, user: Account, bad_id: str
) -> None:
    problem(client.get(f"{API}/stats/workflows/{bad_id}", headers=user), 404)


@pytest.mark.parametrize(
    "value", ["soon", "-1", "1" * 30, "executions:", "executions:x", "nowhere:1", "1, 2", ":1"]
)
def test_a_malformed_min_position_is_400(
    client: Client, my_run: tuple[Account, str], value: str
) -> None:
    me, _ = my_run
    response = client.get(f"{API}/executions", headers={**me, "A2N-Min-Position": value})
    assert problem(response, 400)["errors"][0]["parameter"] == "A2N-Min-Position"


def test_a_min_position_names_the_executions_log_or_any_log_explicitly(
    client: Client, my_run: tuple[Account, str], runs: ExecutionsApp
) -> None:
    me, _ = my_run
    head = runs.head_position()
    for value in (str(head), f"executions:{head}", f"executions:{head}, workflows:1"):
        response = client.get(f"{API}/executions", headers={**me, "A2N-Min-Position": value})
        assert response.status_code == 200, (value, response.text)
    # The identity log is not one these tables depend on: nothing to wait for.
    far = "identity:999999999"
    assert client.get(f"{API}/executions", headers={**me, "A2N-Min-Position": far}).is_success
    for value in (str(head + 1_000_000), f"workflows:{10**12}"):
        response = client.get(f"{API}/executions", headers={**me, "A2N-Min-Position": value})
        problem(response, 503)
