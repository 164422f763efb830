"""Invitations: an admin mails a single-use token; registering with it gives the invited role and
a verified address. With A2N_REGISTRATION=invite only the first account registers without one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from application.settings import Settings
from tests.api.helpers import API, PASSWORD, Account, mailed_token, promote, sign_up
from tests.api.test_identity_bad_input import identity_events, problem
from tests.integration.helpers import rows

Client = TestClient[Any]


def address() -> str:
    return f"invitee-{uuid.uuid4().hex[:12]}@example.com"


def invite(client: Client, admin: Account, email: str, role: str = "USER") -> Any:
    return client.post(f"{API}/users/invite", json={"email": email, "role": role}, headers=admin)


def invited(
    client: Client, owner: Account, admin: Account, role: str = "USER"
) -> tuple[str, dict[str, Any], str]:
    """A new address invited by `admin`: the address, the answer, and the mailed token."""
    email = address()
    made = invite(client, admin, email, role)
    assert made.status_code == 201, made.text
    invitation: dict[str, Any] = made.json()
    return email, invitation, mailed_token(client, owner, invitation["userId"], "INVITE")


def register(client: Client, email: str, token: str | None = None) -> Any:
    body = {"email": email, "password": PASSWORD}
    if token is not None:
        body["inviteToken"] = token
    return client.post(f"{API}/auth/register", json=body)


def mail_count(client: Client) -> int:
    return int(
        rows(str(client.app.state.services.database.url), "SELECT count(*) FROM mail_outbox")[0][0]
    )


@pytest.fixture
def admin(client: Client, owner: Account) -> Account:
    return promote(client, owner, sign_up(client))


@pytest.fixture
def invite_only(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client.app.state.services.identity, "registration", "invite")


def test_an_invited_person_registers_with_the_role_and_a_verified_address(
    client: Client, owner: Account, admin: Account, invite_only: None
) -> None:
    email = address()
    made = invite(client, admin, email, "ADMIN")
    assert made.status_code == 201, made.text
    invitation = made.json()
    assert invitation["role"] == "ADMIN"
    assert "token" not in made.text.lower()
    mail = client.get(f"{API}/admin/mail-outbox", headers=owner).json()
    sent = next(m for m in mail if m["userId"] == invitation["userId"])
    assert (sent["toAddress"], sent["purpose"]) == (email, "INVITE")
    token = mailed_token(client, owner, invitation["userId"], "INVITE")

    assert problem(register(client, email), 403)["detail"].startswith("registration is by")
    registered = register(client, email.upper(), token)
    assert registered.status_code == 201, registered.text
    account = registered.json()
    assert (account["id"], account["role"], account["emailVerified"]) == (
        invitation["userId"],
        "ADMIN",
        True,
    )
    # Verified already: no confirmation mail follows.
    mail = client.get(f"{API}/admin/mail-outbox", headers=owner).json()
    assert [m["purpose"] for m in mail if m["userId"] == account["id"]] == ["INVITE"]
    tokens = client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD}).json()
    me = client.get(
        f"{API}/me",
        headers={
            "Authorization": f"Bearer {tokens['accessToken']}",
            "A2N-Min-Position": str(account["position"]),
        },
    ).json()
    assert (me["role"], me["emailVerified"]) == ("ADMIN", True)
    stored = rows(
        str(client.app.state.services.database.url),
        "SELECT identifier, consumed_at IS NOT NULL FROM verification WHERE id = %s",
        (invitation["id"],),
    )
    assert stored == [(account["id"], True)]

    # Neither the token nor the address is stored in clear.
    with psycopg.connect(str(client.app.state.services.database.url)) as conn:
        stored = conn.execute("SELECT convert_from(state, 'UTF8') FROM identity_events").fetchall()
        audit = conn.execute("SELECT new_values::text FROM audit_log").fetchall()
    text = "\n".join(row[0] for row in stored + audit)
    assert token.split(".")[1] not in text
    assert email not in text

    # Used once: the token opens no second account.
    before = identity_events(client)
    problem(register(client, email, token), 403)
    problem(register(client, address(), token), 403)
    assert identity_events(client) == before


def test_a_bad_expired_or_misaddressed_invitation_changes_nothing(
    client: Client, owner: Account, admin: Account, invite_only: None, monkeypatch: Any
) -> None:
    email, invitation, token = invited(client, owner, admin)
    identity = client.app.state.services.identity
    before = identity_events(client)
    refusals = [
        (register(client, email, "not a token"), 403),
        (register(client, email, f"{invitation['id']}.wrong-secret"), 403),
        (register(client, email, f"{uuid.uuid4()}.{token.split('.')[1]}"), 403),
        (register(client, address(), token), 422),
    ]
    for response, status in refusals:
        problem(response, status)
    assert problem(refusals[-1][0], 422)["errors"][0]["pointer"] == "/email"
    later = identity.now() + timedelta(days=8)
    monkeypatch.setattr(identity, "now", lambda: later)
    problem(register(client, email, token), 403)
    assert identity_events(client) == before


def test_an_invitation_lapses_when_its_inviter_may_no_longer_grant_it(
    client: Client, owner: Account, admin: Account
) -> None:
    email, _, token = invited(client, owner, admin, "ADMIN")
    demoted = client.put(f"{API}/users/{admin.user_id}/role", json={"role": "USER"}, headers=owner)
    assert demoted.status_code == 200
    problem(register(client, email, token), 403)


def test_only_an_owner_invites_an_owner(client: Client, owner: Account, admin: Account) -> None:
    before = (identity_events(client), mail_count(client))
    assert "OWNER" in problem(invite(client, admin, address(), "OWNER"), 403)["detail"]
    assert (identity_events(client), mail_count(client)) == before
    made = invite(client, owner, address(), "OWNER")
    assert made.status_code == 201, made.text


@pytest.mark.parametrize(
    ("body", "status", "pointer"),
    [
        ({"email": "not an address"}, 422, "/email"),
        ({"email": "a@example.com", "role": "ROOT"}, 422, "/role"),
        ({"email": "a@example.com", "token": "x"}, 422, None),
        ({"role": "USER"}, 422, None),
        ("{", 400, None),
    ],
)
def test_bad_invitations_change_nothing(
    client: Client, admin: Account, body: Any, status: int, pointer: str | None
) -> None:
    before = (identity_events(client), mail_count(client))
    if isinstance(body, str):
        response = client.post(
            f"{API}/users/invite",
            content=body,
            headers={**admin, "content-type": "application/json"},
        )
    else:
        response = client.post(f"{API}/users/invite", json=body, headers=admin)
    found = problem(response, status)
    if pointer is not None:
        assert found["errors"][0]["pointer"] == pointer
    assert (identity_events(client), mail_count(client)) == before


def test_inviting_a_registered_address_conflicts(client: Client, admin: Account) -> None:
    taken = sign_up(client)
    before = (identity_events(client), mail_count(client))
    problem(invite(client, admin, taken.email.upper()), 409)
    assert (identity_events(client), mail_count(client)) == before


def test_an_invitation_in_open_mode_still_gives_its_role(
    client: Client, owner: Account, admin: Account
) -> None:
    email, _, token = invited(client, owner, admin, "ADMIN")
    problem(register(client, email, "0.x"), 403)
    registered = register(client, email, token)
    assert registered.status_code == 201, registered.text
    assert registered.json()["role"] == "ADMIN"


def test_in_invite_mode_the_first_account_still_registers_as_owner(
    make_database: Callable[..., str], api_settings: Settings
) -> None:
    settings = replace(api_settings, database_url=make_database(), registration="invite")
    with TestClient(create_app(settings), raise_server_exceptions=False) as fresh:
        first = register(fresh, address())
        assert first.status_code == 201, first.text
        assert first.json()["role"] == "OWNER"
        assert "invitation" in problem(register(fresh, address()), 403)["detail"]
