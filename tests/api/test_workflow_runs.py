"""Running workflows over HTTP: manual and test runs, waiting for the result, cancelling,
retrying, who may do which, and bad input (problem+json, nothing stored)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.api.helpers import (
    API,
    RUNNABLE,
    SLOW,
    Account,
    create,
    problem,
    published,
    run,
    share,
    sign_up,
)

Client = TestClient[Any]


def stored_executions(client: Client) -> int:
    """Events stored in the executions context so far."""
    return int(client.app.state.services.executions.app.head_position())


def test_a_run_with_wait_answers_the_result_of_the_last_node(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    ended = run(client, user, workflow_id, [{"order": 1}, {"order": 2}], wait="true")
    assert ended["status"] == "SUCCESS"
    assert ended["outputItems"] == [{"order": 1, "seen": True}, {"order": 2, "seen": True}]
    assert ended["workflowVersion"] == 1
    assert ended["mode"] == "manual"
    assert ended["startTime"] <= ended["endTime"]


def test_a_run_without_a_body_gets_one_empty_item(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    ended = run(client, user, workflow_id, None, wait="true")
    assert ended["outputItems"] == [{"seen": True}]


def test_a_run_without_wait_is_accepted_and_ends_later(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    response = client.post(f"{API}/workflows/{workflow_id}/executions", headers=user)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "QUEUED"
    assert "outputItems" not in queued
    ended = asyncio.run(client.app.state.services.executions.wait_for_end(queued["id"], 10))
    assert str(ended.status) == "SUCCESS"


def test_an_unpublished_workflow_runs_only_as_a_test_of_its_draft(
    client: Client, user: Account
) -> None:
    draft = create(client, user, definition=RUNNABLE)["id"]
    refused = client.post(f"{API}/workflows/{draft}/executions", headers=user)
    assert "publish" in problem(refused, 409)["detail"]
    tried = run(client, user, draft, wait="true", test="true")
    assert tried["status"] == "SUCCESS"
    assert tried["mode"] == "test"


def test_a_run_executes_the_published_version_not_the_draft(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    changed = {
        **RUNNABLE,
        "nodes": [
            RUNNABLE["nodes"][0],
            {**RUNNABLE["nodes"][1], "config": {"fields": {"seen": "v2"}}},
        ],
    }
    saved = client.put(f"{API}/workflows/{workflow_id}/definition", json=changed, headers=user)
    assert saved.status_code == 200, saved.text
    assert run(client, user, workflow_id, wait="true")["outputItems"] == [{"seen": True}]
    draft = run(client, user, workflow_id, wait="true", test="true")
    assert draft["outputItems"] == [{"seen": "v2"}]
    assert draft["workflowVersion"] == 2


def test_who_may_run_follows_the_workflows_shares(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    stranger, viewer, runner = sign_up(client), sign_up(client), sign_up(client)
    share(client, user, workflow_id, viewer.user_id, "VIEW")
    share(client, user, workflow_id, runner.user_id, "EXECUTE")
    url = f"{API}/workflows/{workflow_id}/executions"
    problem(client.post(url, headers=stranger), 404)
    assert "EXECUTE" in problem(client.post(url, headers=viewer), 403)["detail"]
    assert run(client, runner, workflow_id, wait="true")["status"] == "SUCCESS"


def test_an_archived_workflow_no_longer_runs(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    assert client.post(f"{API}/workflows/{workflow_id}/archive", headers=user).status_code == 200
    refused = client.post(f"{API}/workflows/{workflow_id}/executions", headers=user)
    assert "archived" in problem(refused, 409)["detail"]


def test_a_running_execution_is_cancelled_and_cannot_be_cancelled_twice(
    client: Client, user: Account
) -> None:
    workflow_id = published(client, user, SLOW)
    started = run(client, user, workflow_id)
    cancel = f"{API}/executions/{started['id']}/cancel"
    response = client.post(cancel, headers=user)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert response.json()["position"] > started["position"]
    assert "already ended" in problem(client.post(cancel, headers=user), 409)["detail"]


def test_only_runners_of_the_workflow_may_cancel(client: Client, user: Account) -> None:
    workflow_id = published(client, user, SLOW)
    viewer = sign_up(client)
    share(client, user, workflow_id, viewer.user_id, "VIEW")
    started = run(client, user, workflow_id)
    cancel = f"{API}/executions/{started['id']}/cancel"
    problem(client.post(cancel, headers=sign_up(client)), 404)
    problem(client.post(cancel, headers=viewer), 403)
    assert client.post(cancel, headers=user).status_code == 200


def test_a_retry_runs_the_same_version_with_the_same_input(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    first = run(client, user, workflow_id, [{"n": 7}], wait="true")
    response = client.post(f"{API}/executions/{first['id']}/retry", headers=user)
    assert response.status_code == 202, response.text
    again = response.json()
    assert again["retryOf"] == first["id"]
    assert again["mode"] == "retry"
    ended = asyncio.run(client.app.state.services.executions.wait_for_end(again["id"], 10))
    assert ended.output_items == [{"n": 7, "seen": True}]


def test_a_run_whose_input_retention_pruned_is_not_retried(
    client: Client, user: Account, database_url: str
) -> None:
    workflow_id = published(client, user, RUNNABLE)
    large = [{"n": 7, "text": "large " * 1000}]
    first = run(client, user, workflow_id, large, wait="true")
    assert first["outputItems"] == [{**large[0], "seen": True}]
    with psycopg.connect(database_url, autocommit=True) as conn:  # what retention does
        released = conn.execute(
            "DELETE FROM payload_ref WHERE execution_id = %s RETURNING hash", (first["id"],)
        ).fetchall()
        conn.execute(
            "DELETE FROM payload p WHERE hash = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM payload_ref r WHERE r.hash = p.hash)",
            ([row[0] for row in released],),
        )
    before = stored_executions(client)
    refused = client.post(f"{API}/executions/{first['id']}/retry", headers=user)
    assert "pruned" in problem(refused, 409)["detail"]
    assert stored_executions(client) == before


def test_a_run_still_going_is_not_retried(client: Client, user: Account) -> None:
    workflow_id = published(client, user, SLOW)
    started = run(client, user, workflow_id)
    refused = client.post(f"{API}/executions/{started['id']}/retry", headers=user)
    assert "only an ended one" in problem(refused, 409)["detail"]
    client.post(f"{API}/executions/{started['id']}/cancel", headers=user)


# -- bad input: a problem+json answer and nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"order": 1}, 422, "array"),
        ([1, 2], 422, "object"),
        (["text"], 422, "object"),
        ([[{}]], 422, "object"),
        ([{"text": "a\u0000b"}], 422, "nul character"),  # jsonb cannot hold it
    ],
)
def test_input_items_must_be_an_array_of_objects(
    client: Client, user: Account, body: Any, status: int, says: str
) -> None:
    workflow_id = published(client, user, RUNNABLE)
    before = stored_executions(client)
    response = client.post(f"{API}/workflows/{workflow_id}/executions", json=body, headers=user)
    assert says in str(problem(response, status)).lower()
    assert stored_executions(client) == before


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"priority": "101"}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"wait": "maybe"}, "wait"),
        ({"timeout": "0"}, "timeout"),
        ({"timeout": "301"}, "timeout"),
    ],
)
def test_bad_run_parameters_are_refused(
    client: Client, user: Account, query: dict[str, str], parameter: str
) -> None:
    workflow_id = published(client, user, RUNNABLE)
    before = stored_executions(client)
    response = client.post(f"{API}/workflows/{workflow_id}/executions", headers=user, params=query)
    assert parameter in {e.get("parameter") for e in problem(response, 400)["errors"]}
    assert stored_executions(client) == before


def test_broken_json_and_other_media_types_are_refused(client: Client, user: Account) -> None:
    workflow_id = published(client, user, RUNNABLE)
    url = f"{API}/workflows/{workflow_id}/executions"
    before = stored_executions(client)
    broken = client.post(url, content=b"[{", headers={**user, "Content-Type": "application/json"})
    problem(broken, 400)
    text = client.post(url, content=b"hello", headers={**user, "Content-Type": "text/plain"})
    problem(text, 415)
    assert stored_executions(client) == before


@pytest.mark.parametrize(
    "path",
    [
        "/workflows/not-an-id/executions",
        "/workflows/0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60/executions",
        "/executions/not-an-id/cancel",
        "/executions/0190d6a4-8e4b-7cc3-a7b6-3f1c2d4e5f60/retry",
        "/executions/%27%20OR%201=1--/cancel",
    ],
)
def test_unknown_or_malformed_ids_are_404(client: Client, user: Account, path: str) -> None:
    before = stored_executions(client)
    problem(client.post(f"{API}{path}", headers=user), 404)
    assert stored_executions(client) == before
