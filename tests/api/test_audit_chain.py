"""Tamper evidence over HTTP: GET /audit/verify on a database of its own, whose stored events a
test then edits, deletes or slips in with SQL, as someone with database access could."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, Account, create, owner_of
from tests.integration.helpers import rows, sealed

Client = TestClient[Any]


@pytest.fixture
def isolated(fresh_database_url: str, api_settings: Settings) -> Iterator[tuple[Client, Account]]:
    """An app on a database of this test alone (tampering would break every other test's
    verdict), and its OWNER."""
    settings = replace(api_settings, database_url=fresh_database_url)
    app = create_app(settings, run_projectors=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, owner_of(client)


def verdict(client: Client, owner: Account) -> dict[str, Any]:
    response = client.get(f"{API}/audit/verify", headers=owner)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def workflows_log(report: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(log for log in report["logs"] if log["application"] == "workflows")
    return found


def events_of(url: str, workflow_id: str) -> list[tuple[int, int]]:
    """(position, version) of each stored event of the workflow."""
    return [
        (int(position), int(version))
        for position, version in rows(
            url,
            "SELECT notification_id, originator_version FROM workflows_events "
            "WHERE originator_id = %s ORDER BY originator_version",
            (workflow_id,),
        )
    ]


@pytest.fixture
def sealed_workflows(isolated: tuple[Client, Account], fresh_database_url: str) -> tuple[str, str]:
    """Two workflows with a few events each, every event sealed; the verdict is ok."""
    client, owner = isolated
    first = create(client, owner, name="First")["id"]
    second = create(client, owner, name="Second")["id"]
    for workflow_id, name in ((first, "First, renamed"), (second, "Second, renamed")):
        response = client.patch(
            f"{API}/workflows/{workflow_id}", json={"name": name}, headers=owner
        )
        assert response.status_code == 200, response.text
    create(client, owner, name="Third")
    sealed(fresh_database_url)
    report = verdict(client, owner)
    assert report["ok"] is True, report
    assert workflows_log(report)["checked"] == 5
    return first, second


def test_an_event_edited_in_place_is_named(
    isolated: tuple[Client, Account], fresh_database_url: str, sealed_workflows: tuple[str, str]
) -> None:
    client, owner = isolated
    _, second = sealed_workflows
    position, version = events_of(fresh_database_url, second)[0]
    rows(
        fresh_database_url,
        "UPDATE workflows_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
        "'\"Second\"', '\"Sec0nd\"'), 'UTF8') WHERE notification_id = %s RETURNING 1",
        (position,),
    )
    report = verdict(client, owner)
    assert report["ok"] is False
    log = workflows_log(report)
    assert log["broken"] == {
        "kind": "altered",
        "position": position,
        "aggregateId": second,
        "aggregateVersion": version,
        "detail": f"workflows event {position} (aggregate {second} v{version}) was changed "
        "after it was sealed",
    }
    assert all(other["ok"] for other in report["logs"] if other is not log)


def test_a_deleted_event_is_named_from_its_seal(
    isolated: tuple[Client, Account], fresh_database_url: str, sealed_workflows: tuple[str, str]
) -> None:
    client, owner = isolated
    first, _ = sealed_workflows
    position, version = events_of(fresh_database_url, first)[-1]
    rows(
        fresh_database_url,
        "DELETE FROM workflows_events WHERE notification_id = %s RETURNING 1",
        (position,),
    )
    log = workflows_log(verdict(client, owner))
    assert log["broken"]["kind"] == "missing"
    assert (log["broken"]["position"], log["broken"]["aggregateId"]) == (position, first)
    assert log["broken"]["aggregateVersion"] == version
    assert "was deleted after it was sealed" in log["broken"]["detail"]


def test_an_event_the_seal_does_not_know_inside_the_sealed_range_is_named(
    isolated: tuple[Client, Account], fresh_database_url: str, sealed_workflows: tuple[str, str]
) -> None:
    client, owner = isolated
    first, _ = sealed_workflows
    position, _ = events_of(fresh_database_url, first)[0]
    rows(
        fresh_database_url,
        "DELETE FROM event_chain_seal WHERE application = 'workflows' AND position = %s "
        "RETURNING 1",
        (position,),
    )
    log = workflows_log(verdict(client, owner))
    assert log["broken"]["kind"] == "inserted"
    assert (log["broken"]["position"], log["broken"]["aggregateId"]) == (position, first)


def test_events_after_the_seal_are_unsealed_until_the_next_seal(
    isolated: tuple[Client, Account], fresh_database_url: str, sealed_workflows: tuple[str, str]
) -> None:
    client, owner = isolated
    create(client, owner, name="Later")
    log = workflows_log(verdict(client, owner))
    assert (log["ok"], log["unsealed"], log["checked"]) == (True, 1, 6)
    head = log["sealedLink"]
    sealed(fresh_database_url)
    log = workflows_log(verdict(client, owner))
    assert (log["ok"], log["unsealed"], log["sealedThrough"]) == (True, 0, 6)
    assert log["sealedLink"] != head
