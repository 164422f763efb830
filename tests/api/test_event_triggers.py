"""Event triggers and error workflows end to end: runs through the API, ended by the in-process
worker, start other workflows through the event trigger manager running beside it."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import TestClient

from application.executions.event_triggers import MAX_CHAIN_DEPTH
from tests.api.helpers import API, RUNNABLE, Account, create, problem, published, run

Client = TestClient[Any]
FAILING: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "manual_trigger", "name": "Start"},
        {
            "id": "boom",
            "type": "code",
            "name": "Boom",
            "config": {"code": "raise ValueError('boom')"},
        },
    ],
    "connections": [{"source": "start", "target": "boom"}],
}


def listening(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "on", "type": "event_trigger", "name": "On", "config": config},
            {"id": "set", "type": "set", "name": "Set", "config": {"fields": {"seen": True}}},
        ],
        "connections": [{"source": "on", "target": "set"}],
    }


def activated(client: Client, user: Account, definition: dict[str, Any]) -> str:
    made = create(client, user, name="Listener", definition=definition)
    response = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert response.status_code == 200, response.text
    workflow_id: str = made["id"]
    return workflow_id


def ended_runs(client: Client, user: Account, workflow_id: str, count: int) -> list[dict[str, Any]]:
    """The workflow's runs once `count` of them ended (oldest first)."""
    deadline = time.monotonic() + 20
    while True:
        page = client.get(
            f"{API}/executions", params={"workflowId": workflow_id}, headers=user
        ).json()
        done = [r for r in page["items"] if r["status"] not in ("QUEUED", "RUNNING")]
        if len(done) >= count:
            return [
                client.get(f"{API}/executions/{r['id']}", headers=user).json()
                for r in reversed(page["items"])
            ]
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


def test_a_run_that_ends_starts_the_workflow_waiting_for_it(client: Client, user: Account) -> None:
    watched = published(client, user, RUNNABLE)
    listener = activated(client, user, listening({"workflowId": watched, "status": "SUCCESS"}))
    ended = run(client, user, watched, [{"order": 7}], wait="true")
    [started] = ended_runs(client, user, listener, 1)
    assert started["mode"] == "event"
    assert started["status"] == "SUCCESS"
    assert started["triggerData"]["executionId"] == ended["id"]
    [item] = started["outputData"]
    assert item["seen"] is True
    assert item["executionId"] == ended["id"]
    assert item["workflowId"] == watched
    assert item["status"] == "SUCCESS"
    assert item["error"] is None


def test_a_failed_run_starts_its_error_workflow(client: Client, user: Account) -> None:
    handler = published(client, user, RUNNABLE)
    failing = published(client, user, {**FAILING, "settings": {"errorWorkflow": handler}})
    failed = run(client, user, failing, wait="true")
    assert failed["status"] == "FAILED"
    [started] = ended_runs(client, user, handler, 1)
    [item] = started["outputData"]
    assert item["executionId"] == failed["id"]
    assert item["status"] == "FAILED"
    assert item["error"]["nodeId"] == "boom"
    assert "boom" in item["error"]["message"]
    assert started["triggerData"]["source"] == "error_workflow"


def test_a_workflow_started_by_its_own_end_stops_after_the_chain_limit(
    client: Client, user: Account
) -> None:
    made = create(client, user, name="Loop", definition=RUNNABLE)["id"]
    own = listening({"workflowId": made, "status": "SUCCESS"})
    own["nodes"].insert(0, {"id": "start", "type": "manual_trigger", "name": "Start"})
    own["connections"].append({"source": "start", "target": "set"})
    saved = client.put(f"{API}/workflows/{made}/definition", json=own, headers=user)
    assert saved.status_code == 200, saved.text
    assert client.post(f"{API}/workflows/{made}/activate", headers=user).status_code == 200
    run(client, user, made, wait="true")
    runs = ended_runs(client, user, made, MAX_CHAIN_DEPTH + 1)
    time.sleep(1)  # nothing more comes
    again = client.get(f"{API}/executions", params={"workflowId": made}, headers=user).json()
    assert len(again["items"]) == MAX_CHAIN_DEPTH + 1
    depths = [r["triggerData"].get("chainDepth") for r in runs if r["mode"] == "event"]
    assert depths == list(range(1, MAX_CHAIN_DEPTH + 1))


def test_listeners_and_error_workflows_are_checked_on_save(client: Client, user: Account) -> None:
    typo = create(client, user, definition=listening({"event": "execution.failed"}))["id"]
    url = f"{API}/workflows/{typo}/definition"
    refused = client.put(url, json=listening({"event": "execution.faild"}), headers=user)
    assert "execution.failed" in problem(refused, 422)["errors"][0]["message"]
    timed_out = listening({"workflowId": typo, "status": "TIMEOUT"})
    assert client.put(url, json=timed_out, headers=user).status_code == 200
    custom = listening({"event": "invoice.paid"})  # names outside execution. are free
    assert client.put(url, json=custom, headers=user).status_code == 200
    bad = client.patch(
        f"{API}/workflows/{typo}", json={"settings": {"errorWorkflow": "mine"}}, headers=user
    )
    assert problem(bad, 422)["errors"][0]["pointer"] == "/settings/errorWorkflow"
