"""Sign-in through an OpenID Connect provider, over HTTP against the real test provider.

The test client plays the browser: it follows each redirect by hand (start -> provider -> callback)
and keeps cookies like a browser. The app runs on a database of this module's own, so its first
account, the OWNER, is the one the `owner` fixture signs up through the provider.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
import pytest
import redis
from litestar.testing import TestClient

from api.app import create_app
from application.crypto import KeyRing, token_hash
from application.settings import Settings
from domain.identity.account_link import AccountLink
from projections.identity import use_key_ring
from projections.rebuild import Rebuilder
from projections.registry import projector_named
from tests.api.conftest import TEST_MASTER_KEYS, TEST_SECRET_KEY
from tests.api.helpers import API, PASSWORD, login, problem, register
from tests.integration.helpers import wait_until
from tests.loopback import LOOPBACK_ALLOWED
from tests.oidc_provider import OIDCProvider, a2n_providers, running_provider

Client = TestClient[Any]
PUBLIC_URL = "http://127.0.0.1:8000"
CALLBACK_URL = f"{PUBLIC_URL}/api/v1/auth/oauth/test/callback"
START = f"{API}/auth/oauth/test/start"
CALLBACK = f"{API}/auth/oauth/test/callback"
ATTEMPT_KEYS = "a2n:*:oauth:attempt:"  # prefixed with the test database's name


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    """A provider that only accepts the exact callback URL built from A2N_PUBLIC_URL."""
    with running_provider(users={"owner": _person("owner")}, redirect_uris=[CALLBACK_URL]) as found:
        yield found


@pytest.fixture(scope="module")
def client(
    make_database: Callable[..., str],
    redis_url: str,
    provider: OIDCProvider,
    tmp_path_factory: Any,
) -> Iterator[Client]:
    settings = Settings(
        database_url=make_database(),
        redis_url=redis_url,
        log_level="warning",
        projection_poll_interval=0.2,
        min_position_timeout=2.0,
        db_pool_min=1,
        db_pool_max=4,  # a second app next to the session's: spare the server's connections
        secret_key=TEST_SECRET_KEY,
        master_keys=TEST_MASTER_KEYS,
        data_dir=tmp_path_factory.mktemp("oauth"),
        public_url=PUBLIC_URL,
        oauth_providers=a2n_providers(provider),
        rate_limits="off",  # every request comes from one address
        egress_allow=LOOPBACK_ALLOWED,  # the provider listens on 127.0.0.1
    )
    with TestClient(create_app(settings, run_projectors=True), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def owner(client: Client, provider: OIDCProvider) -> dict[str, Any]:
    """The installation's first account, signed up through the provider: it becomes OWNER."""
    signed = sign_in(client, provider, "owner")
    assert signed.status_code == 200, signed.text
    tokens: dict[str, Any] = signed.json()
    assert me(client, tokens)["role"] == "OWNER"
    return tokens


def _person(login: str, *, verified: bool = True, **claims: Any) -> dict[str, Any]:
    return {
        "email": f"{login}@example.com",
        "email_verified": verified,
        "name": f"{login.title()} Example",
        **claims,
    }


def new_person(provider: OIDCProvider, *, verified: bool = True, **claims: Any) -> str:
    """Add a user to the provider; return its login (also the local part of its address)."""
    login = f"p-{uuid.uuid4().hex[:12]}"
    provider.users[login] = _person(login, verified=verified, **claims)
    return login


def start(client: Client) -> str:
    """GET start like a browser; return the provider URL it redirects to."""
    response = client.get(START, follow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["cache-control"] == "no-store"
    location: str = response.headers["location"]
    return location


def approve(provider: OIDCProvider, authorize_url: str, login: str) -> str:
    """The user picks `login` at the provider and approves; return the callback query string."""
    location = provider.approve(f"{authorize_url}&login_hint={quote(login)}")
    assert location.startswith(CALLBACK_URL + "?"), location
    return urlsplit(location).query


def sign_in(client: Client, provider: OIDCProvider, login: str) -> Any:
    return client.get(f"{CALLBACK}?{approve(provider, start(client), login)}")


def me(client: Client, tokens: dict[str, Any]) -> dict[str, Any]:
    response = client.get(
        f"{API}/me",
        headers={
            "Authorization": f"Bearer {tokens['accessToken']}",
            "A2N-Min-Position": str(tokens["position"]),
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def db(client: Client) -> str:
    return str(client.app.state.services.database.url)


def rows(client: Client, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db(client)) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def identity_events(client: Client) -> int:
    return int(client.app.state.services.identity.app.head_position())


def refused(response: Any, parameter: str) -> str:
    """A 400 naming the query parameter at fault; returns the message."""
    body = problem(response, 400)
    [error] = body["errors"]
    assert error["parameter"] == parameter, body
    message: str = error["message"]
    return message


def test_start_redirects_to_the_provider_with_pkce_and_a_browser_bound_cookie(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    response = client.get(START, follow_redirects=False)
    assert response.status_code == 302
    url = urlsplit(response.headers["location"])
    query = dict(parse_qsl(url.query))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.issuer}/authorize"
    assert query["redirect_uri"] == CALLBACK_URL
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/api/v1/auth/oauth/test/callback" in cookie
    assert query["state"].lower() not in cookie  # the cookie is a second secret, not the state


def test_a_new_person_gets_an_account_and_comes_back_to_it(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider)
    first = sign_in(client, provider, login)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert set(tokens) >= {"accessToken", "refreshToken", "tokenType", "expiresIn", "userId"}
    assert first.headers["cache-control"] == "no-store"
    account = me(client, tokens)
    assert account["email"] == f"{login}@example.com"
    assert account["emailVerified"] is True
    assert account["role"] == "USER"
    assert account["name"] == f"{login.title()} Example"
    assert rows(client, 'SELECT password FROM "user" WHERE id = %s', tokens["userId"]) == [(None,)]

    again = sign_in(client, provider, login)
    assert again.status_code == 200, again.text
    assert again.json()["userId"] == tokens["userId"]
    assert again.json()["sessionId"] != tokens["sessionId"]
    me(client, again.json())
    assert rows(
        client,
        "SELECT user_id, provider_id, account_id, scope FROM account WHERE user_id = %s",
        tokens["userId"],
    ) == [(tokens["userId"], "test", f"sub-{login}", "openid email profile")]
    # The refresh token works like one from a password sign-in.
    refreshed = client.post(f"{API}/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refreshed.status_code == 200, refreshed.text


def test_an_unverified_provider_address_makes_an_unverified_account(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider, verified=False)
    signed = sign_in(client, provider, login)
    assert signed.status_code == 200, signed.text
    assert me(client, signed.json())["emailVerified"] is False


def test_an_existing_account_is_linked_only_when_both_sides_verified_the_address(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider, verified=False)
    address = f"{login}@example.com"
    registered = register(client, address)

    # Neither a provider's unverified claim nor an address nobody confirmed here is enough.
    before = identity_events(client)
    detail = problem(sign_in(client, provider, login), 409)["detail"]
    assert "sign in to it, then link test" in detail
    provider.users[login]["email_verified"] = True
    problem(sign_in(client, provider, login), 409)
    assert identity_events(client) == before

    # Once the owner of the address confirmed it here, the provider's verified address links.
    verify_email(client, owner, registered["id"])
    signed = sign_in(client, provider, login)
    assert signed.status_code == 200, signed.text
    assert signed.json()["userId"] == registered["id"]
    me(client, signed.json())
    assert rows(client, "SELECT user_id FROM account WHERE account_id = %s", f"sub-{login}") == [
        (registered["id"],)
    ]
    # The password still works: linking added a way in, it took none away.
    assert (
        client.post(f"{API}/auth/login", json={"email": address, "password": PASSWORD}).status_code
        == 200
    )


def verify_email(client: Client, owner: dict[str, Any], user_id: str) -> None:
    auth = {"Authorization": f"Bearer {owner['accessToken']}"}
    mail = client.get(f"{API}/admin/mail-outbox", headers=auth).json()
    body = next(
        m["body"] for m in mail if m["userId"] == user_id and m["purpose"] == "EMAIL_VERIFICATION"
    )
    token = body.strip().splitlines()[-1]
    verified = client.post(f"{API}/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text


def test_a_replayed_callback_is_refused(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider)
    authorize_url = start(client)
    browser_key = client.cookies.get("a2n_oauth")
    callback = f"{CALLBACK}?{approve(provider, authorize_url, login)}"
    assert client.get(callback).status_code == 200
    assert client.cookies.get("a2n_oauth") is None  # the callback clears it

    before = identity_events(client)
    assert "expired or was already used" in refused(client.get(callback), "state")
    # Even with the browser's key: an attempt is taken once.
    client.cookies.set("a2n_oauth", browser_key)
    assert "expired or was already used" in refused(client.get(callback), "state")
    client.cookies.clear()
    assert identity_events(client) == before


def test_a_callback_in_another_browser_is_refused_and_recorded(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    """Login CSRF: an attacker's own code and state, pushed on a browser that did not start."""
    login = new_person(provider)
    query = approve(provider, start(client), login)
    state = dict(parse_qsl(query))["state"]
    browser_key = client.cookies.get("a2n_oauth")
    client.cookies.clear()
    before = identity_events(client)

    client.cookies.set("a2n_oauth", "forged")
    message = refused(client.get(f"{CALLBACK}?{query}"), "state")
    client.cookies.clear()
    assert "did not start" in message
    assert identity_events(client) == before + 1  # the security event, nothing else
    # The attempt is spent: its rightful browser cannot use it any more either.
    client.cookies.set("a2n_oauth", browser_key)
    assert "expired or was already used" in refused(client.get(f"{CALLBACK}?{query}"), "state")
    client.cookies.clear()

    mismatches = (
        "SELECT severity, resource_id, description FROM security_event "
        "WHERE event_type = 'OAUTH_STATE_MISMATCH'"
    )
    wait_until(lambda: bool(rows(client, mismatches)))  # once the projector got there
    alerts = rows(client, mismatches)
    assert all(severity == "MEDIUM" and resource == "test" for severity, resource, _ in alerts)
    assert not rows(client, "SELECT 1 FROM account WHERE account_id = %s", f"sub-{login}")
    assert state not in json.dumps(alerts)


def test_a_callback_without_the_cookie_is_refused_and_recorded(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    query = approve(provider, start(client), new_person(provider))
    client.cookies.clear()
    before = identity_events(client)
    assert "did not start" in refused(client.get(f"{CALLBACK}?{query}"), "state")
    assert identity_events(client) == before + 1


@pytest.mark.parametrize("route", ["start", "callback"])
@pytest.mark.parametrize("name", ["nope", "TEST", "x" * 300, "te%00st", "te%0Ast", "%2e%2e"])
def test_an_unknown_provider_is_404(
    client: Client, owner: dict[str, Any], route: str, name: str
) -> None:
    before = identity_events(client)
    response = client.get(f"{API}/auth/oauth/{name}/{route}?state=s&code=c", follow_redirects=False)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in response.headers
    assert identity_events(client) == before


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({}, "state"),
        ({"code": "abc"}, "state"),
        ({"state": "", "code": "abc"}, "state"),
        ({"state": "x" * 5000, "code": "abc"}, "state"),
        ({"state": "a\x00b", "code": "abc"}, "state"),
        ({"state": "a\nb", "code": "abc"}, "state"),
        ({"state": "caf\u00e9", "code": "abc"}, "state"),
        ({"state": "unknown-state", "code": "abc"}, "state"),
        ({"state": "unknown-state", "code": "x" * 5000}, "code"),
        ({"state": "unknown-state", "error": "\x00"}, "error"),
    ],
)
def test_bad_callback_parameters_are_400_and_change_nothing(
    client: Client, owner: dict[str, Any], query: dict[str, str], parameter: str
) -> None:
    before = identity_events(client)
    refused(client.get(f"{CALLBACK}?{urlencode(query)}"), parameter)
    assert identity_events(client) == before


def test_a_refusal_or_a_bad_code_from_the_provider_changes_nothing(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider)
    before = identity_events(client)

    state = dict(parse_qsl(urlsplit(start(client)).query))["state"]
    denied = problem(client.get(f"{CALLBACK}?error=access_denied&state={state}"), 400)
    assert denied["detail"].endswith("did not approve the login: access_denied.")

    query = dict(parse_qsl(approve(provider, start(client), login)))
    tampered = client.get(f"{CALLBACK}?{urlencode({**query, 'code': 'made-up'})}")
    assert "refused the authorization code: invalid_grant" in problem(tampered, 400)["detail"]

    state = dict(parse_qsl(urlsplit(start(client)).query))["state"]
    assert "code" in problem(client.get(f"{CALLBACK}?state={state}"), 400)["detail"]

    assert identity_events(client) == before
    assert not rows(client, "SELECT 1 FROM account WHERE account_id = %s", f"sub-{login}")


def test_start_refuses_other_methods(client: Client, owner: dict[str, Any]) -> None:
    before = identity_events(client)
    for method in ("POST", "PUT", "DELETE"):
        problem(client.request(method, START, content=b'{"x": 1}'), 405)
        problem(client.request(method, CALLBACK), 405)
    assert identity_events(client) == before


def test_a_person_without_a_usable_address_gets_no_account(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    before = identity_events(client)
    for claims in ({"email": None}, {"email": "not an address"}, {"email": "a\u0000@example.com"}):
        login = new_person(provider)
        provider.users[login] |= claims
        if claims["email"] is None:
            del provider.users[login]["email"]
        failed = problem(sign_in(client, provider, login), 400)
        assert "did not share a usable email address" in failed["detail"]
    assert identity_events(client) == before


def test_a_provider_name_with_control_characters_is_not_stored(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider, name="Eve\u0000\u001b[31m")
    signed = sign_in(client, provider, login)
    assert signed.status_code == 200, signed.text
    assert me(client, signed.json())["name"] is None


def test_invite_only_registration_also_holds_for_providers(
    client: Client, owner: dict[str, Any], provider: OIDCProvider, monkeypatch: Any
) -> None:
    linked = new_person(provider)
    assert sign_in(client, provider, linked).status_code == 200
    monkeypatch.setattr(client.app.state.services.identity, "registration", "invite")
    before = identity_events(client)
    refusal = problem(sign_in(client, provider, new_person(provider)), 403)
    assert "invitation" in refusal["detail"]
    assert identity_events(client) == before
    # Accounts already linked still sign in.
    assert sign_in(client, provider, linked).status_code == 200


def test_a_suspended_account_cannot_sign_in_through_its_provider(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider)
    user_id = sign_in(client, provider, login).json()["userId"]
    auth = {"Authorization": f"Bearer {owner['accessToken']}"}
    assert client.post(f"{API}/users/{user_id}/suspend", headers=auth).status_code == 200
    problem(sign_in(client, provider, login), 401)


def test_another_issuer_under_the_same_name_does_not_inherit_links(
    client: Client, owner: dict[str, Any], provider: OIDCProvider, monkeypatch: Any
) -> None:
    """Pointing `test` at another provider must not hand it the accounts linked so far."""
    login = new_person(provider)
    assert sign_in(client, provider, login).status_code == 200
    with running_provider(users={login: _person(login)}, redirect_uris=[CALLBACK_URL]) as impostor:
        monkeypatch.setattr(client.app.state.services.oauth, "providers", a2n_providers(impostor))
        before = identity_events(client)
        failed = problem(sign_in(client, impostor, login), 400)
        assert "linked while the provider had another issuer" in failed["detail"]
        assert identity_events(client) == before


def start_link(client: Client, tokens: dict[str, Any], provider_name: str = "test") -> Any:
    return client.post(
        f"{API}/me/oauth/{provider_name}/link",
        headers={"Authorization": f"Bearer {tokens['accessToken']}"},
    )


def test_a_signed_in_user_links_a_provider_account_and_then_signs_in_with_it(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    person = new_person(provider)
    address = f"{person}@example.com"
    user_id = register(client, address)["id"]
    # The address was never confirmed here, so signing in through the provider cannot link it...
    detail = problem(sign_in(client, provider, person), 409)["detail"]
    assert "POST /api/v1/me/oauth/test/link" in detail

    # ...but its owner, signed in, can.
    started = start_link(client, login(client, address))
    assert started.status_code == 200, started.text
    assert started.headers["cache-control"] == "no-store"
    assert "httponly" in started.headers["set-cookie"].lower()
    linked = client.get(f"{CALLBACK}?{approve(provider, started.json()['url'], person)}")
    assert linked.status_code == 200, linked.text
    assert linked.json()["userId"] == user_id
    me(client, linked.json())
    assert rows(client, "SELECT user_id FROM account WHERE account_id = %s", f"sub-{person}") == [
        (user_id,)
    ]

    again = sign_in(client, provider, person)
    assert again.status_code == 200, again.text
    assert again.json()["userId"] == user_id
    # Linking what is already linked to you changes nothing and signs you in.
    relinked = client.get(
        f"{CALLBACK}?{approve(provider, start_link(client, again.json()).json()['url'], person)}"
    )
    assert relinked.json()["userId"] == user_id
    link = client.app.state.services.identity.app.load(
        AccountLink.id_for("test", f"sub-{person}"), AccountLink
    )
    assert (link.user_id, link.version) == (user_id, 1)


def test_a_provider_account_linked_to_someone_else_stays_there(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    person = new_person(provider)
    first = sign_in(client, provider, person).json()["userId"]
    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    register(client, other)
    started = start_link(client, login(client, other))
    query = approve(provider, started.json()["url"], person)
    before = identity_events(client)
    refusal = problem(client.get(f"{CALLBACK}?{query}"), 409)
    assert "linked to another A2N account" in refusal["detail"]
    assert identity_events(client) == before
    assert rows(client, "SELECT user_id FROM account WHERE account_id = %s", f"sub-{person}") == [
        (first,)
    ]


def test_linking_needs_a_session_and_a_known_provider(
    client: Client, owner: dict[str, Any]
) -> None:
    before = identity_events(client)
    assert client.post(f"{API}/me/oauth/test/link").status_code == 401
    for name in ("nope", "x" * 300, "te%00st"):
        response = start_link(client, owner, name)
        problem(response, 404)
        assert "set-cookie" not in response.headers
    auth = {"Authorization": f"Bearer {owner['accessToken']}"}
    problem(
        client.post(
            f"{API}/me/oauth/test/link",
            headers={**auth, "content-type": "text/plain"},
            content=b"x",
        ),
        415,
    )
    assert identity_events(client) == before
    key = client.post(
        f"{API}/me/api-keys", headers=auth, json={"name": "robot", "scopes": ["workflows:read"]}
    ).json()["key"]
    assert "API key" in problem(start_link(client, {"accessToken": key}), 403)["detail"]


def test_no_code_or_token_is_stored_or_kept(
    client: Client, owner: dict[str, Any], provider: OIDCProvider, redis_url: str
) -> None:
    id_tokens: list[str] = []

    def keep(claims: dict[str, Any]) -> str:
        id_tokens.append(provider.sign(claims))
        return id_tokens[-1]

    provider.id_token_signer = keep
    store = redis.Redis.from_url(redis_url)
    try:
        login = new_person(provider)
        authorize_url = start(client)
        browser_key = client.cookies.get("a2n_oauth")
        pending = dict(parse_qsl(urlsplit(authorize_url).query))
        [attempt_key] = store.keys(ATTEMPT_KEYS + token_hash(pending["state"]))
        attempt = store.get(attempt_key)
        assert attempt is not None
        assert pending["nonce"].encode() not in attempt  # kept sealed
        query = dict(parse_qsl(approve(provider, authorize_url, login)))
        signed = client.get(f"{CALLBACK}?{urlencode(query)}")
        assert signed.status_code == 200, signed.text
        me(client, signed.json())
    finally:
        provider.id_token_signer = None
    assert store.exists(attempt_key) == 0
    access_tokens = list(provider._access_tokens)
    secrets = [query["code"], query["state"], browser_key, provider.client_secret, *id_tokens]
    secrets += access_tokens
    assert id_tokens
    assert access_tokens

    stored = rows(client, "SELECT convert_from(state, 'UTF8') FROM identity_events")
    stored += rows(client, "SELECT new_values::text FROM audit_log")
    stored += rows(client, "SELECT to_jsonb(a)::text FROM account a")
    stored += rows(client, "SELECT to_jsonb(s)::text FROM security_event s")
    text = "\n".join(str(row[0]) for row in stored)
    for secret in secrets:
        assert secret
        assert secret not in text


def test_erasure_unlinks_the_provider_account_which_may_then_sign_up_afresh(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    login = new_person(provider)
    first = sign_in(client, provider, login).json()
    auth = {"Authorization": f"Bearer {owner['accessToken']}"}
    erased = client.post(f"{API}/users/{first['userId']}/erase", headers=auth)
    assert erased.status_code == 200, erased.text
    linked = "SELECT user_id FROM account WHERE account_id = %s"
    assert rows(client, linked, f"sub-{login}") == []
    link = client.app.state.services.identity.app.load(
        AccountLink.id_for("test", f"sub-{login}"), AccountLink
    )
    assert link.user_id is None
    # The same person comes back through the provider: a new account, linked anew.
    again = sign_in(client, provider, login)
    assert again.status_code == 200, again.text
    tokens = again.json()
    assert tokens["userId"] != first["userId"]
    assert me(client, tokens)["email"] == f"{login}@example.com"
    assert rows(client, linked, f"sub-{login}") == [(tokens["userId"],)]


def test_identity_tables_with_accounts_equal_a_rebuild_from_zero(
    client: Client, owner: dict[str, Any], provider: OIDCProvider
) -> None:
    signed = sign_in(client, provider, new_person(provider))
    assert signed.status_code == 200
    me(client, signed.json())
    assert rows(client, "SELECT count(*) FROM account")[0][0] >= 2
    use_key_ring(KeyRing.parse(TEST_MASTER_KEYS))
    result = Rebuilder(db(client), projector_named("identity")).verify()
    assert result.identical, result.differences
