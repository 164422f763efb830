"""Two-factor sign-in through the HTTP API, with real TOTP codes computed from the shown secret."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pyotp
import pytest
from litestar.testing import TestClient

from application.crypto import KeyRing
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.helpers import API, PASSWORD, Account, mailed_token, problem, sign_up

Client = TestClient[Any]


@dataclass
class Enabled:
    totp: pyotp.TOTP
    secret: str
    recovery_codes: list[str]
    position: int


def db(client: Client) -> str:
    return str(client.app.state.services.database.url)


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step: accepted (clock drift) and never used before."""
    return totp.at(time.time(), counter_offset=1)


def wrong_code(totp: pyotp.TOTP) -> str:
    """A well-formed code that none of the steps the server accepts now would produce."""
    accepted = {totp.at(time.time(), counter_offset=offset) for offset in (-2, -1, 0, 1, 2)}
    return next(code for code in ("123456", "654321", "000000") if code not in accepted)


def enable(client: Client, account: Account) -> Enabled:
    setup = client.post(f"{API}/me/2fa/setup", headers=account)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = client.post(f"{API}/me/2fa/confirm", headers=account, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    return Enabled(totp, secret, body["recoveryCodes"], body["position"])


def me(client: Client, account: Account, position: int = 0) -> dict[str, Any]:
    response = client.get(f"{API}/me", headers={**account, "A2N-Min-Position": str(position)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def challenge_for(client: Client, account: Account) -> str:
    response = client.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["twoFactorRequired"] is True
    assert body["expiresIn"] == 300
    assert "accessToken" not in body
    challenge: str = body["challenge"]
    return challenge


def second_step(client: Client, challenge: str, code: str) -> Any:
    return client.post(f"{API}/auth/login/2fa", json={"challenge": challenge, "code": code})


def security_events(client: Client, user_id: str) -> list[tuple[str, str]]:
    head = client.app.state.services.identity.app.head_position()
    # Any signed-in account can wait for the identity projection to reach the head.
    waiter = sign_up(client)
    me(client, waiter, head)
    with psycopg.connect(db(client)) as conn:
        found = conn.execute(
            "SELECT event_type, description FROM security_event WHERE user_id = %s ORDER BY id",
            (user_id,),
        ).fetchall()
    return [(kind, text) for kind, text in found]


def test_the_whole_flow_with_an_authenticator_app(client: Client, user: Account) -> None:
    setup = client.post(f"{API}/me/2fa/setup", headers=user)
    assert setup.status_code == 200, setup.text
    shown = setup.json()
    assert set(shown) == {"secret", "otpauthUri", "position"}
    assert shown["otpauthUri"].startswith("otpauth://totp/A2N:")
    assert f"secret={shown['secret']}" in shown["otpauthUri"]
    assert "issuer=A2N" in shown["otpauthUri"]
    # Set up but not confirmed: sign-in still needs the password alone.
    assert me(client, user, shown["position"])["twoFactorEnabled"] is False
    assert (
        "accessToken"
        in client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD}).json()
    )

    totp = pyotp.TOTP(shown["secret"])
    wrong = client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": wrong_code(totp)})
    assert wrong.status_code == 422
    assert [e["pointer"] for e in wrong.json()["errors"]] == ["/code"]
    confirmed = client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recoveryCodes"]
    assert len(codes) == len(set(codes)) == 10
    assert me(client, user, confirmed.json()["position"])["twoFactorEnabled"] is True
    again = client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": totp.now()})
    assert again.status_code == 409

    challenge = challenge_for(client, user)
    code = next_code(totp)
    signed_in = second_step(client, challenge, code)
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    assert tokens["userId"] == user.user_id
    assert me(client, Account(user.user_id, user.email, tokens))["id"] == user.user_id

    # The challenge is spent, and the code cannot be replayed on a fresh challenge either.
    assert second_step(client, challenge, codes[0]).status_code == 401
    replayed = second_step(client, challenge_for(client, user), code)
    assert replayed.status_code == 422


def test_a_wrong_code_is_refused_and_recorded_and_the_challenge_survives_it(
    client: Client, user: Account
) -> None:
    enabled = enable(client, user)
    challenge = challenge_for(client, user)
    wrong = second_step(client, challenge, wrong_code(enabled.totp))
    assert wrong.status_code == 422
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert "accessToken" not in wrong.text
    assert ("FAILED_LOGIN", "sign-in with a wrong two-factor code") in security_events(
        client, user.user_id
    )
    assert second_step(client, challenge, enabled.recovery_codes[0]).status_code == 200


def test_a_recovery_code_works_once(client: Client, user: Account) -> None:
    codes = enable(client, user).recovery_codes
    assert second_step(client, challenge_for(client, user), codes[0]).status_code == 200
    assert second_step(client, challenge_for(client, user), codes[0]).status_code == 422
    # Typed in lower case without dashes, another code still works.
    typed = codes[1].replace("-", "").lower()
    assert second_step(client, challenge_for(client, user), typed).status_code == 200
    with psycopg.connect(db(client)) as conn:
        used = conn.execute(
            "SELECT count(*) FROM identity_events WHERE originator_id = %s AND topic LIKE %s",
            (user.user_id, "%User.RecoveryCodeUsed"),
        ).fetchone()
    assert used == (2,)


def test_a_challenge_expires_after_five_minutes(
    client: Client, user: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = enable(client, user).recovery_codes
    challenge = challenge_for(client, user)
    identity = client.app.state.services.identity
    real_now = identity.now
    monkeypatch.setattr(identity, "now", lambda: real_now() + timedelta(minutes=5, seconds=1))
    assert second_step(client, challenge, codes[0]).status_code == 401
    monkeypatch.setattr(identity, "now", lambda: real_now() + timedelta(minutes=4, seconds=50))
    # Just within its lifetime it still works, with the code the expired attempt did not spend.
    assert second_step(client, challenge, codes[0]).status_code == 200


def test_a_challenge_is_bound_to_its_user(client: Client, user: Account) -> None:
    other = sign_up(client)
    mine = enable(client, user)
    theirs = enable(client, other)
    challenge = challenge_for(client, user)
    assert second_step(client, challenge, theirs.recovery_codes[0]).status_code == 422
    assert second_step(client, challenge, mine.recovery_codes[0]).json()["userId"] == user.user_id


def test_disable_needs_a_right_code_then_sign_in_needs_the_password_alone(
    client: Client, user: Account
) -> None:
    enabled = enable(client, user)
    assert client.post(f"{API}/me/2fa/setup", headers=user).status_code == 409
    wrong = client.post(f"{API}/me/2fa/disable", headers=user, json={"code": "AAAA-AAAA-AAAA-AAAA"})
    assert wrong.status_code == 422
    assert me(client, user, enabled.position)["twoFactorEnabled"] is True
    off = client.post(f"{API}/me/2fa/disable", headers=user, json={"code": next_code(enabled.totp)})
    assert off.status_code == 200, off.text
    assert me(client, user, off.json()["position"])["twoFactorEnabled"] is False
    assert "FAILED_2FA" in [kind for kind, _ in security_events(client, user.user_id)]
    signed_in = client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    assert "accessToken" in signed_in.json()
    again = client.post(
        f"{API}/me/2fa/disable", headers=user, json={"code": enabled.recovery_codes[0]}
    )
    assert again.status_code == 409


def test_a_new_setup_replaces_an_unconfirmed_secret(client: Client, user: Account) -> None:
    first = client.post(f"{API}/me/2fa/setup", headers=user).json()["secret"]
    second = client.post(f"{API}/me/2fa/setup", headers=user).json()["secret"]
    assert first != second
    stale = pyotp.TOTP(first).now()
    if stale != pyotp.TOTP(second).now():
        confirm = client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": stale})
        assert confirm.status_code == 422
    fresh = pyotp.TOTP(second).now()
    assert (
        client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": fresh}).status_code == 200
    )


def test_api_keys_cannot_change_two_factor_settings(client: Client, user: Account) -> None:
    key = client.post(
        f"{API}/me/api-keys", headers=user, json={"name": "ci", "scopes": ["workflows:read"]}
    ).json()["key"]
    for path, body in (("setup", None), ("confirm", {"code": "123456"})):
        response = client.post(f"{API}/me/2fa/{path}", headers={"X-API-Key": key}, json=body)
        assert response.status_code == 403, response.text


def test_no_totp_secret_recovery_code_or_challenge_is_stored_in_clear(client: Client) -> None:
    account = sign_up(client)
    enabled = enable(client, account)
    challenge = challenge_for(client, account)
    assert second_step(client, challenge, enabled.recovery_codes[0]).status_code == 200
    me(client, account, client.app.state.services.identity.app.head_position())
    secrets = [enabled.secret, challenge.split(".")[1]]
    for code in enabled.recovery_codes:
        secrets += [code, code.replace("-", "")]
    with psycopg.connect(db(client)) as conn:
        stored = conn.execute("SELECT convert_from(state, 'UTF8') FROM identity_events").fetchall()
        audit = conn.execute("SELECT new_values::text FROM audit_log").fetchall()
        user_row = conn.execute(
            'SELECT two_factor_enabled, two_factor_secret FROM "user" WHERE id = %s',
            (account.user_id,),
        ).fetchone()
    text = "\n".join(row[0] for row in stored + audit)
    # The scan did read the 2FA events (with their sealed secret and hashed codes).
    assert '"sealed_secret"' in text
    assert '"recovery_code_hashes"' in text
    for secret in secrets:
        assert secret not in text
    assert user_row == (True, None)
    with psycopg.connect(db(client)) as conn:
        hashes = conn.execute(
            "SELECT new_values->>'recovery_code_hashes' FROM audit_log "
            "WHERE action = 'UserTwoFactorEnabled' AND resource_id = %s",
            (account.user_id,),
        ).fetchall()
    assert hashes == [("[hidden]",)]


def test_identity_tables_equal_a_rebuild_after_two_factor_changes(client: Client) -> None:
    account = sign_up(client)
    enabled = enable(client, account)
    assert second_step(client, challenge_for(client, account), enabled.recovery_codes[0]).json()
    client.post(f"{API}/me/2fa/disable", headers=account, json={"code": enabled.recovery_codes[1]})
    enable(client, sign_up(client))
    me(client, account, client.app.state.services.identity.app.head_position())
    use_key_ring(KeyRing.parse(client.app.state.services.settings.master_keys))
    result = Rebuilder(db(client), projector_named("identity")).verify()
    assert result.identical, result.differences


# -- bad input: a problem+json answer, and nothing stored ------------------------------------


def identity_events(client: Client) -> int:
    return int(client.app.state.services.identity.app.head_position())


HOSTILE_CODES = ["", "12345", "1234567", "12 34\x0056", "\x00" * 6, "x" * 100_000, "ABCD-EFGH-IJKL"]
BAD_BODIES = [
    (b'{"code": ', 400),
    (b"[]", 422),
    (b'{"code": "123456", "unexpected": 1}', 422),
    (b'{"code": 123456}', 422),
    (b'{"code": null}', 422),
    (b'{"challenge": ["x"], "code": {}}', 422),
    (b"{}", 422),
]


@pytest.mark.parametrize("path", ["/auth/login/2fa", "/me/2fa/confirm", "/me/2fa/disable"])
@pytest.mark.parametrize(("content", "status"), BAD_BODIES)
def test_code_routes_refuse_bad_bodies(
    client: Client, user: Account, path: str, content: bytes, status: int
) -> None:
    before = identity_events(client)
    response = client.post(
        f"{API}{path}", content=content, headers={**user, "content-type": "application/json"}
    )
    problem(response, status)
    assert identity_events(client) == before


@pytest.mark.parametrize("path", ["/auth/login/2fa", "/me/2fa/confirm", "/me/2fa/disable"])
def test_code_routes_refuse_a_body_that_is_not_json(
    client: Client, user: Account, path: str
) -> None:
    before = identity_events(client)
    response = client.post(
        f"{API}{path}", content=b"code=123456", headers={**user, "content-type": "text/plain"}
    )
    problem(response, 415)
    assert identity_events(client) == before


def test_malformed_codes_are_refused_without_counting_or_recording(
    client: Client, user: Account
) -> None:
    enabled = enable(client, user)
    challenge = challenge_for(client, user)
    before = identity_events(client)
    for code in HOSTILE_CODES:
        for path, body in (
            ("/auth/login/2fa", {"challenge": challenge, "code": code}),
            ("/me/2fa/disable", {"code": code}),
        ):
            found = problem(client.post(f"{API}{path}", headers=user, json=body), 422)
            assert [e["pointer"] for e in found["errors"]] == ["/code"]
    assert identity_events(client) == before
    # None of that was a failed attempt: no lockout, and the challenge still works.
    assert second_step(client, challenge, enabled.recovery_codes[0]).status_code == 200


def test_confirm_refuses_malformed_codes(client: Client, user: Account) -> None:
    assert client.post(f"{API}/me/2fa/setup", headers=user).status_code == 200
    before = identity_events(client)
    for code in [*HOSTILE_CODES, "ABCD-EFGH-IJKL-MNOP"]:
        found = problem(
            client.post(f"{API}/me/2fa/confirm", headers=user, json={"code": code}), 422
        )
        assert [e["pointer"] for e in found["errors"]] == ["/code"]
    assert identity_events(client) == before


@pytest.mark.parametrize(
    "challenge",
    [
        "",
        "nope",
        "x" * 100_000,
        "01234567-89ab-7def-8123-456789abcdef.secret",
        "01234567-89ab-7def-8123-456789abcdef",
        "\x00.\x00",
        ".",
    ],
)
def test_unknown_or_garbage_challenges_are_refused(
    client: Client, user: Account, challenge: str
) -> None:
    before = identity_events(client)
    problem(second_step(client, challenge, "123456"), 401)
    assert identity_events(client) == before


def test_a_challenge_of_another_purpose_is_refused(client: Client, owner: Account) -> None:
    """A mailed token (a Verification too) is not a sign-in challenge."""
    account = sign_up(client)
    assert (
        client.post(f"{API}/auth/password/forgot", json={"email": account.email}).status_code == 202
    )
    token = mailed_token(client, owner, account.user_id, "PASSWORD_RESET")
    enabled = enable(client, account)
    problem(second_step(client, token, enabled.recovery_codes[0]), 401)


@pytest.mark.parametrize(
    ("content", "status"), [(b'{"code": ', 400), (b"[]", 422), (b'{"secret": "mine"}', 422)]
)
def test_setup_refuses_any_field(
    client: Client, user: Account, content: bytes, status: int
) -> None:
    before = identity_events(client)
    response = client.post(
        f"{API}/me/2fa/setup", content=content, headers={**user, "content-type": "application/json"}
    )
    problem(response, status)
    assert identity_events(client) == before
