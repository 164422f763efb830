"""Erasure archives and renames the erased user's workflows, as the spec's anonymize_user_data
does, through workflow events: the history stays and a rebuild gives the same tables."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from domain.workflows.workflow import ERASED_OWNER_DESCRIPTION
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import API, Account, create, problem, promote, sign_up
from tests.integration.helpers import rows, wait_until

Client = TestClient[Any]


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


def db(client: Client) -> str:
    return str(client.app.state.services.database.url)


def workflows_of(client: Client, user_id: str) -> list[tuple[Any, ...]]:
    """(id, name, description, is_active, archived) of the user's workflows, once the
    workflows projector has applied every workflows event stored so far."""
    head = client.app.state.services.workflows.app.head_position()
    wait_until(
        lambda: (
            rows(
                db(client),
                "SELECT 1 FROM projection_tracking WHERE projector = 'workflows' "
                "AND application = 'workflows' AND position >= %s",
                (head,),
            )
            != []
        )
    )
    return rows(
        db(client),
        "SELECT id, name, description, is_active, archived_at IS NOT NULL FROM workflow "
        "WHERE user_id = %s ORDER BY id",
        (user_id,),
    )


def test_an_erased_users_workflows_are_archived_and_renamed(client: Client, admin: Account) -> None:
    victim, bystander = sign_up(client), sign_up(client)
    kept = create(client, bystander, name="Not theirs")["id"]
    first = create(client, victim, name="Invoices", description="Mine")["id"]
    second = create(client, victim, name="Payroll")["id"]
    archived = client.post(f"{API}/workflows/{second}/archive", headers=victim)
    assert archived.status_code == 200, archived.text

    erased = client.post(f"{API}/users/{victim.user_id}/erase", headers=admin)
    assert erased.status_code == 200, erased.text

    assert workflows_of(client, victim.user_id) == [
        (wid, f"Archived Workflow {wid}", ERASED_OWNER_DESCRIPTION, False, True)
        for wid in sorted([first, second])
    ]
    assert workflows_of(client, bystander.user_id) == [(kept, "Not theirs", None, False, False)]
    # Added events, none rewritten: the first name is still in the history.
    history = client.get(f"{API}/audit/aggregates/{first}/events", headers=admin).json()["items"]
    assert [e["type"] for e in history][-2:] == ["WorkflowDetailsChanged", "WorkflowArchived"]
    assert history[-2]["data"]["previous"]["name"] == "Invoices"


def test_an_interrupted_erasure_archives_the_workflows_when_erasing_again(
    client: Client, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = sign_up(client)
    wid = create(client, victim, name="Left over")["id"]
    services = client.app.state.services

    def fail(user_id: str) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(services.identity.outbox, "drop", fail)
    assert client.post(f"{API}/users/{victim.user_id}/erase", headers=admin).status_code == 500
    assert workflows_of(client, victim.user_id)[0][1] == "Left over"
    monkeypatch.undo()
    problem(client.post(f"{API}/users/{victim.user_id}/erase", headers=admin), 409)
    assert workflows_of(client, victim.user_id)[0][1:] == (
        f"Archived Workflow {wid}",
        ERASED_OWNER_DESCRIPTION,
        False,
        True,
    )


def test_a_refused_erasure_archives_nothing(client: Client, admin: Account) -> None:
    """Erasing yourself is refused: your workflows stay as they are."""
    wid = create(client, admin, name="Admin's own")["id"]
    problem(client.post(f"{API}/users/{admin.user_id}/erase", headers=admin), 409)
    assert workflows_of(client, admin.user_id) == [(wid, "Admin's own", None, False, False)]


def test_workflow_tables_equal_a_rebuild_after_erasure(client: Client, admin: Account) -> None:
    victim = sign_up(client)
    create(client, victim, name="Rebuilt")
    assert client.post(f"{API}/users/{victim.user_id}/erase", headers=admin).status_code == 200
    workflows_of(client, victim.user_id)
    result = Rebuilder(db(client), projector_named("workflows")).verify()
    assert result.identical, result.differences
