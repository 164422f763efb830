"""The OAuth/OIDC client against a real provider over HTTP: the happy path and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from application.identity.oauth import (
    AuthorizationRequest,
    ExternalIdentity,
    OAuthClient,
    OAuthError,
    OAuthProvider,
    check_callback,
    parse_providers,
    pkce_challenge,
)
from tests.loopback import LOOPBACK_EGRESS
from tests.oidc_provider import OIDCProvider, new_rsa_key, running_provider

REDIRECT_URI = "http://127.0.0.1:8000/api/v1/auth/oauth/test/callback"
USERS = {
    "alice": {
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
        "picture": "https://example.com/alice.png",
    },
    "bob": {"sub": "bob-42", "email": "bob@example.com", "email_verified": False, "name": "Bob"},
}


@pytest.fixture
def oidc_provider() -> Iterator[OIDCProvider]:
    with running_provider(users=USERS) as provider:
        yield provider


@pytest.fixture
def client() -> Iterator[OAuthClient]:
    with OAuthClient(LOOPBACK_EGRESS, timeout=5) as client:
        yield client


def config(provider: OIDCProvider, **changes: Any) -> OAuthProvider:
    values: dict[str, Any] = {
        "name": "test",
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
    }
    return OAuthProvider(**(values | changes))


def authorize(
    client: OAuthClient, provider: OIDCProvider, configured: OAuthProvider, login: str = "alice"
) -> tuple[AuthorizationRequest, str]:
    """Start a login, let the provider approve it, and return the request and the code."""
    request = client.start(configured, REDIRECT_URI, login_hint=login)
    location = provider.approve(request.url)
    assert location.startswith(REDIRECT_URI + "?")
    code = check_callback(dict(parse_qsl(urlsplit(location).query)), request.state)
    return request, code


def login(
    client: OAuthClient, provider: OIDCProvider, login_name: str = "alice", **changes: Any
) -> ExternalIdentity:
    configured = config(provider, **changes)
    request, code = authorize(client, provider, configured, login_name)
    return client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)


def refusal(client: OAuthClient, provider: OIDCProvider, *, nonce: str | None = None) -> OAuthError:
    configured = config(provider)
    request, code = authorize(client, provider, configured)
    with pytest.raises(OAuthError) as caught:
        client.finish(configured, REDIRECT_URI, code, request.code_verifier, nonce or request.nonce)
    return caught.value


def test_code_flow_with_pkce_returns_the_identity(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    configured = config(oidc_provider)
    request = client.start(configured, REDIRECT_URI)
    query = dict(parse_qsl(urlsplit(request.url).query))
    assert request.url.startswith(f"{oidc_provider.issuer}/authorize?")
    assert query == {
        "response_type": "code",
        "client_id": oidc_provider.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": pkce_challenge(request.code_verifier),
        "code_challenge_method": "S256",
    }
    expected = base64.urlsafe_b64encode(hashlib.sha256(request.code_verifier.encode()).digest())
    assert query["code_challenge"] == expected.rstrip(b"=").decode()
    assert 43 <= len(request.code_verifier) <= 128
    assert request.state != request.nonce

    location = oidc_provider.approve(request.url)
    code = check_callback(dict(parse_qsl(urlsplit(location).query)), request.state)
    identity = client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)

    assert identity.provider == "test"
    assert identity.issuer == oidc_provider.issuer
    assert identity.subject == "sub-alice"
    assert identity.email == "alice@example.com"
    assert identity.email_verified is True
    assert identity.name == "Alice Example"
    assert identity.picture == "https://example.com/alice.png"
    assert oidc_provider.access_token_valid(identity.access_token)
    assert identity.refresh_token
    assert oidc_provider.hits["/.well-known/openid-configuration"] == 1
    assert oidc_provider.hits["/userinfo"] == 0


def test_login_hint_picks_the_user(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    identity = login(client, oidc_provider, "bob")
    assert (identity.subject, identity.email, identity.email_verified) == (
        "bob-42",
        "bob@example.com",
        False,
    )
    assert identity.picture is None


def test_two_logins_get_fresh_state_nonce_and_verifier(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    first = client.start(config(oidc_provider), REDIRECT_URI)
    second = client.start(config(oidc_provider), REDIRECT_URI)
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


def test_es256_provider(client: OAuthClient) -> None:
    with running_provider(users=USERS, alg="ES256") as provider:
        assert login(client, provider).subject == "sub-alice"


def test_client_secret_post_when_the_provider_supports_only_that(client: OAuthClient) -> None:
    with running_provider(users=USERS, client_auth_methods=["client_secret_post"]) as provider:
        assert login(client, provider).email == "alice@example.com"


def test_explicit_endpoints_skip_discovery(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    issuer = oidc_provider.issuer
    identity = login(
        client,
        oidc_provider,
        authorization_endpoint=f"{issuer}/authorize",
        token_endpoint=f"{issuer}/token",
        jwks_uri=f"{issuer}/jwks",
        userinfo_endpoint=f"{issuer}/userinfo",
    )
    assert identity.subject == "sub-alice"
    assert oidc_provider.hits["/.well-known/openid-configuration"] == 0


def test_discovery_and_keys_are_cached(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    login(client, oidc_provider)
    login(client, oidc_provider, "bob")
    assert oidc_provider.hits["/.well-known/openid-configuration"] == 1
    assert oidc_provider.hits["/jwks"] == 1


def test_profile_missing_from_the_id_token_comes_from_userinfo(client: OAuthClient) -> None:
    with running_provider(users=USERS, profile_in_id_token=False) as provider:
        identity = login(client, provider)
        assert provider.hits["/userinfo"] == 1
        assert (identity.email, identity.email_verified, identity.name) == (
            "alice@example.com",
            True,
            "Alice Example",
        )
        provider.userinfo_claims = {"sub": "someone-else"}
        with pytest.raises(OAuthError, match="describes another user"):
            login(client, provider)


def test_wrong_code_verifier_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    configured = config(oidc_provider)
    request, code = authorize(client, oidc_provider, configured)
    other_verifier = client.start(configured, REDIRECT_URI).code_verifier
    with pytest.raises(OAuthError, match="refused the authorization code: invalid_grant"):
        client.finish(configured, REDIRECT_URI, code, other_verifier, request.nonce)


def test_reused_code_is_refused_and_revokes_its_tokens(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    configured = config(oidc_provider)
    request, code = authorize(client, oidc_provider, configured)
    identity = client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)
    with pytest.raises(OAuthError, match="invalid_grant"):
        client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)
    assert not oidc_provider.access_token_valid(identity.access_token)


def test_other_redirect_uri_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    configured = config(oidc_provider)
    request, code = authorize(client, oidc_provider, configured)
    with pytest.raises(OAuthError, match="invalid_grant"):
        client.finish(
            configured, "http://127.0.0.1:9/elsewhere", code, request.code_verifier, request.nonce
        )


def test_wrong_client_secret_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    configured = config(oidc_provider)
    request, code = authorize(client, oidc_provider, configured)
    wrong = config(oidc_provider, client_secret="not-the-secret")
    with pytest.raises(OAuthError, match="invalid_client") as caught:
        client.finish(wrong, REDIRECT_URI, code, request.code_verifier, request.nonce)
    assert "not-the-secret" not in str(caught.value)


def test_wrong_nonce_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    error = refusal(client, oidc_provider, nonce="a-nonce-from-another-login")
    assert "bad nonce" in error.message


def test_missing_nonce_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    oidc_provider.id_token_claims = {"nonce": None}
    assert "bad nonce" in refusal(client, oidc_provider).message


def test_expired_id_token_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    now = int(time.time())
    oidc_provider.id_token_claims = {"iat": now - 3600, "exp": now - 600}
    assert "has expired" in refusal(client, oidc_provider).message


def test_id_token_from_the_future_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    now = int(time.time())
    oidc_provider.id_token_claims = {"iat": now + 3600, "exp": now + 7200}
    assert "not valid yet" in refusal(client, oidc_provider).message


def test_id_token_signed_by_another_key_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    forger = new_rsa_key()
    oidc_provider.id_token_signer = lambda claims: oidc_provider.sign(claims, key=forger)
    assert "signature that does not verify" in refusal(client, oidc_provider).message
    oidc_provider.id_token_signer = lambda claims: oidc_provider.sign(
        claims, key=forger, kid="forged-key"
    )
    assert "no signing key" in refusal(client, oidc_provider).message


def test_unsigned_id_token_is_refused(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    oidc_provider.id_token_signer = lambda claims: jwt.encode(claims, "", algorithm="none")
    assert "only RS256/ES256" in refusal(client, oidc_provider).message


def test_hmac_id_token_keyed_with_the_public_key_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    """The classic confusion attack: HS256 with the provider's public key as the secret."""
    public_pem = oidc_provider.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def hs256_with_public_key(claims: dict[str, Any]) -> str:
        def b64(data: bytes) -> bytes:
            return base64.urlsafe_b64encode(data).rstrip(b"=")

        header = {"alg": "HS256", "typ": "JWT", "kid": oidc_provider.kid}
        signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
        signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
        return (signing_input + b"." + b64(signature)).decode()

    oidc_provider.id_token_signer = hs256_with_public_key
    assert "only RS256/ES256" in refusal(client, oidc_provider).message


def test_id_token_for_another_audience_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.id_token_claims = {"aud": "some-other-client"}
    assert "issued to another client" in refusal(client, oidc_provider).message
    oidc_provider.id_token_claims = {
        "aud": [oidc_provider.client_id, "some-other-client"],
        "azp": "some-other-client",
    }
    assert "another client (azp)" in refusal(client, oidc_provider).message


def test_id_token_from_another_issuer_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.id_token_claims = {"iss": "https://evil.example.com"}
    assert "issued by another issuer" in refusal(client, oidc_provider).message


def test_id_token_without_subject_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.id_token_claims = {"sub": None}
    assert "lacks the sub claim" in refusal(client, oidc_provider).message


def test_unreachable_issuer_gives_a_clear_error(client: OAuthClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configured = OAuthProvider(
        name="gone", issuer=f"http://127.0.0.1:{port}", client_id="c", client_secret="s"
    )
    with pytest.raises(OAuthError) as caught:
        client.start(configured, REDIRECT_URI)
    assert caught.value.message == (
        "could not reach the OpenID discovery document of gone (ConnectError)"
    )


def test_failing_discovery_gives_a_clear_error(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.failures["/.well-known/openid-configuration"] = 503
    with pytest.raises(OAuthError, match="discovery document of test answered HTTP 503"):
        client.start(config(oidc_provider), REDIRECT_URI)
    del oidc_provider.failures["/.well-known/openid-configuration"]
    assert client.start(config(oidc_provider), REDIRECT_URI).url  # failures are not cached


def test_discovery_naming_another_issuer_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.discovery_overrides = {"issuer": "https://evil.example.com"}
    with pytest.raises(OAuthError, match=re.escape("names issuer 'https://evil.example.com'")):
        client.start(config(oidc_provider), REDIRECT_URI)


def test_discovery_without_required_endpoint_is_refused(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    oidc_provider.discovery_overrides = {"jwks_uri": None}
    with pytest.raises(OAuthError, match="has no jwks_uri"):
        client.start(config(oidc_provider), REDIRECT_URI)
    oidc_provider.discovery_overrides = {"token_endpoint": "http://example.com/token"}
    with pytest.raises(OAuthError, match="has an invalid token_endpoint"):
        client.start(config(oidc_provider), REDIRECT_URI)


def test_slow_token_endpoint_times_out(oidc_provider: OIDCProvider) -> None:
    with OAuthClient(LOOPBACK_EGRESS, timeout=0.2) as client:
        configured = config(oidc_provider)
        request, code = authorize(client, oidc_provider, configured)
        oidc_provider.delays["/token"] = 1.0
        with pytest.raises(OAuthError, match=r"could not reach the token endpoint .*Timeout"):
            client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)


def test_check_callback() -> None:
    assert check_callback({"state": "abc", "code": "the-code"}, "abc") == "the-code"
    with pytest.raises(OAuthError, match="bad state"):
        check_callback({"state": "xyz", "code": "the-code"}, "abc")
    with pytest.raises(OAuthError, match="bad state"):
        check_callback({"code": "the-code"}, "abc")
    with pytest.raises(OAuthError, match="bad state"):
        check_callback({"state": "", "code": "the-code"}, "")
    with pytest.raises(OAuthError, match="did not approve the login: access_denied"):
        check_callback({"state": "abc", "error": "access_denied"}, "abc")
    with pytest.raises(OAuthError, match="unexpected error"):
        check_callback({"state": "abc", "error": "<script>alert(1)</script>"}, "abc")
    with pytest.raises(OAuthError, match="no authorization code"):
        check_callback({"state": "abc"}, "abc")


def test_user_refusing_at_the_provider(oidc_provider: OIDCProvider, client: OAuthClient) -> None:
    request = client.start(config(oidc_provider), REDIRECT_URI, login_hint="mallory")
    params = dict(parse_qsl(urlsplit(oidc_provider.approve(request.url)).query))
    with pytest.raises(OAuthError, match="access_denied"):
        check_callback(params, request.state)


# -- configuration -------------------------------------------------------------------------


def test_parse_providers() -> None:
    raw = json.dumps(
        {
            "google": {
                "issuer": "https://accounts.google.com",
                "clientId": "id-1",
                "clientSecret": "secret-1",
            },
            "corp": {
                "issuer": "https://login.corp.example/realms/a2n",
                "clientId": "id-2",
                "clientSecret": "secret-2",
                "scopes": "openid email",
                "tokenEndpoint": "https://login.corp.example/token",
            },
            "dev": {
                "issuer": "http://127.0.0.1:5556/dex",
                "clientId": "id-3",
                "clientSecret": "secret-3",
                "scopes": ["openid", "profile", "openid"],
            },
        }
    )
    providers = parse_providers(raw)
    assert list(providers) == ["google", "corp", "dev"]
    assert providers["google"] == OAuthProvider(
        name="google",
        issuer="https://accounts.google.com",
        client_id="id-1",
        client_secret="secret-1",
    )
    assert providers["google"].scopes == ("openid", "email", "profile")
    assert providers["corp"].scopes == ("openid", "email")
    assert providers["corp"].token_endpoint == "https://login.corp.example/token"
    assert providers["corp"].jwks_uri is None
    assert providers["dev"].scopes == ("openid", "profile")
    assert parse_providers("") == {}
    assert parse_providers("  ") == {}
    assert parse_providers("{}") == {}


GOOD = {"issuer": "https://idp.example.com", "clientId": "id", "clientSecret": "hunter2-secret"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "invalid JSON at line 1 column 2"),
        ('["google"]', "expected a JSON object"),
        ('{"google": "https://accounts.google.com"}', "provider 'google': expected an object"),
        (json.dumps({"google": {**GOOD, "clientSecert": "x"}}), "unknown field 'clientSecert'"),
        (
            json.dumps({"google": {k: v for k, v in GOOD.items() if k != "clientSecret"}}),
            "provider 'google': clientSecret is required",
        ),
        (json.dumps({"google": {**GOOD, "clientId": ""}}), "clientId: expected a non-empty"),
        (json.dumps({"google": {**GOOD, "clientSecret": 1234}}), "clientSecret: expected a"),
        (
            json.dumps({"google": {**GOOD, "issuer": "http://idp.example.com"}}),
            "provider 'google': issuer: expected an https URL",
        ),
        (
            json.dumps({"google": {**GOOD, "jwksUri": "ftp://idp.example.com/keys"}}),
            "jwksUri: expected an https URL",
        ),
        (json.dumps({"google": {**GOOD, "scopes": ["email"]}}), "must include 'openid'"),
        (json.dumps({"google": {**GOOD, "scopes": []}}), "scopes: expected a list"),
        (json.dumps({"google": {**GOOD, "scopes": [1]}}), "scopes: expected a list"),
        (json.dumps({"Google Login": GOOD}), "provider 'Google Login': name 'Google Login'"),
        ('{"google": {}, "google": {}}', "'google' appears twice"),
    ],
)
def test_parse_providers_names_the_bad_field(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_providers(raw)
    assert "hunter2" not in str(caught.value)
    assert "1234" not in str(caught.value)


# -- secrets stay out of text --------------------------------------------------------------


def test_secrets_never_appear_in_repr_or_errors(
    oidc_provider: OIDCProvider, client: OAuthClient
) -> None:
    configured = config(oidc_provider)
    secret = oidc_provider.client_secret
    assert secret not in repr(configured)
    assert secret not in str(configured)

    request, code = authorize(client, oidc_provider, configured)
    assert request.code_verifier not in repr(request)
    assert request.code_verifier not in str(request)

    identity = client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)
    assert identity.refresh_token is not None
    for text in (repr(identity), str(identity)):
        assert identity.access_token not in text
        assert identity.refresh_token not in text

    messages: list[OAuthError] = []
    wrong_secret = config(oidc_provider, client_secret=secret + "-wrong")
    used_code = code
    leaked_values = [secret, used_code, request.code_verifier, identity.access_token]
    attempts: list[Callable[[AuthorizationRequest, str], object]] = [
        # A reused code, a wrong nonce, a wrong client secret.
        lambda req, _code: client.finish(
            configured, REDIRECT_URI, used_code, req.code_verifier, req.nonce
        ),
        lambda req, code: client.finish(configured, REDIRECT_URI, code, req.code_verifier, "x"),
        lambda req, code: client.finish(
            wrong_secret, REDIRECT_URI, code, req.code_verifier, req.nonce
        ),
    ]
    for attempt in attempts:
        request, code = authorize(client, oidc_provider, configured)
        leaked_values += [code, request.code_verifier]
        with pytest.raises(OAuthError) as caught:
            attempt(request, code)
        messages.append(caught.value)

    # An id_token refused after the code was redeemed, when the provider has handed out tokens.
    oidc_provider.id_token_claims = {"aud": "other"}
    request, code = authorize(client, oidc_provider, configured)
    leaked_values += [code, request.code_verifier]
    with pytest.raises(OAuthError) as caught:
        client.finish(configured, REDIRECT_URI, code, request.code_verifier, request.nonce)
    messages.append(caught.value)

    assert [m.message.split(": ")[-1] for m in messages[:3]] == [
        "invalid_grant",
        "the id_token from test belongs to another login attempt (bad nonce)",
        "invalid_client",
    ]
    for error in messages:
        text = f"{error} {error!r} {error.args}"
        for leaked in leaked_values:
            assert leaked not in text
        assert error.__cause__ is None
