"""Helpers for API tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from litestar.testing import TestClient

from application.executions.app import ExecutionsApp
from application.executions.schedules import Change, ScheduleService
from tests.integration.helpers import Outcome, RecordedRun, record_run

API = "/api/v1"
METRICS_TOKEN = "test-metrics-token-0123456789abcdefghij"
"""The test apps' A2N_METRICS_TOKEN."""
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
"""Headers of a Prometheus scrape of /metrics."""
GRAPH: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "type": "webhook_trigger", "config": {"path": "orders"}},
        {"id": "set", "type": "set", "name": "Set", "config": {"fields": {"a": 1}}},
    ],
    "connections": [{"source": "hook", "target": "set"}],
}


def with_own_paths(definition: dict[str, Any]) -> dict[str, Any]:
    """`definition` with webhook paths no other workflow has (a suffix added to each): two
    active workflows may not answer the same path, and every test shares one database."""
    suffix = uuid.uuid4().hex[:12]
    nodes = [
        {**node, "config": {**node["config"], "path": f"{node['config']['path']}-{suffix}"}}
        if node["type"] == "webhook_trigger"
        else node
        for node in definition["nodes"]
    ]
    return {**definition, "nodes": nodes}


def webhook_graph() -> dict[str, Any]:
    """GRAPH on a webhook path of its own."""
    return with_own_paths(GRAPH)


RUNNABLE: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "manual_trigger", "name": "Start"},
        {"id": "set", "type": "set", "name": "Set", "config": {"fields": {"seen": True}}},
    ],
    "connections": [{"source": "start", "target": "set"}],
}
"""A workflow that runs: a manual trigger, then a Set node marking each item `seen`."""
SLOW: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "manual_trigger", "name": "Start"},
        {"id": "wait", "type": "wait", "name": "Wait", "config": {"seconds": 600}},
    ],
    "connections": [{"source": "start", "target": "wait"}],
}
"""A workflow whose runs stay RUNNING for ten minutes unless cancelled."""
SCHEDULED: dict[str, Any] = {
    "nodes": [
        {"id": "tick", "type": "schedule_trigger", "config": {"intervalSeconds": 600}},
        {
            "id": "daily",
            "type": "schedule_trigger",
            "config": {"cron": "30 6 * * *", "timezone": "America/New_York", "misfire": "skip"},
        },
        {"id": "mark", "type": "set", "config": {"fields": {"ran": True}}},
    ],
    "connections": [{"source": "tick", "target": "mark"}, {"source": "daily", "target": "mark"}],
}
"""A workflow with two schedule triggers: every ten minutes, and daily at 06:30 in New York."""
N8N_WORKFLOW: dict[str, Any] = {
    "name": "Tiny",
    "nodes": [
        {
            "parameters": {},
            "name": "Start",
            "type": "n8n-nodes-base.manualTrigger",
            "typeVersion": 1,
            "position": [0, 0],
        }
    ],
    "connections": {},
}
"""The smallest n8n workflow export: one manual trigger."""

PASSWORD = "correct horse battery staple"


class Account(dict[str, str]):
    """Request headers that authenticate as one account, plus who that account is."""

    def __init__(self, user_id: str, email: str, tokens: dict[str, Any]) -> None:
        super().__init__({"Authorization": f"Bearer {tokens['accessToken']}"})
        self.user_id = user_id
        self.email = email
        self.tokens = tokens


def register(client: TestClient[Any], email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(f"{API}/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient[Any], email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sign_up(client: TestClient[Any], email: str | None = None) -> Account:
    """Register a new account and sign in as it."""
    address = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    registered = register(client, address)
    return Account(registered["id"], address, login(client, address))


def promote(
    client: TestClient[Any], owner: dict[str, str], account: Account, role: str = "ADMIN"
) -> Account:
    """Give `account` a role (as the OWNER) and sign in again, so its token carries the role."""
    changed = client.put(f"{API}/users/{account.user_id}/role", json={"role": role}, headers=owner)
    assert changed.status_code == 200, changed.text
    return Account(account.user_id, account.email, login(client, account.email))


def mailed_token(client: TestClient[Any], owner: dict[str, str], user_id: str, purpose: str) -> str:
    """The token in the newest mail of `purpose` to `user_id`, read from the outbox (OWNER)."""
    mail = client.get(f"{API}/admin/mail-outbox", headers=owner).json()
    body: str = next(m["body"] for m in mail if m["userId"] == user_id and m["purpose"] == purpose)
    return body.strip().splitlines()[-1]


def owner_of(client: TestClient[Any]) -> Account:
    """Register the first account of a fresh database, which becomes its OWNER."""
    account = sign_up(client, f"owner-{uuid.uuid4().hex[:8]}@example.com")
    me = client.get(f"{API}/me", headers=account).json()
    assert me["role"] == "OWNER", me
    return account


def create(client: TestClient[Any], user: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/workflows", json={"name": "Orders", **body}, headers=user)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def read(
    client: TestClient[Any], user: dict[str, str], path: str, position: int, **params: Any
) -> Any:
    """GET after the projections reached `position` (read-your-writes)."""
    response = client.get(
        f"{API}{path}", params=params, headers={**user, "A2N-Min-Position": str(position)}
    )
    assert response.status_code == 200, response.text
    return response.json()


def event_count(client: TestClient[Any]) -> int:
    """Events stored in the workflows context so far."""
    store = client.app.state.services.workflows.app
    return int(store.head_position())


def share(
    client: TestClient[Any], by: dict[str, str], workflow_id: str, user_id: str, permission: str
) -> dict[str, Any]:
    """Share a workflow (as `by`); the answer carries the position to read after."""
    response = client.post(
        f"{API}/workflows/{workflow_id}/shares",
        json={"userId": user_id, "permission": permission},
        headers=by,
    )
    assert response.status_code in (200, 201), response.text
    shared: dict[str, Any] = response.json()
    return shared


def problem(response: Any, status: int) -> dict[str, Any]:
    """The RFC 9457 problem+json body of an error answer with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def published(client: TestClient[Any], account: dict[str, str], definition: dict[str, Any]) -> str:
    """A new workflow of `account` with `definition` published as version 1."""
    made = create(client, account, name="Runnable", definition=definition)
    response = client.post(f"{API}/workflows/{made['id']}/versions/1/publish", headers=account)
    assert response.status_code == 200, response.text
    workflow_id: str = made["id"]
    return workflow_id


def run(
    client: TestClient[Any],
    account: dict[str, str],
    workflow_id: str,
    items: list[Any] | None = None,
    **query: Any,
) -> dict[str, Any]:
    """Start a run of the workflow (query: wait, test, priority, timeout); the run as answered."""
    response = client.post(
        f"{API}/workflows/{workflow_id}/executions", json=items, headers=account, params=query
    )
    assert response.status_code in (200, 202), response.text
    body: dict[str, Any] = response.json()
    return body


def run_logs(client: TestClient[Any], account: dict[str, str], execution_id: str) -> Any:
    """The log lines of an execution, once the API has read all the executions' events."""
    head = client.app.state.services.executions.app.head_position()
    response = client.get(
        f"{API}/executions/{execution_id}/logs",
        headers={**account, "A2N-Min-Position": f"executions:{head}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def run_seen(
    client: TestClient[Any],
    runs: ExecutionsApp,
    by: Account,
    workflow_id: str,
    outcome: Outcome = "SUCCESS",
    **options: Any,
) -> RecordedRun:
    """A run of `workflow_id` started by `by`, recorded as the engine would, once the API
    reads it (as `by`, who started it and so may see it)."""
    run = record_run(runs, workflow_id, by.user_id, outcome, **options)
    read(client, by, f"/executions/{run.id}", run.position)
    return run


@dataclass(frozen=True)
class Sse:
    """One Server-Sent Events message: `event:`, `id:`, `data:` (JSON) or a `:` comment."""

    event: str | None = None
    id: str | None = None
    data: Any = None
    comment: str | None = None


def sse_messages(lines: Iterable[str]) -> Iterator[Sse]:
    """The messages of an event stream, as they arrive (lines without their line breaks)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
            continue
        if fields:
            data = fields.get("data")
            yield Sse(
                event=fields.get("event"),
                id=fields.get("id"),
                data=None if data is None else json.loads(data),
                comment=fields.get("comment"),
            )
        fields = {}


def live_events(
    client: TestClient[Any], account: dict[str, str], execution_id: str, **headers: str
) -> list[Sse]:
    """The whole event stream of a run (the test client answers once the stream ended)."""
    response = client.get(f"{API}/executions/{execution_id}/events", headers={**account, **headers})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return list(sse_messages(response.text.splitlines()))


def schedules_of(client: TestClient[Any]) -> ScheduleService:
    """The use case the scheduler calls, on the app's services (the test app runs no scheduler:
    schedules would fire in every test's database)."""
    found = client.app.state.services
    return ScheduleService(found.executions, found.workflows)


def executions_head(client: TestClient[Any]) -> int:
    """Events stored in the executions context so far (schedules' events are there too)."""
    return int(client.app.state.services.executions.app.head_position())


def scheduled_workflow(client: TestClient[Any], user: Account) -> str:
    """An active workflow of `user` with the SCHEDULED triggers, both armed and projected."""
    made = create(client, user, definition=SCHEDULED)
    activated = client.post(f"{API}/workflows/{made['id']}/activate", headers=user)
    assert activated.status_code == 200, activated.text
    service = schedules_of(client)
    assert service.sync(made["id"], "tick") is Change.ARMED
    assert service.sync(made["id"], "daily") is Change.ARMED
    read(client, user, "/schedules", executions_head(client))
    workflow_id: str = made["id"]
    return workflow_id
