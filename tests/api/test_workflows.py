"""Workflow routes: commands record events, queries read the projections, history replays."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.api.helpers import API, GRAPH, Account, create, read, sign_up, webhook_graph

Client = TestClient[Any]


def test_create_returns_the_new_workflow_its_etag_and_position(
    client: Client, user: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/workflows",
        json={"name": "Orders", "definition": GRAPH, "tags": ["sales"], "category": "ops"},
        headers=user,
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["x-request-id"]
    assert body["version"] == 1
    assert body["revision"] == 1
    assert body["isActive"] is False
    assert body["userId"] == user.user_id
    assert body["definition"]["connections"] == [
        {"source": "hook", "target": "set", "sourceHandle": "output", "targetHandle": "input"}
    ]
    shown = read(client, user, f"/workflows/{body['id']}", body["position"])
    assert shown["name"] == "Orders"
    assert shown["definition"] == body["definition"]
    assert shown["executionCount"] == 0


def test_patch_changes_details_and_versions_variables_and_settings(
    client: Client, user: dict[str, str]
) -> None:
    created = create(client, user, definition=GRAPH)
    wid = created["id"]
    response = client.patch(
        f"{API}/workflows/{wid}",
        json={"name": "Orders v2", "description": None, "variables": {"region": "eu"}},
        headers={**user, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["version"], body["variables"]) == ("Orders v2", 2, {"region": "eu"})
    versions = [
        row["version"] for row in [read(client, user, f"/workflows/{wid}", body["position"])]
    ]
    assert versions == [2]
    assert read(client, user, f"/workflows/{wid}", body["position"], version=1)["variables"] == {}


def test_replace_definition_creates_a_version_and_history_replays_it(
    client: Client, user: dict[str, str]
) -> None:
    created = create(client, user, definition=GRAPH)
    wid = created["id"]
    smaller = {"nodes": [GRAPH["nodes"][0]], "connections": [], "changeMessage": "drop set"}
    response = client.put(f"{API}/workflows/{wid}/definition", json=smaller, headers=user)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    v1 = read(client, user, f"/workflows/{wid}", body["position"], version=1)
    v2 = read(client, user, f"/workflows/{wid}", body["position"], version=2)
    assert v1["definition"] == created["definition"]
    assert v2["definition"]["nodes"] == [{**GRAPH["nodes"][0], "credentials": []}]
    as_of = read(client, user, f"/workflows/{wid}", body["position"], asOf=created["createdAt"])
    assert as_of["version"] == 1
    missing = client.get(f"{API}/workflows/{wid}", params={"version": 3}, headers=user)
    assert missing.status_code == 404


def test_saving_the_same_definition_again_records_nothing(
    client: Client, user: dict[str, str]
) -> None:
    created = create(client, user, definition=GRAPH)
    response = client.put(f"{API}/workflows/{created['id']}/definition", json=GRAPH, headers=user)
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["revision"]) == (1, 1)


def test_activate_deactivate_archive(client: Client, user: dict[str, str]) -> None:
    wid = create(client, user, definition=webhook_graph())["id"]
    activated = client.post(f"{API}/workflows/{wid}/activate", headers=user).json()
    assert activated["isActive"] is True
    shown = read(client, user, f"/workflows/{wid}", activated["position"])
    assert shown["isActive"] is True
    deactivated = client.post(f"{API}/workflows/{wid}/deactivate", headers=user).json()
    assert deactivated["isActive"] is False
    client.post(f"{API}/workflows/{wid}/activate", headers=user)
    archived = client.post(f"{API}/workflows/{wid}/archive", headers=user).json()
    assert archived["archivedAt"] is not None
    assert archived["isActive"] is False
    refused = client.patch(f"{API}/workflows/{wid}", json={"name": "x"}, headers=user)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "the workflow is archived and can no longer be changed"


def test_an_empty_workflow_cannot_be_activated(client: Client, user: dict[str, str]) -> None:
    wid = create(client, user)["id"]
    response = client.post(f"{API}/workflows/{wid}/activate", headers=user)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


def test_duplicate_copies_the_definition_into_a_new_workflow(
    client: Client, user: dict[str, str]
) -> None:
    source = create(client, user, definition=GRAPH, tags=["a"])
    named = client.post(
        f"{API}/workflows/{source['id']}/duplicate", json={"name": "Copy"}, headers=user
    )
    unnamed = client.post(f"{API}/workflows/{source['id']}/duplicate", headers=user)
    assert (named.status_code, unnamed.status_code) == (201, 201)
    assert named.json()["name"] == "Copy"
    assert unnamed.json()["name"] == "Orders (copy)"
    copy = read(client, user, f"/workflows/{named.json()['id']}", named.json()["position"])
    assert copy["definition"] == source["definition"]
    assert copy["duplicatedFrom"] == source["id"]
    assert copy["tags"] == ["a"]


def test_list_filters_and_paginates_newest_first(client: Client, user: dict[str, str]) -> None:
    made = [
        create(
            client,
            user,
            definition=webhook_graph(),
            tags=[f"t{i % 2}"],
            category="ops" if i < 3 else "sales",
        )
        for i in range(5)
    ]
    last = client.post(f"{API}/workflows/{made[0]['id']}/activate", headers=user).json()["position"]
    ids = [m["id"] for m in made]

    page1 = read(client, user, "/workflows", last, limit=2)
    page2 = read(client, user, "/workflows", last, limit=2, cursor=page1["nextCursor"])
    page3 = read(client, user, "/workflows", last, limit=2, cursor=page2["nextCursor"])
    listed = [w["id"] for page in (page1, page2, page3) for w in page["items"]]
    assert listed == ids[::-1]
    assert page3["nextCursor"] is None
    assert "definition" not in page1["items"][0]

    def ids_for(**filters: Any) -> list[str]:
        return [w["id"] for w in read(client, user, "/workflows", last, **filters)["items"]]

    assert ids_for(isActive="true") == [ids[0]]
    assert ids_for(category="sales") == [ids[4], ids[3]]
    assert ids_for(tag="t1") == [ids[3], ids[1]]
    assert ids_for(q="orders", visibility="PRIVATE") == ids[::-1]
    assert ids_for(q="nothing like it") == []


def test_archived_workflows_are_listed_only_on_request(
    client: Client, user: dict[str, str]
) -> None:
    kept = create(client, user)["id"]
    gone = create(client, user)["id"]
    position = client.post(f"{API}/workflows/{gone}/archive", headers=user).json()["position"]
    assert [w["id"] for w in read(client, user, "/workflows", position)["items"]] == [kept]
    every = read(client, user, "/workflows", position, includeArchived="true")
    assert [w["id"] for w in every["items"]] == [gone, kept]


def test_users_see_only_their_own_workflows(client: Client, user: Account) -> None:
    mine = create(client, user)
    stranger = sign_up(client)
    assert read(client, stranger, "/workflows", mine["position"])["items"] == []
    for method, path in [
        ("GET", f"/workflows/{mine['id']}"),
        ("GET", f"/workflows/{mine['id']}?version=1"),
        ("PATCH", f"/workflows/{mine['id']}"),
        ("POST", f"/workflows/{mine['id']}/archive"),
        ("POST", f"/workflows/{mine['id']}/duplicate"),
        ("GET", f"/audit/aggregates/{mine['id']}/events"),
    ]:
        response = client.request(
            method, f"{API}{path}", headers=stranger, json={} if method == "PATCH" else None
        )
        assert response.status_code == 404, (method, path, response.text)


def test_two_editors_with_the_same_if_match_one_wins_one_gets_412(
    client: Client, user: dict[str, str]
) -> None:
    wid = create(client, user)["id"]
    first = client.patch(
        f"{API}/workflows/{wid}", json={"name": "A"}, headers={**user, "If-Match": '"1"'}
    )
    second = client.patch(
        f"{API}/workflows/{wid}", json={"name": "B"}, headers={**user, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    assert second.status_code == 412
    assert second.json()["currentRevision"] == 2
    assert second.headers["etag"] == '"2"'
    assert read(client, user, f"/workflows/{wid}", first.json()["position"])["name"] == "A"


def test_audit_history_lists_every_event_with_metadata(
    client: Client, user: dict[str, str]
) -> None:
    created = create(client, user, definition=webhook_graph())
    wid = created["id"]
    client.patch(
        f"{API}/workflows/{wid}",
        json={"name": "Renamed"},
        headers={**user, "X-Request-ID": "req-42"},
    )
    client.post(f"{API}/workflows/{wid}/activate", headers=user)
    first = client.get(
        f"{API}/audit/aggregates/{wid}/events", params={"limit": 2}, headers=user
    ).json()
    rest = client.get(
        f"{API}/audit/aggregates/{wid}/events", params={"cursor": first["nextCursor"]}, headers=user
    ).json()
    events = first["items"] + rest["items"]
    assert [e["type"] for e in events] == [
        "WorkflowCreated",
        "WorkflowDetailsChanged",
        "WorkflowVersionPublished",  # activation publishes the latest version first
        "WorkflowActivated",
    ]
    assert [e["aggregateVersion"] for e in events] == [1, 2, 3, 4]
    renamed = events[1]
    assert renamed["data"] == {"changes": {"name": "Renamed"}, "previous": {"name": "Orders"}}
    assert renamed["metadata"]["correlation_id"] == "req-42"
    assert renamed["metadata"]["actor_id"] == user.user_id
    assert rest["nextCursor"] is None
