"""Public workflows and the template gallery: what a stranger may do with a PUBLIC workflow, who
may publish one, the gallery with its filters and pages, the category and tag menus, and the
row-level security policy that agrees with all of it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.helpers import (
    API,
    GRAPH,
    Account,
    create,
    event_count,
    problem,
    read,
    share,
    sign_up,
)
from tests.api.test_row_level_security import as_role, values
from tests.api.test_workflow_sharing import Route, fill

Client = TestClient[Any]

READS = [
    Route("GET", "/workflows/{id}", "VIEW"),
    Route("GET", "/workflows/{id}?version=1", "VIEW"),
    Route("GET", "/workflows/{id}/versions", "VIEW"),
    Route("GET", "/workflows/{id}/versions/1", "VIEW"),
    Route("GET", "/workflows/{id}/versions/1/diff?against=1", "VIEW"),
    Route("GET", "/workflows/{id}/triggers", "VIEW"),
    Route("GET", "/workflows/{id}/export", "VIEW"),
    Route("POST", "/workflows/{id}/duplicate", "VIEW", ok=201),
]
CHANGES = [
    Route("PATCH", "/workflows/{id}", "EDIT", {"name": "Mine now"}),
    Route("PATCH", "/workflows/{id}", "ADMIN", {"visibility": "PRIVATE"}),
    Route("PUT", "/workflows/{id}/definition", "EDIT", {"nodes": [], "connections": []}),
    Route("POST", "/workflows/{id}/activate", "EDIT"),
    Route("POST", "/workflows/{id}/deactivate", "EDIT"),
    Route("POST", "/workflows/{id}/versions/1/publish", "EDIT"),
    Route("POST", "/workflows/{id}/versions/1/revert", "EDIT"),
    Route("POST", "/workflows/{id}/archive", "ADMIN"),
    Route("GET", "/workflows/{id}/shares", "ADMIN"),
    Route("POST", "/workflows/{id}/shares", "ADMIN", {"userId": "{me}", "permission": "EDIT"}),
    Route("POST", "/workflows/{id}/transfer", "OWNER", {"userId": "{me}"}),
]


def send(client: Client, route: Route, who: Account, ids: dict[str, str], position: int) -> Any:
    return client.request(
        route.method,
        API + fill(route.path, ids),
        json=fill(route.body, ids),
        headers={**who, "A2N-Min-Position": str(position)},
    )


@pytest.fixture(scope="module")
def published(client: Client) -> tuple[Account, dict[str, Any]]:
    """An owner and their PUBLIC workflow (with a trigger, so it could be activated)."""
    owner = sign_up(client)
    return owner, create(client, owner, visibility="PUBLIC", definition=GRAPH)


@pytest.mark.parametrize("route", READS, ids=str)
def test_a_stranger_may_read_export_and_duplicate_a_public_workflow(
    client: Client, published: tuple[Account, dict[str, Any]], route: Route
) -> None:
    stranger = sign_up(client)
    ids = {"id": published[1]["id"], "me": stranger.user_id}
    response = send(client, route, stranger, ids, published[1]["position"])
    assert response.status_code == route.ok, response.text
    if route.path == "/workflows/{id}":
        assert response.json()["permission"] == "VIEW"


@pytest.mark.parametrize("route", CHANGES, ids=str)
def test_a_stranger_may_change_nothing_of_a_public_workflow(
    client: Client, published: tuple[Account, dict[str, Any]], route: Route
) -> None:
    stranger = sign_up(client)
    ids = {"id": published[1]["id"], "me": stranger.user_id}
    before = event_count(client)
    body = problem(send(client, route, stranger, ids, published[1]["position"]), 403)
    assert f"needs {route.needs} permission" in body["detail"]
    assert "you have VIEW" in body["detail"]
    assert event_count(client) == before


@pytest.mark.parametrize("route", READS + CHANGES, ids=str)
def test_a_private_workflow_is_404_to_a_stranger_on_every_route(
    client: Client, route: Route
) -> None:
    owner, stranger = sign_up(client), sign_up(client)
    made = create(client, owner, definition=GRAPH)
    before = event_count(client)
    response = send(
        client, route, stranger, {"id": made["id"], "me": owner.user_id}, made["position"]
    )
    problem(response, 404)
    assert event_count(client) == before


def test_a_public_workflows_event_history_stays_with_its_owner_and_sharees(
    client: Client, published: tuple[Account, dict[str, Any]]
) -> None:
    """Events say who did what from where: publishing the workflow does not publish them."""
    owner, workflow = published
    path = f"{API}/audit/aggregates/{workflow['id']}/events"
    problem(client.get(path, headers=sign_up(client)), 404)
    assert client.get(path, headers=owner).status_code == 200


def test_using_a_template_copies_it_into_a_private_workflow_of_the_user(
    client: Client, published: tuple[Account, dict[str, Any]]
) -> None:
    owner, workflow = published
    stranger = sign_up(client)
    copied = client.post(f"{API}/workflows/{workflow['id']}/duplicate", headers=stranger)
    assert copied.status_code == 201, copied.text
    copy = read(client, stranger, f"/workflows/{copied.json()['id']}", copied.json()["position"])
    assert (copy["userId"], copy["permission"], copy["duplicatedFrom"]) == (
        stranger.user_id,
        "OWNER",
        workflow["id"],
    )
    assert (copy["visibility"], copy["isTemplate"], copy["isActive"]) == ("PRIVATE", False, False)
    assert (
        copy["definition"] == read(client, owner, f"/workflows/{workflow['id']}", 0)["definition"]
    )
    exported = client.get(f"{API}/workflows/{workflow['id']}/export", headers=stranger).json()
    assert (exported["format"], exported["definition"]["nodes"][0]["id"]) == (
        "a2n.workflow",
        "hook",
    )


def test_the_workflow_list_never_mixes_in_other_peoples_public_workflows(client: Client) -> None:
    me, other = sign_up(client), sign_up(client)
    mine = create(client, me, visibility="PUBLIC")
    theirs = create(client, other, visibility="PUBLIC", isTemplate=True)
    shared = create(client, other, visibility="PUBLIC")
    position = share(client, other, shared["id"], me.user_id, "EXECUTE")["position"]

    def listed(**filters: Any) -> list[tuple[str, str]]:
        page = read(client, me, "/workflows", position, **filters)
        return [(w["id"], w["permission"]) for w in page["items"]]

    assert listed() == [(shared["id"], "EXECUTE"), (mine["id"], "OWNER")]
    assert listed(visibility="PUBLIC") == listed()
    assert listed(sharedWithMe="false") == [(mine["id"], "OWNER")]
    assert theirs["id"] not in {w for w, _ in listed(includeArchived="true")}
    # The share's level wins over the VIEW everyone has.
    assert read(client, me, f"/workflows/{shared['id']}", position)["permission"] == "EXECUTE"


def test_only_the_owner_or_an_admin_sharee_publishes_or_withdraws(client: Client) -> None:
    owner, editor, admin, stranger = (sign_up(client) for _ in range(4))
    wid = create(client, owner)["id"]
    share(client, owner, wid, editor.user_id, "EDIT")
    share(client, owner, wid, admin.user_id, "ADMIN")
    url = f"{API}/workflows/{wid}"

    before = event_count(client)
    for body in ({"visibility": "PUBLIC"}, {"isTemplate": True}, {"name": "x", "isTemplate": True}):
        refused = problem(client.patch(url, json=body, headers=editor), 403)
        assert "needs ADMIN permission" in refused["detail"]
    assert event_count(client) == before
    assert client.patch(url, json={"name": "Renamed"}, headers=editor).status_code == 200

    published = client.patch(url, json={"visibility": "PUBLIC", "isTemplate": True}, headers=admin)
    assert published.status_code == 200, published.text
    body = published.json()
    assert (body["visibility"], body["isTemplate"], body["permission"]) == ("PUBLIC", True, "ADMIN")
    seen = read(client, stranger, f"/workflows/{wid}", body["position"])
    assert (seen["visibility"], seen["isTemplate"], seen["permission"]) == ("PUBLIC", True, "VIEW")

    withdrawn = client.patch(url, json={"visibility": "PRIVATE"}, headers=owner)
    assert withdrawn.status_code == 200, withdrawn.text
    gone = client.get(
        url, headers={**stranger, "A2N-Min-Position": str(withdrawn.json()["position"])}
    )
    problem(gone, 404)
    assert read(client, owner, f"/workflows/{wid}", withdrawn.json()["position"])["isTemplate"]


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"visibility": "SECRET"}, 422, "visibility"),
        ({"visibility": None}, 422, "visibility"),
        ({"isTemplate": "yes"}, 422, "isTemplate"),
    ],
)
def test_bad_publishing_values_are_refused_and_change_nothing(
    client: Client, body: dict[str, Any], status: int, pointer: str
) -> None:
    owner = sign_up(client)
    made = create(client, owner)
    before = event_count(client)
    refused = problem(
        client.patch(f"{API}/workflows/{made['id']}", json=body, headers=owner), status
    )
    assert pointer in str(refused)
    assert event_count(client) == before
    shown = read(client, owner, f"/workflows/{made['id']}", made["position"])
    assert (shown["visibility"], shown["isTemplate"], shown["revision"]) == ("PRIVATE", False, 1)


def test_archiving_withdraws_a_public_workflow(client: Client) -> None:
    owner, stranger = sign_up(client), sign_up(client)
    wid = create(client, owner, visibility="PUBLIC", isTemplate=True, category="gone")["id"]
    archived = client.post(f"{API}/workflows/{wid}/archive", headers=owner)
    assert archived.status_code == 200, archived.text
    position = archived.json()["position"]
    problem(
        client.get(
            f"{API}/workflows/{wid}", headers={**stranger, "A2N-Min-Position": str(position)}
        ),
        404,
    )
    problem(client.post(f"{API}/workflows/{wid}/duplicate", headers=stranger), 404)
    assert read(client, stranger, "/workflows/templates", position, category="gone")["items"] == []
    assert read(client, owner, f"/workflows/{wid}", position)["archivedAt"] is not None


def test_the_gallery_lists_public_templates_of_everyone_newest_first(client: Client) -> None:
    alice, bob, me = sign_up(client), sign_up(client), sign_up(client)
    kind = f"gallery-{uuid.uuid4().hex[:8]}"  # a category of this test's own
    template = {"visibility": "PUBLIC", "isTemplate": True, "category": kind}
    a1 = create(client, alice, name="Sync orders", tags=["crm", "sales"], **template)
    b1 = create(
        client, bob, name="Invoice mailer", description="Sends ORDERS", tags=["mail"], **template
    )
    a2 = create(client, alice, name="Lead scoring", tags=["crm"], **template)
    mine = create(client, me, name="My template", **template)
    create(client, alice, name="Private template", isTemplate=True, category=kind)
    create(client, bob, name="Public, not a template", visibility="PUBLIC", category=kind)
    position = create(client, bob, name="Other kind", visibility="PUBLIC", isTemplate=True)[
        "position"
    ]

    def gallery(**filters: Any) -> list[str]:
        page = read(client, me, "/workflows/templates", position, category=kind, **filters)
        return [w["id"] for w in page["items"]]

    assert gallery() == [mine["id"], a2["id"], b1["id"], a1["id"]]
    assert gallery(tag="crm") == [a2["id"], a1["id"]]
    assert gallery(q="orders") == [b1["id"], a1["id"]]
    assert gallery(q="order", tag="crm") == [a1["id"]]
    assert gallery(tag="nothing") == []

    rows = read(client, me, "/workflows/templates", position, category=kind)["items"]
    assert [(r["userId"], r["permission"]) for r in rows] == [
        (me.user_id, "OWNER"),
        (alice.user_id, "VIEW"),
        (bob.user_id, "VIEW"),
        (alice.user_id, "VIEW"),
    ]
    assert "definition" not in rows[0]

    first = read(client, me, "/workflows/templates", position, category=kind, limit=3)
    assert [w["id"] for w in first["items"]] == gallery()[:3]
    rest = read(
        client, me, "/workflows/templates", position, category=kind, cursor=first["nextCursor"]
    )
    assert ([w["id"] for w in rest["items"]], rest["nextCursor"]) == ([a1["id"]], None)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("templates", {"limit": "0"}),
        ("templates", {"limit": "501"}),
        ("templates", {"cursor": "not-a-cursor"}),
        ("templates", {"category": "x" * 101}),
        ("templates", {"tag": "x" * 65}),
        ("tags", {"templates": "maybe"}),
        ("categories", {"cursor": "eyJpZCI6IngifQ"}),  # a cursor of another list: {"id": "x"}
    ],
)
def test_bad_gallery_and_menu_parameters_are_400(
    client: Client, user: Account, path: str, query: dict[str, str]
) -> None:
    body = problem(client.get(f"{API}/workflows/{path}", params=query, headers=user), 400)
    assert [error["parameter"] for error in body["errors"]] == list(query)


def test_category_and_tag_menus_count_your_workflows_or_the_gallery(client: Client) -> None:
    me, other = sign_up(client), sign_up(client)
    create(client, me, category="ops", tags=["a", "b"])
    create(client, me, category="ops", tags=["b"])
    create(client, me, category="sales")
    archived = create(client, me, category="old", tags=["old"])
    client.post(f"{API}/workflows/{archived['id']}/archive", headers=me)
    shared = create(client, other, category="shared", tags=["b", "s"])
    create(client, other, visibility="PUBLIC", isTemplate=True, category="public", tags=["p"])
    position = share(client, other, shared["id"], me.user_id, "VIEW")["position"]

    def menu(name: str, **query: Any) -> list[tuple[str, int]]:
        page = read(client, me, f"/workflows/{name}", position, **query)
        return [(row["name"], row["count"]) for row in page["items"]]

    assert menu("categories") == [("ops", 2), ("sales", 1), ("shared", 1)]
    assert menu("tags") == [("a", 1), ("b", 3), ("s", 1)]
    first = read(client, me, "/workflows/tags", position, limit=2)
    assert [row["name"] for row in first["items"]] == ["a", "b"]
    assert menu("tags", cursor=first["nextCursor"]) == [("s", 1)]
    assert ("public", 1) in menu("categories", templates="true")
    assert ("ops", 2) not in menu("categories", templates="true")
    assert ("p", 1) in menu("tags", templates="true")


def test_row_level_security_shows_public_rows_until_archived(
    client: Client, database_url: str
) -> None:
    """Raw SQL as the API's role agrees with the routes: a public workflow (and its versions and
    triggers) is visible to every user and to none once archived; a private one only to its
    owner."""
    owner, stranger = sign_up(client), sign_up(client)
    public = create(client, owner, visibility="PUBLIC", definition=GRAPH)["id"]
    private = create(client, owner, definition=GRAPH)["id"]
    withdrawn = create(client, owner, visibility="PUBLIC", definition=GRAPH)["id"]
    archived = client.post(f"{API}/workflows/{withdrawn}/archive", headers=owner)
    read(client, owner, f"/workflows/{withdrawn}", archived.json()["position"])
    ours = (public, private, withdrawn)

    for who in (stranger.user_id, None):
        with as_role(database_url, "a2n_app", who) as conn:
            for table, column in (
                ("workflow", "id"),
                ("workflow_version", "workflow_id"),
                ("workflow_trigger", "workflow_id"),
            ):
                seen = values(conn, f"SELECT {column} FROM {table}") & set(ours)
                assert seen == {public}, (who, table)
    with as_role(database_url, "a2n_app", owner.user_id) as conn:
        assert values(conn, "SELECT id FROM workflow") >= set(ours)
