"""Helpers for API tests."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

API = "/api/v1"
GRAPH: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "type": "webhook_trigger", "config": {"path": "orders"}},
        {"id": "set", "type": "set", "name": "Set", "config": {"fields": {"a": 1}}},
    ],
    "connections": [{"source": "hook", "target": "set"}],
}


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
