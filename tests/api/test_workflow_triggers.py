"""GET /workflows/{id}/triggers: the trigger nodes of the definition a workflow runs, projected
into workflow_trigger, with their webhook URLs and next cron run times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from litestar.testing import TestClient

from application.crypto import KeyRing
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.conftest import PUBLIC_URL
from tests.api.helpers import API, Account, create, read, sign_up, with_own_paths

Client = TestClient[Any]
TRIGGERS = {
    "nodes": [
        {
            "id": "hook",
            "name": "Orders",
            "type": "webhook_trigger",
            "config": {"path": "orders", "methods": ["POST"]},
        },
        {
            "id": "daily",
            "type": "schedule_trigger",
            "config": {"cron": "0 9 * * *", "timezone": "Europe/Paris"},
        },
        {"id": "every", "type": "schedule_trigger", "config": {"intervalSeconds": 300}},
        {"id": "paid", "type": "event_trigger", "config": {"event": "invoice.paid"}},
        {"id": "set", "type": "set", "config": {"fields": {"a": 1}}},
    ],
    "connections": [{"source": "hook", "target": "set"}],
}


def triggers(client: Client, user: Account, workflow_id: str, position: int) -> dict[str, Any]:
    found = read(client, user, f"/workflows/{workflow_id}/triggers", position)
    assert found["nextCursor"] is None
    return {item["nodeId"]: item for item in found["items"]}


def test_each_trigger_node_is_listed_with_what_starts_it(client: Client, user: Account) -> None:
    definition = with_own_paths(TRIGGERS)
    path = definition["nodes"][0]["config"]["path"]
    made = create(client, user, definition=definition)
    listed = triggers(client, user, made["id"], made["position"])
    assert sorted(listed) == ["daily", "every", "hook", "paid"]
    hook = listed["hook"]
    assert hook["type"] == "WEBHOOK"
    assert hook["nodeName"] == "Orders"
    assert hook["webhookMethods"] == ["POST"]
    assert hook["webhookUrl"] == f"{PUBLIC_URL}/webhook/{path}"
    assert hook["webhookTestUrl"] == f"{PUBLIC_URL}/webhook-test/{path}"
    assert (hook["webhookAuthMode"], hook["responseMode"]) == ("none", "immediately")
    assert hook["isActive"] is False
    assert hook["workflowVersion"] == 1
    assert listed["daily"]["nextRunAt"] is None  # inactive: nothing will fire
    assert listed["every"]["intervalSeconds"] == 300
    assert listed["paid"]["eventName"] == "invoice.paid"

    activated = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert activated.status_code == 200, activated.text
    listed = triggers(client, user, made["id"], activated.json()["position"])
    assert all(item["isActive"] for item in listed.values())
    next_run = datetime.fromisoformat(listed["daily"]["nextRunAt"])
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(days=1)
    assert next_run.astimezone(UTC).minute == 0
    assert listed["every"]["nextRunAt"] is None  # counted from the scheduler's last run


def test_a_new_definition_replaces_the_triggers_and_keeps_their_ids(
    client: Client, user: Account
) -> None:
    made = create(client, user, definition=TRIGGERS)
    before = triggers(client, user, made["id"], made["position"])
    nodes = [n for n in TRIGGERS["nodes"] if n["id"] != "paid"]
    nodes[0] = {**nodes[0], "config": {"path": "orders/v2", "methods": ["PUT"]}}
    changed = client.put(
        f"{API}/workflows/{made['id']}/definition",
        json={"nodes": nodes, "connections": TRIGGERS["connections"]},
        headers=user,
    )
    assert changed.status_code == 200, changed.text
    after = triggers(client, user, made["id"], changed.json()["position"])
    assert sorted(after) == ["daily", "every", "hook"]
    assert after["hook"]["webhookPath"] == "orders/v2"
    assert after["hook"]["workflowVersion"] == 2
    assert after["hook"]["id"] == before["hook"]["id"]
    assert after["hook"]["createdAt"] == before["hook"]["createdAt"]


def test_deactivating_and_archiving_stop_every_trigger(client: Client, user: Account) -> None:
    made = create(client, user, definition=with_own_paths(TRIGGERS))
    client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    archived = client.post(f"{API}/workflows/{made['id']}/archive", headers=user)
    assert archived.status_code == 200, archived.text
    listed = triggers(client, user, made["id"], archived.json()["position"])
    assert not any(item["isActive"] for item in listed.values())


def test_a_workflow_without_a_trigger_cannot_be_activated(client: Client, user: Account) -> None:
    only_set = {"nodes": [{"id": "set", "type": "set", "config": {"fields": {"a": 1}}}]}
    made = create(client, user, definition=only_set)
    refused = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "trigger" in refused.json()["detail"]
    assert triggers(client, user, made["id"], made["position"]) == {}


def test_triggers_of_workflows_you_cannot_see_are_404(client: Client, user: Account) -> None:
    made = create(client, sign_up(client), definition=TRIGGERS)
    for workflow_id in (made["id"], "not-an-id", "0190f0a0-0000-7000-8000-000000000000"):
        response = client.get(
            f"{API}/workflows/{workflow_id}/triggers",
            headers={**user, "A2N-Min-Position": str(made["position"])},
        )
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_trigger_rows_equal_a_rebuild_from_zero(client: Client, user: Account) -> None:
    made = create(client, user, definition=with_own_paths(TRIGGERS))
    client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    read(client, user, f"/workflows/{made['id']}/triggers", made["position"])
    url = str(client.app.state.services.database.url)
    use_key_ring(KeyRing.parse(client.app.state.services.settings.master_keys))
    result = Rebuilder(url, projector_named("workflows")).verify()
    assert result.identical, result.differences
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM workflow_trigger").fetchone() != (0,)


def test_triggers_follow_the_published_version_not_the_draft(client: Client, user: Account) -> None:
    definition = with_own_paths(TRIGGERS)
    made = create(client, user, definition=definition)
    activated = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert activated.json()["publishedVersion"] == 1
    draft = {"nodes": [definition["nodes"][0]], "connections": []}
    saved = client.put(f"{API}/workflows/{made['id']}/definition", json=draft, headers=user)
    assert saved.status_code == 200, saved.text
    listed = triggers(client, user, made["id"], saved.json()["position"])
    assert sorted(listed) == ["daily", "every", "hook", "paid"]  # version 1 still runs
    published = client.post(f"{API}/workflows/{made['id']}/versions/2/publish", headers=user)
    assert published.status_code == 200, published.text
    listed = triggers(client, user, made["id"], published.json()["position"])
    assert sorted(listed) == ["hook"]
    assert listed["hook"]["workflowVersion"] == 2
