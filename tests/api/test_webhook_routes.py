"""Webhook calls find their routes in memory (application/workflows/webhook_routes.py): kept
until the workflows projector announces a batch, and confirmed against the workflow's events, so
every change is seen by the next call: an activation once the read model shows it, a
deactivation or a path taken away at once, whoever made it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from application.caller import Caller
from application.eventstore import event_store_env
from application.workflows.app import WorkflowsApp
from application.workflows.commands import WorkflowService
from application.workflows.webhook_routes import WebhookRouteTable
from tests.api.helpers import API, Account, create, problem, read
from tests.api.test_webhooks import activated, hooked, unique_path, webhooks

Client = TestClient[Any]


def routes(client: Client) -> WebhookRouteTable:
    return webhooks(client).routes


def triggers_at(client: Client, user: Account, workflow_id: str, position: int) -> None:
    """Wait until the read model (and so the route table's announcements) reached `position`."""
    read(client, user, f"/workflows/{workflow_id}/triggers", position)


def test_calls_read_the_routes_once_until_the_workflows_projector_moves(
    client: Client, user: Account
) -> None:
    path = unique_path()
    activated(client, user, hooked(path))
    assert client.get(f"/webhook/{path}").status_code == 202
    loads = routes(client).loads
    for _ in range(3):
        assert client.get(f"/webhook/{path}").status_code == 202
        problem(client.get(f"/webhook/{unique_path()}"), 404)
    assert routes(client).loads == loads
    other = unique_path()
    activated(client, user, hooked(other))
    assert client.get(f"/webhook/{other}").status_code == 202  # read again, once
    assert client.get(f"/webhook/{path}").status_code == 202
    assert routes(client).loads == loads + 1


def test_activation_deactivation_and_a_published_path_are_seen_by_the_next_call(
    client: Client, user: Account
) -> None:
    first, second = unique_path(), unique_path()
    workflow_id = activated(client, user, hooked(first))
    assert client.get(f"/webhook/{first}").status_code == 202
    saved = client.put(
        f"{API}/workflows/{workflow_id}/definition", json=hooked(second), headers=user
    )
    assert saved.status_code == 200, saved.text
    assert client.get(f"/webhook/{first}").status_code == 202  # a draft changes nothing
    published = client.post(f"{API}/workflows/{workflow_id}/versions/2/publish", headers=user)
    assert published.status_code == 200, published.text
    problem(client.get(f"/webhook/{first}"), 404)  # at once, read model or not
    triggers_at(client, user, workflow_id, published.json()["position"])
    assert client.get(f"/webhook/{second}").status_code == 202
    off = client.post(f"{API}/workflows/{workflow_id}/deactivate", headers=user)
    assert off.status_code == 200, off.text
    problem(client.get(f"/webhook/{second}"), 404)
    on = client.post(f"{API}/workflows/{workflow_id}/activate", headers=user)
    assert on.status_code == 200, on.text
    triggers_at(client, user, workflow_id, on.json()["position"])
    assert client.get(f"/webhook/{second}").status_code == 202


def test_a_table_that_missed_every_announcement_never_lets_a_stopped_route_answer(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarantee does not rest on the announcements: a table kept forever still holds the
    routes, but the workflow's events decide."""
    frozen = WebhookRouteTable(routes(client).pool, fresh=lambda: "never changes")
    monkeypatch.setattr(webhooks(client), "routes", frozen)
    first, second = unique_path(), unique_path()
    stopped = activated(client, user, hooked(first))
    moved = activated(client, user, hooked(second))
    assert client.get(f"/webhook/{first}").status_code == 202  # both kept from here on
    assert client.get(f"/webhook/{second}").status_code == 202
    off = client.post(f"{API}/workflows/{stopped}/deactivate", headers=user)
    assert off.status_code == 200, off.text
    saved = client.put(
        f"{API}/workflows/{moved}/definition", json=hooked(unique_path()), headers=user
    )
    assert saved.status_code == 200, saved.text
    published = client.post(f"{API}/workflows/{moved}/versions/2/publish", headers=user)
    assert published.status_code == 200, published.text
    triggers_at(client, user, moved, published.json()["position"])
    problem(client.get(f"/webhook/{first}"), 404)
    problem(client.get(f"/webhook/{second}"), 404)
    assert frozen.loads == 1


def test_while_announcements_cannot_be_heard_each_call_reads_the_table(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    deaf = WebhookRouteTable(routes(client).pool, fresh=lambda: None)
    monkeypatch.setattr(webhooks(client), "routes", deaf)
    path = unique_path()
    activated(client, user, hooked(path))
    for _ in range(3):
        assert client.get(f"/webhook/{path}").status_code == 202
    assert deaf.loads == 3


@pytest.fixture
def elsewhere(database_url: str) -> Iterator[WorkflowService]:
    """Workflow commands of another process: an event store of their own, on the same database,
    reaching this app only through PostgreSQL."""
    app = WorkflowsApp(env=event_store_env(database_url))
    try:
        yield WorkflowService(app)
    finally:
        app.close()


def test_another_process_s_changes_are_seen(
    client: Client, user: Account, elsewhere: WorkflowService
) -> None:
    path = unique_path()
    workflow_id = create(client, user, definition=hooked(path))["id"]
    problem(client.get(f"/webhook/{path}"), 404)
    owner = Caller(user.user_id)
    on = elsewhere.activate(owner, workflow_id)
    triggers_at(client, user, workflow_id, on.position)
    assert client.get(f"/webhook/{path}").status_code == 202
    elsewhere.deactivate(owner, workflow_id)
    problem(client.get(f"/webhook/{path}"), 404)  # at once: the events say so
    again = elsewhere.activate(owner, workflow_id)
    triggers_at(client, user, workflow_id, again.position)
    assert client.get(f"/webhook/{path}").status_code == 202
