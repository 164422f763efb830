"""Hot reads come from an in-memory cache (application/read_cache.py) that a projection's
announcement invalidates: a cached answer is never another caller's, and a read after a command's
position always sees the command."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.api.helpers import API, Account, create, problem, read, share, sign_up

Client = TestClient[Any]


def workflow(client: Client, account: Account, workflow_id: str, position: int = 0) -> Any:
    return read(client, account, f"/workflows/{workflow_id}", position)


def test_a_cached_workflow_is_only_ever_served_to_callers_who_may_read_it(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    made = create(client, user, name="Private")
    wid = made["id"]
    for _ in range(3):  # the first read fills the cache, the others are served from it
        assert workflow(client, user, wid, made["position"])["permission"] == "OWNER"
        problem(client.get(f"{API}/workflows/{wid}", headers=bob), 404)
        listed = client.get(f"{API}/workflows", headers=bob)
        assert wid not in {item["id"] for item in listed.json()["items"]}

    shared = share(client, user, wid, bob.user_id, "VIEW")
    for _ in range(3):
        assert workflow(client, bob, wid, shared["position"])["permission"] == "VIEW"
        assert workflow(client, user, wid)["permission"] == "OWNER"


def test_a_cached_answer_is_the_very_answer_a_fresh_read_gives(
    client: Client, user: Account
) -> None:
    made = create(client, user, name="Kept")
    at = {**user, "A2N-Min-Position": str(made["position"])}
    fresh = client.get(f"{API}/workflows/{made['id']}", headers=at)
    cached = client.get(f"{API}/workflows/{made['id']}", headers=user)
    assert fresh.status_code == cached.status_code == 200, cached.text
    assert fresh.content == cached.content
    assert fresh.json()["name"] == "Kept"
    assert fresh.json()["createdAt"].endswith("Z")
    assert fresh.headers["etag"] == cached.headers["etag"] == f'"{made["revision"]}"'
    assert fresh.headers["content-type"] == cached.headers["content-type"] == "application/json"


def test_a_read_after_a_change_sees_it_although_the_old_answer_was_cached(
    client: Client, user: Account
) -> None:
    made = create(client, user, name="First")
    wid = made["id"]
    assert workflow(client, user, wid, made["position"])["name"] == "First"
    assert workflow(client, user, wid)["name"] == "First"
    for name in ("Second", "Third"):
        changed = client.patch(f"{API}/workflows/{wid}", json={"name": name}, headers=user)
        assert changed.status_code == 200, changed.text
        shown = workflow(client, user, wid, changed.json()["position"])
        assert (shown["name"], shown["revision"]) == (name, changed.json()["revision"])
        listed = read(client, user, "/workflows", changed.json()["position"])["items"]
        assert {item["name"] for item in listed if item["id"] == wid} == {name}


def test_an_unshared_workflow_is_gone_at_once_for_its_former_sharee(
    client: Client, user: Account
) -> None:
    bob = sign_up(client)
    wid = create(client, user)["id"]
    shared = share(client, user, wid, bob.user_id, "EDIT")
    assert workflow(client, bob, wid, shared["position"])["permission"] == "EDIT"
    assert workflow(client, bob, wid)["permission"] == "EDIT"  # cached
    removed = client.delete(f"{API}/workflows/{wid}/shares/{bob.user_id}", headers=user)
    assert removed.status_code == 200, removed.text
    at = {**bob, "A2N-Min-Position": str(removed.json()["position"])}
    problem(client.get(f"{API}/workflows/{wid}", headers=at), 404)


def test_a_signed_out_token_is_refused_at_once_although_it_was_verified_before(
    client: Client,
) -> None:
    alice = sign_up(client)
    for _ in range(2):  # the session row and the token's signature are now cached
        assert client.get(f"{API}/workflows", headers=alice).status_code == 200
    signed_out = client.post(f"{API}/auth/logout", headers=alice)
    assert signed_out.status_code == 200, signed_out.text
    problem(client.get(f"{API}/workflows", headers=alice), 401)
    problem(client.get(f"{API}/workflows", headers=alice), 401)


def test_a_forged_token_is_refused_although_a_real_one_was_cached(client: Client) -> None:
    alice = sign_up(client)
    assert client.get(f"{API}/workflows", headers=alice).status_code == 200
    token = alice.tokens["accessToken"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    problem(client.get(f"{API}/workflows", headers={"Authorization": f"Bearer {forged}"}), 401)
