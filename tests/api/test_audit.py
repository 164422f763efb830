"""The audit read side over HTTP: the audit_log table, the stream of every event log, any
aggregate's history and past state; auditors only (ADMIN, OWNER), secrets never shown."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from application.pagination import encode_cursor
from tests.api.helpers import API, Account, create, problem, promote, sign_up
from tests.api.test_credentials import SECRET, create_credential
from tests.integration.helpers import sealed

Client = TestClient[Any]


@pytest.fixture(scope="module")
def auditor(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


def audited(client: Client, auditor: Account, position: int, **params: Any) -> dict[str, Any]:
    """GET /audit/log once the audit_log projector reached `position` of the Workflows log."""
    response = client.get(
        f"{API}/audit/log",
        params=params,
        headers={**auditor, "A2N-Min-Position": f"workflows:{position}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def renamed(client: Client, user: Account, workflow_id: str, name: str) -> dict[str, Any]:
    response = client.patch(f"{API}/workflows/{workflow_id}", json={"name": name}, headers=user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get(client: Client, auditor: Account, path: str, **params: Any) -> Any:
    response = client.get(f"{API}{path}", params=params, headers=auditor)
    assert response.status_code == 200, response.text
    return response.json()


def heads(client: Client) -> str:
    """Every log's head now, as an `after` value."""
    found = client.app.state.services
    stores = {
        "identity": found.identity.app,
        "workflows": found.workflows.app,
        "executions": found.executions.app,
        "credentials": found.credentials.app,
    }
    return ",".join(f"{log}:{store.head_position()}" for log, store in stores.items())


# -- audit_log ------------------------------------------------------------------------------------


def test_the_audit_log_filters_and_pages_newest_first(
    client: Client, auditor: Account, user: Account
) -> None:
    made = create(client, user, name="Audited")
    last = renamed(client, user, made["id"], "Audited again")
    body = audited(client, auditor, last["position"], resourceId=made["id"])
    assert [row["action"] for row in body["items"]] == ["WorkflowDetailsChanged", "WorkflowCreated"]
    newest = body["items"][0]
    assert newest["userId"] == user.user_id
    assert newest["resource"] == "workflow"
    assert newest["resourceVersion"] == 2
    assert newest["newValues"]["changes"] == {"name": "Audited again"}
    assert newest["oldValues"]["name"] == "Audited"

    mine = audited(
        client, auditor, last["position"], actorId=user.user_id, action="WorkflowCreated"
    )
    assert {row["resourceId"] for row in mine["items"]} == {made["id"]}
    assert (
        audited(client, auditor, last["position"], resource="workflow", resourceId=made["id"])[
            "items"
        ]
        == body["items"]
    )

    first = audited(client, auditor, last["position"], resourceId=made["id"], limit=1)
    assert [row["id"] for row in first["items"]] == [body["items"][0]["id"]]
    cursor = first["nextCursor"]
    second = audited(
        client, auditor, last["position"], resourceId=made["id"], limit=1, cursor=cursor
    )
    assert [row["id"] for row in second["items"]] == [body["items"][1]["id"]]
    assert second["nextCursor"] is None

    at = datetime.fromisoformat(newest["timestamp"])
    since = audited(
        client, auditor, last["position"], resourceId=made["id"], **{"from": at.isoformat()}
    )
    assert [row["id"] for row in since["items"]] == [newest["id"]]
    before = audited(client, auditor, last["position"], resourceId=made["id"], to=at.isoformat())
    assert [row["action"] for row in before["items"]] == ["WorkflowCreated"]


# -- the stream -----------------------------------------------------------------------------------


def test_the_stream_tails_every_log_after_the_positions_given(
    client: Client, auditor: Account, user: Account
) -> None:
    start = heads(client)
    made = create(client, user, name="Tailed")
    renamed(client, user, made["id"], "Tailed again")
    credential = create_credential(client, user)

    page = get(client, auditor, "/audit/events", after=start, actorId=user.user_id)
    assert [(e["application"], e["type"]) for e in page["items"]] == [
        ("workflows", "WorkflowCreated"),
        ("workflows", "WorkflowDetailsChanged"),
        ("credentials", "CredentialCreated"),
    ]
    created = page["items"][0]
    assert created["aggregateId"] == made["id"]
    assert created["aggregateVersion"] == 1
    assert created["metadata"]["actor_id"] == user.user_id
    assert created["data"]["name"] == "Tailed"
    stored = page["items"][2]["data"]
    assert stored["data_ciphertext"] == stored["data_key_wrapped"] == "[hidden]"
    assert SECRET not in str(page)
    assert page["nextCursor"] is None

    # Polling on from where the page ended: nothing new yet, then only what came after.
    again = get(client, auditor, "/audit/events", after=page["after"], actorId=user.user_id)
    assert again["items"] == []
    renamed(client, user, made["id"], "Tailed a third time")
    later = get(client, auditor, "/audit/events", after=page["after"], actorId=user.user_id)
    assert [e["data"]["changes"] for e in later["items"]] == [{"name": "Tailed a third time"}]

    # Pages of one, through the cursor, give the same events in the same order.
    seen: list[Any] = []
    query: dict[str, Any] = {"after": start, "actorId": user.user_id, "limit": 1}
    while True:
        one = get(client, auditor, "/audit/events", **query)
        seen += one["items"]
        if one["nextCursor"] is None:
            break
        query = {"cursor": one["nextCursor"], "actorId": user.user_id, "limit": 1}
    assert [e["position"] for e in seen] == [e["position"] for e in page["items"] + later["items"]]

    # Filters: one log, one aggregate, one event type, a time.
    assert {
        e["application"]
        for e in get(
            client,
            auditor,
            "/audit/events",
            after=start,
            application="credentials",
            actorId=user.user_id,
        )["items"]
    } == {"credentials"}
    history = get(client, auditor, "/audit/events", aggregateId=made["id"])["items"]
    assert [e["aggregateVersion"] for e in history] == [1, 2, 3]
    typed = get(client, auditor, "/audit/events", after=start, type="CredentialCreated")
    assert [e["aggregateId"] for e in typed["items"]] == [credential["id"]]
    moment = history[1]["timestamp"]
    assert [
        e["aggregateVersion"]
        for e in get(client, auditor, "/audit/events", aggregateId=made["id"], **{"from": moment})[
            "items"
        ]
    ] == [2, 3]


# -- an aggregate's history and state -------------------------------------------------------------


def test_any_aggregates_state_at_a_version_or_a_time(
    client: Client, auditor: Account, user: Account
) -> None:
    made = create(client, user, name="Before")
    renamed(client, user, made["id"], "After")
    path = f"/audit/aggregates/{made['id']}"

    now = get(client, auditor, path)
    assert (now["type"], now["application"]) == ("Workflow", "workflows")
    assert (now["version"], now["latestVersion"], now["state"]["name"]) == (2, 2, "After")
    first = get(client, auditor, path, version=1)
    assert (first["version"], first["state"]["name"]) == (1, "Before")
    between = datetime.fromisoformat(first["timestamp"]) + timedelta(microseconds=1)
    assert get(client, auditor, path, asOf=between.isoformat())["state"]["name"] == "Before"

    problem(client.get(f"{API}{path}", params={"version": 3}, headers=auditor), 404)
    before = (datetime.fromisoformat(first["timestamp"]) - timedelta(seconds=1)).isoformat()
    problem(client.get(f"{API}{path}", params={"asOf": before}, headers=auditor), 404)


def test_states_and_histories_of_accounts_and_credentials_hide_their_secrets(
    client: Client, auditor: Account, user: Account
) -> None:
    account = get(client, auditor, f"/audit/aggregates/{user.user_id}")
    assert (account["type"], account["application"]) == ("User", "identity")
    assert account["state"]["password_hash"] == "[hidden]"
    assert account["state"]["email"].startswith("pd1:")  # personal data stays sealed
    assert user.email not in str(account)
    credential = create_credential(client, user)
    stored = get(client, auditor, f"/audit/aggregates/{credential['id']}")
    assert stored["state"]["data_ciphertext"] == stored["state"]["data_key_wrapped"] == "[hidden]"
    history = get(client, auditor, f"/audit/aggregates/{credential['id']}/events")
    assert history["items"][0]["type"] == "CredentialCreated"
    assert SECRET not in str(stored) + str(history)
    assert "argon2" not in str(account) + str(
        get(client, auditor, f"/audit/aggregates/{user.user_id}/events")
    )


@pytest.mark.parametrize(
    "path",
    [
        "/audit/aggregates/{id}",
        "/audit/aggregates/{id}/events",
    ],
)
def test_an_aggregate_no_log_has_is_404(client: Client, auditor: Account, path: str) -> None:
    unknown = "01900000-0000-7000-8000-000000000000"
    problem(client.get(API + path.replace("{id}", unknown), headers=auditor), 404)


# -- who may audit --------------------------------------------------------------------------------

AUDITOR_ROUTES = ["/audit/log", "/audit/events", "/audit/verify", "/audit/aggregates/{id}"]


@pytest.mark.parametrize("path", AUDITOR_ROUTES)
def test_users_may_not_audit_even_their_own_workflows(
    client: Client, user: Account, path: str
) -> None:
    made = create(client, user)
    response = client.get(API + path.replace("{id}", made["id"]), headers=user)
    assert problem(response, 403)["detail"]


@pytest.mark.parametrize("path", AUDITOR_ROUTES)
def test_an_api_key_without_the_admin_scope_may_not_audit(
    client: Client, auditor: Account, path: str
) -> None:
    made = client.post(
        f"{API}/me/api-keys",
        json={"name": "reader", "scopes": ["workflows:read"]},
        headers=auditor,
    )
    assert made.status_code == 201, made.text
    response = client.get(
        API + path.replace("{id}", auditor.user_id), headers={"X-API-Key": made.json()["key"]}
    )
    problem(response, 403)


# -- bad input ------------------------------------------------------------------------------------

BAD_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/audit/log", {"limit": "0"}, "limit"),
    ("/audit/log", {"limit": "100000"}, "limit"),
    ("/audit/log", {"cursor": "!!"}, "cursor"),
    ("/audit/log", {"cursor": encode_cursor({"at": "yesterday", "id": "x"})}, "cursor"),
    ("/audit/log", {"cursor": encode_cursor({"id": "x"})}, "cursor"),
    ("/audit/log", {"from": "yesterday"}, "from"),
    ("/audit/log", {"from": "2026-01-01T00:00:00"}, "from"),
    ("/audit/log", {"to": "2026-01-01T00:00:00Z", "from": "2026-02-01T00:00:00Z"}, "to"),
    ("/audit/log", {"actorId": "a\x00b"}, "actorId"),
    ("/audit/log", {"resourceId": "x" * 201}, "resourceId"),
    ("/audit/events", {"after": "-1"}, "after"),
    ("/audit/events", {"after": "12"}, "after"),
    ("/audit/events", {"after": "workflows:-1"}, "after"),
    ("/audit/events", {"after": "ledger:1"}, "after"),
    ("/audit/events", {"after": "workflows:1,workflows:2"}, "after"),
    ("/audit/events", {"after": "workflows:1" + "0" * 30}, "after"),
    ("/audit/events", {"after": "workflows:1", "cursor": encode_cursor({"after": ""})}, "after"),
    ("/audit/events", {"cursor": "not-a-cursor"}, "cursor"),
    ("/audit/events", {"cursor": encode_cursor({"after": "workflows:x"})}, "cursor"),
    ("/audit/events", {"limit": "-5"}, "limit"),
    ("/audit/events", {"limit": "501"}, "limit"),
    ("/audit/events", {"from": "2026-13-01T00:00:00Z"}, "from"),
    ("/audit/events", {"application": "ledger"}, "application"),
    ("/audit/events", {"type": "Workflow\x01Created"}, "type"),
    ("/audit/aggregates/{id}", {"version": "0"}, "version"),
    ("/audit/aggregates/{id}", {"version": "-1"}, "version"),
    ("/audit/aggregates/{id}", {"version": "99999999999999999999"}, "version"),
    ("/audit/aggregates/{id}", {"asOf": "soon"}, "asOf"),
    ("/audit/aggregates/{id}", {"asOf": "2026-01-01T00:00:00"}, "asOf"),
    ("/audit/aggregates/{id}", {"asOf": "2026-01-01T00:00:00Z", "version": "1"}, "asOf"),
    ("/audit/aggregates/{id}/events", {"cursor": encode_cursor({"after": "-1"})}, "cursor"),
]


@pytest.mark.parametrize(("path", "params", "parameter"), BAD_QUERIES)
def test_bad_query_parameters_are_400_naming_the_parameter_and_change_nothing(
    client: Client, auditor: Account, path: str, params: dict[str, str], parameter: str
) -> None:
    before = heads(client)
    response = client.get(
        API + path.replace("{id}", auditor.user_id), params=params, headers=auditor
    )
    body = problem(response, 400)
    assert [e["parameter"] for e in body["errors"]] == [parameter]
    assert heads(client) == before


def test_the_chain_of_the_shared_database_verifies(
    client: Client, auditor: Account, database_url: str
) -> None:
    """Sealed, the logs verify; what came after the seal is reported unsealed."""
    create(client, auditor)  # the workflows log holds an event to seal, whatever ran before
    sealed(database_url)
    report = get(client, auditor, "/audit/verify")
    assert report["ok"] is True
    workflows = next(log for log in report["logs"] if log["application"] == "workflows")
    assert workflows["sealedThrough"] > 0
    assert len(workflows["sealedLink"]) == 64
    assert workflows["broken"] is None
    create(client, auditor)
    after = next(
        log
        for log in get(client, auditor, "/audit/verify")["logs"]
        if log["application"] == "workflows"
    )
    assert after["unsealed"] >= 1
    assert after["sealedThrough"] == workflows["sealedThrough"]
