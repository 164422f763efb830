"""Credentials over HTTP: create, read (never the data), change, replace data, validate, share
under terms, use through the vault, usage, delete, templates and key rotation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from application.credentials.vault import CredentialVault
from application.errors import NotFound
from domain.credentials.credential import CredentialUnavailable
from tests.api.helpers import API, Account, problem, promote, read, sign_up
from tests.integration.helpers import rows

Client = TestClient[Any]
SECRET = "sk_live_api-test-secret-31337"
NEW_SECRET = "sk_live_replaced-secret-27182"


def create_credential(
    client: Client, user: dict[str, str], secret: str = SECRET, **body: Any
) -> dict[str, Any]:
    payload = {"name": "Stripe", "type": "API_KEY", "data": {"apiKey": secret}, **body}
    response = client.post(f"{API}/credentials", json=payload, headers=user)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def seen(client: Client, user: dict[str, str], credential: dict[str, Any]) -> dict[str, Any]:
    """GET /credentials/{id} once the projection holds `credential`'s last command."""
    found: dict[str, Any] = read(
        client, user, f"/credentials/{credential['id']}", credential["position"]
    )
    return found


def vault(client: Client) -> CredentialVault:
    """The vault as the execution engine will hold it, on the app's own event store."""
    service = client.app.state.services.credentials
    return CredentialVault(service.app, service.sealer)


def share_credential(
    client: Client, owner: dict[str, str], credential_id: str, user_id: str, **terms: Any
) -> dict[str, Any]:
    response = client.post(
        f"{API}/credentials/{credential_id}/shares",
        json={"userId": user_id, "permission": "USE", **terms},
        headers=owner,
    )
    assert response.status_code in (200, 201), response.text
    shared: dict[str, Any] = response.json()
    return shared


def test_a_credential_answers_with_its_field_names_never_their_values(
    client: Client, user: Account
) -> None:
    created = create_credential(
        client,
        user,
        provider="stripe",
        configuration={"in": "header", "name": "Authorization"},
        tags=["payments"],
        expiresAt="2099-01-01T00:00:00Z",
    )
    assert SECRET not in str(created)
    assert created["fields"] == ["apiKey"]
    assert (created["permission"], created["revision"], created["encryptionVersion"]) == (
        "OWNER",
        1,
        "1",
    )
    response = client.get(
        f"{API}/credentials/{created['id']}",
        headers={**user, "A2N-Min-Position": str(created["position"])},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    shown = response.json()
    assert SECRET not in response.text
    assert {k: shown[k] for k in ("name", "type", "provider", "fields", "tags", "expiresAt")} == {
        "name": "Stripe",
        "type": "API_KEY",
        "provider": "stripe",
        "fields": ["apiKey"],
        "tags": ["payments"],
        "expiresAt": "2099-01-01T00:00:00Z",
    }
    assert shown["configuration"] == {"in": "header", "name": "Authorization"}
    assert shown["share"] is None
    assert "data" not in shown
    assert "encryptedData" not in shown


def test_lists_filter_by_type_and_text_and_page_with_cursors(client: Client) -> None:
    me = sign_up(client)
    made = [
        create_credential(client, me, name=f"Key {i}", description="billing" if i % 2 else None)
        for i in range(3)
    ]
    token = client.post(
        f"{API}/credentials",
        json={"name": "GitHub", "type": "BEARER_TOKEN", "data": {"token": "ghp_x"}},
        headers=me,
    ).json()
    position = str(token["position"])

    def ids(**params: Any) -> list[str]:
        page = read(client, me, "/credentials", int(position), **params)
        return [item["id"] for item in page["items"]]

    assert ids() == [token["id"], *reversed([c["id"] for c in made])]
    assert ids(type="BEARER_TOKEN") == [token["id"]]
    assert ids(q="BILLING") == [made[1]["id"]]
    assert ids(q="git") == [token["id"]]
    first = read(client, me, "/credentials", int(position), limit=3)
    assert first["nextCursor"] is not None
    rest = read(client, me, "/credentials", int(position), cursor=first["nextCursor"])
    assert [i["id"] for i in rest["items"]] == [made[0]["id"]]
    assert rest["nextCursor"] is None


def test_details_change_with_if_match_and_data_is_replaced_whole(
    client: Client, user: Account
) -> None:
    created = create_credential(client, user)
    path = f"{API}/credentials/{created['id']}"
    stale = client.patch(path, json={"name": "Stripe live"}, headers={**user, "If-Match": '"9"'})
    assert problem(stale, 412)["currentRevision"] == 1
    changed = client.patch(
        path, json={"name": "Stripe live", "notes": None}, headers={**user, "If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["revision"]) == ("Stripe live", 2)
    replaced = client.put(f"{path}/data", json={"data": {"apiKey": NEW_SECRET}}, headers=user)
    assert replaced.status_code == 200, replaced.text
    assert NEW_SECRET not in replaced.text
    assert replaced.json()["revision"] == 3
    opened = vault(client).use(user.user_id, created["id"], execution_id=None, node_id=None)
    assert opened["data"] == {"apiKey": NEW_SECRET}
    wrong = client.put(f"{path}/data", json={"data": {"token": NEW_SECRET}}, headers=user)
    errors = problem(wrong, 422)["errors"]
    assert sorted(e["pointer"] for e in errors) == ["/data/apiKey", "/data/token"]
    assert NEW_SECRET not in wrong.text


def test_validation_checks_offline_and_is_recorded(client: Client, user: Account) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    created = create_credential(client, user, expiresAt=soon.isoformat())
    path = f"{API}/credentials/{created['id']}/validate"
    fine = client.post(path, headers=user)
    assert fine.status_code == 200, fine.text
    assert fine.json()["status"] == "VALID"
    assert {c["name"] for c in fine.json()["checks"]} == {"fields", "expiry"}
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    expired = client.post(path, headers=user).json()
    assert expired["status"] == "EXPIRED"
    assert [c["ok"] for c in expired["checks"] if c["name"] == "expiry"] == [False]
    shown = read(client, user, f"/credentials/{created['id']}", expired["position"])
    assert (shown["validationStatus"], shown["lastValidatedAt"]) == (
        "EXPIRED",
        expired["validatedAt"],
    )
    assert SECRET not in str(expired)


def test_shares_grant_use_within_terms_and_each_side_sees_its_part(client: Client) -> None:
    owner, sharee, stranger = sign_up(client), sign_up(client), sign_up(client)
    created = create_credential(client, owner)
    credential_id = created["id"]
    path = f"{API}/credentials/{credential_id}"
    granted = share_credential(client, owner, credential_id, sharee.user_id, usageLimit=1)
    assert (granted["permission"], granted["usageLimit"], granted["usedCount"]) == ("USE", 1, 0)
    again = client.post(
        f"{path}/shares",
        json={"email": sharee.email, "permission": "USE", "usageLimit": 1},
        headers=owner,
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == granted["id"]

    mine = seen(client, sharee, {"id": credential_id, "position": granted["position"]})
    assert (mine["permission"], mine["share"]["usageLimit"]) == ("USE", 1)
    listed = read(client, sharee, "/credentials", granted["position"], sharedWithMe="true")
    assert [i["id"] for i in listed["items"]] == [credential_id]
    assert client.get(path, headers=stranger).status_code == 404
    problem(client.patch(path, json={"name": "mine now"}, headers=sharee), 403)
    problem(client.get(f"{path}/shares", headers=sharee), 403)
    problem(client.delete(path, headers=sharee), 403)

    opened = vault(client).use(sharee.user_id, credential_id, execution_id="e-1", node_id="n-1")
    assert opened["data"] == {"apiKey": SECRET}
    with pytest.raises(CredentialUnavailable, match="has used all 1 uses"):
        vault(client).use(sharee.user_id, credential_id, execution_id="e-2", node_id="n-1")
    vault(client).use(owner.user_id, credential_id, execution_id="e-3", node_id="n-2")
    head = client.app.state.services.credentials.app.head_position()
    owners_view = read(client, owner, f"/credentials/{credential_id}/usage", head)
    assert [u["executionId"] for u in owners_view["items"]] == ["e-3", "e-1"]
    sharees_view = read(client, sharee, f"/credentials/{credential_id}/usage", head)
    assert [u["executionId"] for u in sharees_view["items"]] == ["e-1"]
    shares = read(client, owner, f"/credentials/{credential_id}/shares", head)
    assert [(s["userId"], s["usedCount"]) for s in shares["items"]] == [(sharee.user_id, 1)]

    # EDIT lets the sharee change it; leaving ends their share.
    share_credential(client, owner, credential_id, sharee.user_id, permission="EDIT")
    renamed = client.patch(path, json={"description": "by the sharee"}, headers=sharee)
    assert renamed.status_code == 200, renamed.text
    left = client.delete(f"{path}/shares/{granted['id']}", headers=sharee)
    assert left.status_code == 200, left.text
    after = str(left.json()["position"])
    problem(client.get(path, headers={**sharee, "A2N-Min-Position": after}), 404)
    with pytest.raises(NotFound):
        vault(client).use(sharee.user_id, credential_id, execution_id=None, node_id=None)
    problem(client.delete(f"{path}/shares/{granted['id']}", headers=owner), 404)


def test_deleting_ends_the_credential_and_keeps_its_usage_log(
    client: Client, user: Account, database_url: str
) -> None:
    created = create_credential(client, user)
    vault(client).use(user.user_id, created["id"], execution_id="e-9", node_id="n")
    deleted = client.delete(f"{API}/credentials/{created['id']}", headers=user)
    assert deleted.status_code == 200, deleted.text
    gone = client.get(
        f"{API}/credentials/{created['id']}",
        headers={**user, "A2N-Min-Position": str(deleted.json()["position"])},
    )
    problem(gone, 404)
    problem(client.delete(f"{API}/credentials/{created['id']}", headers=user), 404)
    problem(client.get(f"{API}/credentials/{created['id']}/usage", headers=user), 404)
    kept = rows(
        database_url,
        "SELECT execution_id FROM credential_usage_log WHERE credential_id = %s",
        (created["id"],),
    )
    assert kept == [("e-9",)]
    with pytest.raises(NotFound):
        vault(client).use(user.user_id, created["id"], execution_id=None, node_id=None)


def test_templates_describe_every_type_with_its_schemas(client: Client, user: Account) -> None:
    page = client.get(f"{API}/credential-templates", params={"limit": 500}, headers=user).json()
    by_id = {t["id"]: t for t in page["items"]}
    assert {"api_key", "basic_auth", "oauth", "bearer_token", "certificate", "ssh_key"} <= set(
        by_id
    )
    assert by_id["api_key"]["dataSchema"]["required"] == ["apiKey"]
    assert by_id["stripe"]["type"] == "BEARER_TOKEN"
    assert by_id["stripe"]["configuration"] == {"baseUrl": "https://api.stripe.com"}
    only = client.get(f"{API}/credential-templates", params={"type": "SSH_KEY"}, headers=user)
    assert [t["id"] for t in only.json()["items"]] == ["ssh_key"]


def test_key_rotation_is_for_admins_and_leaves_every_credential_usable(
    client: Client, owner: Account, user: Account
) -> None:
    created = create_credential(client, user)
    problem(client.post(f"{API}/admin/credentials/rotate-key", headers=user), 403)
    admin = promote(client, owner, sign_up(client))
    rotated = client.post(f"{API}/admin/credentials/rotate-key", headers=admin)
    assert rotated.status_code == 200, rotated.text
    report = rotated.json()
    # The app's ring has one version: nothing to re-wrap, everything already current.
    assert (report["keyVersion"], report["rewrapped"]) == (1, 0)
    assert report["unchanged"] >= 1
    opened = vault(client).use(user.user_id, created["id"], execution_id=None, node_id=None)
    assert opened["data"] == {"apiKey": SECRET}
