"""Workflow comments over HTTP: threads, node references, editing, resolving and deleting, every
permission level, bad input, erasure of an author, and rebuilding the workflow_comment table."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from application.crypto import KeyRing
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import (
    API,
    GRAPH,
    Account,
    create,
    event_count,
    problem,
    promote,
    read,
    share,
    sign_up,
)
from tests.integration.helpers import rows, table_contents, wait_until

Client = TestClient[Any]
ORDER = ["VIEW", "EXECUTE", "EDIT", "ADMIN", "OWNER"]


def comments_url(workflow_id: str, comment_id: str | None = None) -> str:
    tail = f"/{comment_id}" if comment_id else ""
    return f"{API}/workflows/{workflow_id}/comments{tail}"


def comment(client: Client, by: Account, workflow_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(comments_url(workflow_id), json={"content": "Hello", **body}, headers=by)
    assert response.status_code == 201, response.text
    posted: dict[str, Any] = response.json()
    return posted


def listed(
    client: Client, by: Account, workflow_id: str, position: int, **params: Any
) -> list[dict[str, Any]]:
    page = read(client, by, f"/workflows/{workflow_id}/comments", position, **params)
    assert page["nextCursor"] is None
    items: list[dict[str, Any]] = page["items"]
    return items


def test_threads_with_node_references_are_listed_oldest_first(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, bob.user_id, "VIEW")
    about_set = comment(client, user, wid, content="  Why 1?  ", nodeId="set")
    assert (about_set["content"], about_set["nodeId"], about_set["userId"]) == (
        "Why 1?",
        "set",
        user.user_id,
    )
    general = comment(client, bob, wid, content="Nice")
    reply = comment(client, bob, wid, content="Because", parentId=about_set["id"])
    assert (reply["parentId"], reply["nodeId"]) == (about_set["id"], "set")

    items = listed(client, user, wid, reply["position"])
    assert [(c["id"], c["parentId"], c["content"]) for c in items] == [
        (about_set["id"], None, "Why 1?"),
        (general["id"], None, "Nice"),
        (reply["id"], about_set["id"], "Because"),
    ]
    assert items[0]["createdAt"] <= items[1]["createdAt"] <= items[2]["createdAt"]
    by_node = listed(client, bob, wid, reply["position"], nodeId="set")
    assert [c["id"] for c in by_node] == [about_set["id"], reply["id"]]

    first = read(client, user, f"/workflows/{wid}/comments", reply["position"], limit=2)
    assert [c["id"] for c in first["items"]] == [about_set["id"], general["id"]]
    rest = read(client, user, f"/workflows/{wid}/comments", 0, limit=2, cursor=first["nextCursor"])
    assert ([c["id"] for c in rest["items"]], rest["nextCursor"]) == ([reply["id"]], None)


def test_the_author_edits_and_others_may_not(client: Client, user: Account) -> None:
    bob = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, bob.user_id, "ADMIN")
    posted = comment(client, bob, wid, content="Frist")
    edited = client.patch(comments_url(wid, posted["id"]), json={"content": "First"}, headers=bob)
    assert (edited.status_code, edited.json()["content"]) == (200, "First"), edited.text
    assert edited.headers["etag"] == '"2"'
    before = event_count(client)
    refused = client.patch(comments_url(wid, posted["id"]), json={"content": "Mine"}, headers=user)
    assert "only its author" in problem(refused, 403)["detail"]
    assert event_count(client) == before

    [shown] = listed(client, user, wid, edited.json()["position"])
    assert (shown["content"], shown["revision"]) == ("First", 2)
    assert shown["editedAt"] is not None

    stale = client.patch(
        comments_url(wid, posted["id"]),
        json={"content": "Third"},
        headers={**bob, "If-Match": '"1"'},
    )
    assert problem(stale, 412)["currentRevision"] == 2


def test_resolving_a_thread_resolves_its_replies_and_a_reply_alone_is_409(
    client: Client, user: Account
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    thread = comment(client, user, wid)
    reply = comment(client, user, wid, parentId=thread["id"])
    other = comment(client, user, wid, content="Still open")
    alone = client.patch(comments_url(wid, reply["id"]), json={"isResolved": True}, headers=user)
    assert f"resolve comment {thread['id']}" in problem(alone, 409)["detail"]

    done = client.patch(comments_url(wid, thread["id"]), json={"isResolved": True}, headers=user)
    assert (done.status_code, done.json()["isResolved"]) == (200, True), done.text
    position = done.json()["position"]
    resolved = listed(client, user, wid, position, resolved="true")
    assert [c["id"] for c in resolved] == [thread["id"], reply["id"]]
    assert {c["resolvedBy"] for c in resolved} == {user.user_id}
    assert [c["id"] for c in listed(client, user, wid, position, resolved="false")] == [other["id"]]
    late = comment(client, user, wid, parentId=thread["id"])
    assert late["id"] in {
        c["id"] for c in listed(client, user, wid, late["position"], resolved="true")
    }

    again = client.patch(comments_url(wid, thread["id"]), json={"isResolved": True}, headers=user)
    assert again.json()["revision"] == done.json()["revision"]
    reopened = client.patch(
        comments_url(wid, thread["id"]), json={"isResolved": False}, headers=user
    )
    open_now = listed(client, user, wid, reopened.json()["position"], resolved="false")
    assert len(open_now) == 4
    assert {c["resolvedAt"] for c in open_now} == {None}


def test_deleting_keeps_a_tombstone_while_replies_remain(client: Client, user: Account) -> None:
    bob = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, bob.user_id, "VIEW")
    thread = comment(client, user, wid, content="Secret plan")
    reply = comment(client, bob, wid, content="Agreed", parentId=thread["id"])
    lonely = comment(client, bob, wid, content="Typo")

    gone = client.delete(comments_url(wid, lonely["id"]), headers=bob)
    assert gone.status_code == 200, gone.text
    dropped = client.delete(comments_url(wid, thread["id"]), headers=user)
    items = listed(client, user, wid, dropped.json()["position"])
    assert [(c["id"], c["isDeleted"], c["content"]) for c in items] == [
        (thread["id"], True, None),
        (reply["id"], False, "Agreed"),
    ]
    for body in ({"content": "x"}, {"isResolved": True}):
        problem(client.patch(comments_url(wid, thread["id"]), json=body, headers=user), 404)
    problem(client.delete(comments_url(wid, thread["id"]), headers=user), 404)
    refused = client.post(
        comments_url(wid), json={"content": "Late", "parentId": thread["id"]}, headers=bob
    )
    assert problem(refused, 422)["errors"][0]["pointer"] == "/parentId"

    last = client.delete(comments_url(wid, reply["id"]), headers=bob)
    assert listed(client, user, wid, last.json()["position"]) == []


@pytest.fixture(scope="module")
def people(client: Client) -> tuple[Account, Account, Account]:
    """The owner of every workflow below, the caller whose level varies, and an author."""
    return sign_up(client), sign_up(client), sign_up(client)


ACTIONS = {
    # action: (method, comment needed?, body, level needed, ok status)
    "list": ("GET", False, None, "VIEW", 200),
    "post": ("POST", False, {"content": "Mine"}, "VIEW", 201),
    "edit another's": ("PATCH", True, {"content": "Mine"}, None, 200),
    "resolve another's": ("PATCH", True, {"isResolved": True}, "EDIT", 200),
    "delete another's": ("DELETE", True, None, "ADMIN", 200),
}


@pytest.mark.parametrize("level", [None, *ORDER])
@pytest.mark.parametrize("action", ACTIONS)
def test_each_level_may_do_what_it_includes_and_nothing_more(
    client: Client, people: tuple[Account, Account, Account], action: str, level: str | None
) -> None:
    """No access: 404. Too little: 403 and nothing stored. Nobody edits another's text."""
    owner, me, author = people
    method, on_comment, body, needs, ok = ACTIONS[action]
    wid = create(client, owner, definition=GRAPH)["id"]
    share(client, owner, wid, author.user_id, "VIEW")
    target = comment(client, author, wid)
    position = target["position"]
    caller = owner if level == "OWNER" else me
    if level not in (None, "OWNER"):
        position = share(client, owner, wid, me.user_id, level)["position"]
    url = comments_url(wid, target["id"] if on_comment else None)
    before = event_count(client)
    response = client.request(
        method, url, json=body, headers={**caller, "A2N-Min-Position": str(position)}
    )
    if level is None:
        problem(response, 404)
    elif needs is None or ORDER.index(level) < ORDER.index(needs):
        problem(response, 403)
        assert event_count(client) == before
    else:
        assert response.status_code == ok, response.text


def test_an_admin_of_the_installation_has_no_say_in_others_comments(
    client: Client, owner: Account, user: Account
) -> None:
    admin = promote(client, owner, sign_up(client))
    wid = create(client, user, definition=GRAPH)["id"]
    posted = comment(client, user, wid)
    problem(client.get(comments_url(wid), headers=admin), 404)
    problem(client.delete(comments_url(wid, posted["id"]), headers=admin), 404)


def test_readers_of_a_public_workflow_do_not_join_its_conversation(
    client: Client, user: Account
) -> None:
    made = create(client, user, definition=GRAPH, visibility="PUBLIC")
    posted = comment(client, user, made["id"])
    stranger = sign_up(client)
    read(client, stranger, f"/workflows/{made['id']}", made["position"])  # may read the workflow
    before = event_count(client)
    problem(client.get(comments_url(made["id"]), headers=stranger), 404)
    problem(client.post(comments_url(made["id"]), json={"content": "Hi"}, headers=stranger), 404)
    problem(
        client.patch(
            comments_url(made["id"], posted["id"]), json={"isResolved": True}, headers=stranger
        ),
        404,
    )
    assert event_count(client) == before


def test_a_comment_is_reached_only_through_its_own_workflow(client: Client, user: Account) -> None:
    first = create(client, user, definition=GRAPH)["id"]
    second = create(client, user, definition=GRAPH)["id"]
    posted = comment(client, user, first)
    before = event_count(client)
    problem(client.delete(comments_url(second, posted["id"]), headers=user), 404)
    problem(
        client.patch(comments_url(second, posted["id"]), json={"content": "x"}, headers=user), 404
    )
    problem(client.delete(comments_url(first, "not-an-id"), headers=user), 404)
    problem(client.delete(comments_url(first, second), headers=user), 404)
    assert event_count(client) == before


@pytest.mark.parametrize(
    ("body", "status", "pointers"),
    [
        ({"content": "   "}, 422, ["/content"]),
        ({"content": "x" * 10_001}, 422, ["/content"]),
        ({"content": "a\u0000b"}, 422, ["/content"]),
        ({"content": "Hi", "nodeId": "nope"}, 422, ["/nodeId"]),
        ({"content": "", "nodeId": "nope"}, 422, ["/content", "/nodeId"]),
        ({"content": "Hi", "parentId": "0190a4c4-0000-7000-8000-000000000000"}, 422, ["/parentId"]),
        ({"content": "Hi", "parentId": "nope"}, 422, ["/parentId"]),
        ({"content": 5}, 422, ["/content"]),
        ({"content": "Hi", "colour": "red"}, 422, ["/colour"]),
        ({}, 422, ["/content"]),
        (None, 422, [""]),
    ],
)
def test_bad_posts_are_problems_that_change_nothing(
    client: Client, user: Account, body: Any, status: int, pointers: list[str]
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    before = event_count(client)
    response = client.post(comments_url(wid), json=body, headers=user)
    assert [e["pointer"] for e in problem(response, status)["errors"]] == pointers
    assert event_count(client) == before


def test_replies_are_one_level_deep_and_about_their_thread_node(
    client: Client, user: Account
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    thread = comment(client, user, wid, nodeId="hook")
    reply = comment(client, user, wid, parentId=thread["id"])
    other = create(client, user, definition=GRAPH)["id"]
    before = event_count(client)
    cases = [
        (wid, {"content": "Deeper", "parentId": reply["id"]}, f"({thread['id']})"),
        (wid, {"content": "Hi", "parentId": thread["id"], "nodeId": "set"}, "leave nodeId out"),
        (other, {"content": "Across", "parentId": thread["id"]}, "no comment of this workflow"),
    ]
    for target, body, message in cases:
        errors = problem(client.post(comments_url(target), json=body, headers=user), 422)["errors"]
        assert message in errors[0]["message"]
    assert event_count(client) == before


def test_a_node_reference_is_checked_against_the_current_definition(
    client: Client, user: Account
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    smaller = {"nodes": [GRAPH["nodes"][0]], "connections": []}
    changed = client.put(f"{API}/workflows/{wid}/definition", json=smaller, headers=user)
    assert changed.status_code == 200, changed.text
    refused = client.post(comments_url(wid), json={"content": "Hi", "nodeId": "set"}, headers=user)
    assert problem(refused, 422)["errors"][0]["pointer"] == "/nodeId"
    assert comment(client, user, wid, nodeId="hook")["nodeId"] == "hook"


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"content": ""}, 422), ({"isResolved": "yes"}, 422), ({"pinned": True}, 422)],
)
def test_bad_updates_are_problems_that_change_nothing(
    client: Client, user: Account, body: Any, status: int
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    posted = comment(client, user, wid)
    before = event_count(client)
    problem(client.patch(comments_url(wid, posted["id"]), json=body, headers=user), status)
    assert event_count(client) == before


def test_an_edit_and_a_resolve_in_one_request_are_saved_together_or_not_at_all(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, bob.user_id, "EDIT")
    posted = comment(client, user, wid)
    before = event_count(client)
    both = {"content": "Done", "isResolved": True}
    problem(client.patch(comments_url(wid, posted["id"]), json=both, headers=bob), 403)
    assert event_count(client) == before
    saved = client.patch(comments_url(wid, posted["id"]), json=both, headers=user)
    assert (saved.json()["content"], saved.json()["isResolved"], saved.json()["revision"]) == (
        "Done",
        True,
        3,
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"cursor": "!!"}, "cursor"),
        ({"resolved": "maybe"}, "resolved"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(
    client: Client, user: Account, params: dict[str, str], parameter: str
) -> None:
    made = create(client, user)
    response = client.get(
        comments_url(made["id"]),
        params=params,
        headers={**user, "A2N-Min-Position": str(made["position"])},
    )
    assert problem(response, 400)["errors"][0]["parameter"] == parameter


def test_an_archived_workflow_keeps_its_comments_but_takes_no_new_ones(
    client: Client, user: Account
) -> None:
    wid = create(client, user, definition=GRAPH)["id"]
    posted = comment(client, user, wid)
    assert client.post(f"{API}/workflows/{wid}/archive", headers=user).status_code == 200
    problem(client.post(comments_url(wid), json={"content": "Late"}, headers=user), 409)
    problem(client.patch(comments_url(wid, posted["id"]), json={"content": "x"}, headers=user), 409)
    deleted = client.delete(comments_url(wid, posted["id"]), headers=user)
    assert deleted.status_code == 200, deleted.text


def test_an_erased_author_leaves_no_readable_text(
    client: Client, owner: Account, user: Account
) -> None:
    author = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, author.user_id, "VIEW")
    posted = comment(client, author, wid, content="My words")
    assert comment(client, user, wid, content="Kept")["content"] == "Kept"
    url = str(client.app.state.services.database.url)
    stored = rows(
        url, "SELECT state FROM workflows_events WHERE originator_id = %s", (posted["id"],)
    )
    assert b"My words" not in bytes(stored[0][0])

    erased = client.post(f"{API}/users/{author.user_id}/erase", headers=owner)
    assert erased.status_code == 200, erased.text
    # The projector learns of the erasure from the Identity log; wait for it there.
    wait_until(
        lambda: (
            rows(url, "SELECT content FROM workflow_comment WHERE id = %s", (posted["id"],))
            == [(None,)]
        )
    )
    texts = {c["id"]: c["content"] for c in listed(client, user, wid, posted["position"])}
    assert texts[posted["id"]] is None
    assert "Kept" in texts.values()


def test_the_comment_table_is_rebuilt_from_the_events(
    client: Client, database_url: str, user: Account
) -> None:
    bob = sign_up(client)
    wid = create(client, user, definition=GRAPH)["id"]
    share(client, user, wid, bob.user_id, "EDIT")
    thread = comment(client, user, wid, nodeId="set")
    comment(client, bob, wid, parentId=thread["id"])
    gone = comment(client, bob, wid, parentId=thread["id"])
    client.patch(comments_url(wid, thread["id"]), json={"content": "Edited"}, headers=user)
    client.patch(comments_url(wid, thread["id"]), json={"isResolved": True}, headers=bob)
    client.delete(comments_url(wid, gone["id"]), headers=bob)
    position = client.delete(comments_url(wid, thread["id"]), headers=user).json()["position"]
    assert len(listed(client, user, wid, position)) == 2

    use_key_ring(KeyRing.parse(client.app.state.services.settings.master_keys))
    live = table_contents(database_url, "workflow_comment")
    rebuilder = Rebuilder(database_url, projector_named("workflow_comments"))
    result = rebuilder.verify()
    assert result.identical, result.differences
    rebuilder.rebuild()
    assert table_contents(database_url, "workflow_comment") == live
