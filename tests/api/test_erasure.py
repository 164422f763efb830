"""GDPR erasure over HTTP: the account stops at once, its personal data becomes unreadable in
every event, the read models are anonymised (and equal a rebuild), and the address is free again."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from application.audit import event_payload
from application.crypto import KeyRing
from application.eventstore import META_KEY
from application.identity.personal_data import PersonalDataErased
from application.notifications.store import Notice
from domain.identity.user import User
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import API, PASSWORD, Account, login, promote, register, sign_up
from tests.api.test_identity_bad_input import identity_events, problem
from tests.integration.helpers import rows, wait_until

Client = TestClient[Any]


def db(client: Client) -> str:
    return str(client.app.state.services.database.url)


def erase(client: Client, admin: Account, user_id: str) -> Any:
    return client.post(f"{API}/users/{user_id}/erase", headers=admin)


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


STATUS = 'SELECT status FROM "user" WHERE id = %s'


def one(client: Client, query: str, user_id: str) -> list[tuple[Any, ...]]:
    return rows(db(client), query, (user_id,))


def test_erasure_cuts_the_account_off_and_forgets_its_personal_data(
    client: Client, admin: Account
) -> None:
    victim = sign_up(client)
    assert client.patch(f"{API}/me", json={"name": "Vic Tim"}, headers=victim).status_code == 200
    key = client.post(
        f"{API}/me/api-keys", json={"name": "ci", "scopes": ["workflows:read"]}, headers=victim
    ).json()["key"]
    wrong = client.post(f"{API}/auth/login", json={"email": victim.email, "password": "x" * 12})
    assert wrong.status_code == 401
    second = login(client, victim.email)

    erased = erase(client, admin, victim.user_id)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert (body["id"], body["status"]) == (victim.user_id, "DELETED")

    # Cut off before the answer: tokens, refresh tokens, API keys, the password.
    for headers in (
        victim,
        {"Authorization": f"Bearer {second['accessToken']}"},
        {"X-API-Key": key},
    ):
        assert client.get(f"{API}/me", headers=headers).status_code == 401
    for token in (victim.tokens["refreshToken"], second["refreshToken"]):
        assert client.post(f"{API}/auth/refresh", json={"refreshToken": token}).status_code == 401
    assert (
        client.post(
            f"{API}/auth/login", json={"email": victim.email, "password": PASSWORD}
        ).status_code
        == 401
    )

    shown = client.get(
        f"{API}/users/{victim.user_id}",
        headers={**admin, "A2N-Min-Position": str(body["position"])},
    ).json()
    assert (shown["email"], shown["name"], shown["status"], shown["isActive"]) == (
        None,
        None,
        "DELETED",
        False,
    )

    # The key is gone, so the sealed fields of every stored event are unreadable for good.
    identity = client.app.state.services.identity
    assert one(client, "SELECT 1 FROM personal_data_key WHERE user_id = %s", victim.user_id) == []
    history = list(identity.app.history(victim.user_id))
    registered = history[0]
    assert isinstance(registered, User.Registered)
    assert identity.personal.open(victim.user_id, registered.email) is None
    assert identity.personal.open(victim.user_id, registered.name) is None
    # The erasure itself records who did it, and nothing about the person.
    assert isinstance(history[-1], User.Erased)
    assert event_payload(history[-1]) == {}
    assert vars(history[-1])[META_KEY]["actor_id"] == admin.user_id

    # The read models are anonymised.
    assert one(client, "SELECT 1 FROM mail_outbox WHERE user_id = %s", victim.user_id) == []
    assert one(
        client,
        "SELECT count(*) FILTER (WHERE revoked_at IS NULL OR ip_address IS NOT NULL "
        "OR user_agent IS NOT NULL), count(*) FROM session WHERE user_id = %s",
        victim.user_id,
    ) == [(0, 2)]
    assert (
        one(
            client,
            "SELECT 1 FROM refresh_token WHERE user_id = %s AND NOT is_revoked",
            victim.user_id,
        )
        == []
    )
    assert one(client, "SELECT is_active FROM api_key WHERE user_id = %s", victim.user_id) == [
        (False,)
    ]
    assert one(
        client,
        "SELECT event_type, ip_address, user_agent FROM security_event WHERE user_id = %s",
        victim.user_id,
    ) == [("FAILED_LOGIN", None, None)]
    # audit_log has a projector of its own: wait until it has applied the erasure too.
    wait_until(
        lambda: (
            one(
                client,
                "SELECT count(*) FILTER (WHERE ip_address IS NOT NULL OR user_agent IS NOT NULL "
                "OR metadata->>'anonymized' IS NULL), count(*) > 5 FROM audit_log "
                "WHERE user_id = %s",
                victim.user_id,
            )
            == [(0, True)]
        )
    )


def test_an_erased_address_can_register_again(client: Client, admin: Account) -> None:
    victim = sign_up(client)
    assert erase(client, admin, victim.user_id).status_code == 200
    again = register(client, victim.email)
    assert again["id"] != victim.user_id
    assert again["role"] == "USER"
    assert login(client, victim.email)["userId"] == again["id"]


def test_admins_and_owners_are_erased_only_by_another_owner(
    client: Client, owner: Account, admin: Account
) -> None:
    other_owner = promote(client, owner, sign_up(client), "OWNER")
    other_admin = promote(client, owner, sign_up(client))
    before = identity_events(client)
    assert "owner" in problem(erase(client, admin, other_owner.user_id), 403)["detail"]
    assert "admin" in problem(erase(client, admin, other_admin.user_id), 403)["detail"]
    # The last owner cannot go: nobody erases themselves, and only an owner erases an owner.
    problem(erase(client, other_owner, other_owner.user_id), 409)
    problem(erase(client, admin, admin.user_id), 409)
    assert identity_events(client) == before
    assert erase(client, owner, other_owner.user_id).status_code == 200
    assert erase(client, owner, other_admin.user_id).status_code == 200


def test_erasing_an_unknown_or_erased_account_changes_nothing(
    client: Client, admin: Account
) -> None:
    victim = sign_up(client)
    assert erase(client, admin, victim.user_id).status_code == 200
    before = identity_events(client)
    problem(erase(client, admin, victim.user_id), 409)
    problem(erase(client, admin, "0190b8d0-0000-7000-8000-000000000000"), 404)
    problem(erase(client, admin, "not-an-id"), 404)
    assert identity_events(client) == before


def test_an_erasure_stopped_after_its_save_is_finished_by_erasing_again(
    client: Client, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = sign_up(client)
    outbox = client.app.state.services.identity.outbox

    def fail(user_id: str) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(outbox, "drop", fail)
    assert erase(client, admin, victim.user_id).status_code == 500
    assert one(client, "SELECT 1 FROM mail_outbox WHERE user_id = %s", victim.user_id) != []
    monkeypatch.undo()
    problem(erase(client, admin, victim.user_id), 409)
    assert one(client, "SELECT 1 FROM mail_outbox WHERE user_id = %s", victim.user_id) == []
    assert one(client, "SELECT 1 FROM personal_data_key WHERE user_id = %s", victim.user_id) == []


@pytest.mark.parametrize("name", ["identity", "audit_log"])
def test_tables_equal_a_rebuild_from_zero_after_erasure(
    client: Client, admin: Account, name: str
) -> None:
    victim = sign_up(client)
    assert client.patch(f"{API}/me", json={"name": "Re Built"}, headers=victim).status_code == 200
    # An event in another log: a rebuild may apply it after the erasure, not before.
    made = client.post(f"{API}/workflows", json={"name": "Left behind"}, headers=victim)
    assert made.status_code == 201, made.text
    position = erase(client, admin, victim.user_id).json()["position"]
    client.get(
        f"{API}/users/{victim.user_id}", headers={**admin, "A2N-Min-Position": str(position)}
    )
    wait_until(
        lambda: (
            rows(
                db(client),
                "SELECT count(*) FROM projection_tracking WHERE projector = 'audit_log' "
                "AND ((application = 'identity' AND position >= %s) "
                "OR (application = 'workflows' AND position >= %s))",
                (position, made.json()["position"]),
            )
            == [(2,)]
        )
    )
    use_key_ring(KeyRing.parse(client.app.state.services.settings.master_keys))
    result = Rebuilder(db(client), projector_named(name)).verify()
    assert result.identical, result.differences


def test_nothing_seals_for_an_erased_user_while_the_user_table_lags(
    client: Client, admin: Account
) -> None:
    """A notification raised after the erasure from an event of before it (a failed sign-in,
    say), while the identity projection has not yet marked the user DELETED, tells nobody and
    makes the erased user no new data key: the erasure would be undone for what it sealed."""
    victim = sign_up(client)
    assert erase(client, admin, victim.user_id).status_code == 200
    services = client.app.state.services
    wait_until(lambda: one(client, STATUS, victim.user_id) == [("DELETED",)])
    # The `user` row as a lagging projection shows it, a moment before it applies the erasure.
    one(client, "UPDATE \"user\" SET status = 'ACTIVE' WHERE id = %s RETURNING id", victim.user_id)
    notice = Notice(kind="security.login_failed", title="t", body="b", user_id=victim.user_id)
    with psycopg.connect(db(client), autocommit=True) as conn:
        assert services.notifier.raise_notice(conn, notice, ["email"]) is None
    with pytest.raises(PersonalDataErased):
        services.identity.personal.seal(victim.user_id, "anything")
    assert one(client, "SELECT 1 FROM personal_data_key WHERE user_id = %s", victim.user_id) == []
    assert one(client, "SELECT 1 FROM system_notification WHERE user_id = %s", victim.user_id) == []
