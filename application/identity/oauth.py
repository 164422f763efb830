"""OAuth 2.0 / OpenID Connect login: authorization code flow with PKCE and a verified id_token.

Only OpenID Connect providers are supported: who logged in is read from the id_token, whose
signature is checked against the provider's published keys, so an account is identified by
(issuer, subject), which the provider keeps stable and unique, rather than by an email address
that can change hands.

The client holds no per-login state. `OAuthClient.start` returns the state, nonce and PKCE
verifier, the caller keeps them (a signed cookie, a verification record) and hands them back to
`check_callback` and `OAuthClient.finish`. Nothing here logs, and no error message carries the
client secret, an authorization code or a token: messages may be shown to users and logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import httpx
import jwt

from application.egress import Egress, EgressRefused

DEFAULT_SCOPES = ("openid", "email", "profile")
ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})
"""Asymmetric algorithms only: `none` and HMAC (which would let a public key act as the secret)
are refused before any key is looked at."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_SAFE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")
"""RFC 6749 section 3.3: scope tokens are printable ASCII without space, '"' or '\\'."""
_MAX_SCOPES = 50
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_JWKS_MIN_REFRESH = 30.0
"""Seconds between two fetches of a key set caused by unknown key ids, so tokens with made-up
`kid`s cannot make us hammer the provider; a rotated key is picked up after at most this long."""

ClientAuth = Literal["client_secret_basic", "client_secret_post"]


class OAuthError(Exception):
    """A login through a provider failed. The message is safe to log and to show to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class OAuthProvider:
    """One configured OpenID Connect provider. Endpoints left unset come from discovery."""

    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    jwks_uri: str | None = None
    userinfo_endpoint: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name {self.name!r}: expected 1 to 32 lowercase letters, digits, '-' or '_'"
            )
        _check_url(self.issuer, "issuer")
        if not self.client_id:
            raise ValueError("clientId: must not be empty")
        if not self.client_secret:
            raise ValueError("clientSecret: must not be empty")
        if "openid" not in self.scopes:
            raise ValueError("scopes: must include 'openid' (the id_token says who logged in)")
        for label, url in (
            ("authorizationEndpoint", self.authorization_endpoint),
            ("tokenEndpoint", self.token_endpoint),
            ("jwksUri", self.jwks_uri),
            ("userinfoEndpoint", self.userinfo_endpoint),
        ):
            if url is not None:
                _check_url(url, label)


@dataclass(frozen=True)
class ProviderMetadata:
    """The endpoints in use for a provider: explicit configuration over its discovery document."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    client_auth: ClientAuth


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the user, and what the caller must keep until the provider sends them back.

    `state` is compared with the callback's (`check_callback`), `nonce` with the id_token's, and
    `code_verifier` proves to the token endpoint that the code is redeemed by whoever started.
    """

    provider: str
    url: str
    redirect_uri: str
    state: str
    nonce: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class ExternalIdentity:
    """Who logged in at the provider. Link accounts on (issuer, subject), never on email alone."""

    provider: str
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    picture: str | None
    scope: str | None
    """The scopes granted, space-separated: the token response's, else those requested."""
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)


_JSON_FIELDS = {
    "issuer": "issuer",
    "clientId": "client_id",
    "clientSecret": "client_secret",
    "scopes": "scopes",
    "authorizationEndpoint": "authorization_endpoint",
    "tokenEndpoint": "token_endpoint",
    "jwksUri": "jwks_uri",
    "userinfoEndpoint": "userinfo_endpoint",
}
_REQUIRED = ("issuer", "clientId", "clientSecret")


def parse_providers(raw: str) -> dict[str, OAuthProvider]:
    """Parse A2N_OAUTH_PROVIDERS: `{"google": {"issuer": ..., "clientId": ..., ...}}`.

    Unknown fields are errors, so a misspelt `clientSecert` stops start-up instead of silently
    disabling a login. Messages name the provider and field and never echo the secret.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"expected a JSON object of providers, got invalid JSON at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError('expected a JSON object like {"google": {"issuer": ..., ...}}')
    providers: dict[str, OAuthProvider] = {}
    for name, entry in data.items():
        try:
            providers[name] = _parse_provider(name, entry)
        except ValueError as exc:
            raise ValueError(f"provider {name!r}: {exc}") from None
    return providers


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key!r} appears twice")
        seen[key] = value
    return seen


def _parse_provider(name: str, entry: Any) -> OAuthProvider:
    if not isinstance(entry, dict):
        raise ValueError("expected an object with issuer, clientId and clientSecret")
    unknown = sorted(set(entry) - set(_JSON_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (expected {', '.join(_JSON_FIELDS)})")
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ValueError(f"{missing[0]} is required")
    values: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "scopes":
            values["scopes"] = _parse_scopes(value)
        elif not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key}: expected a non-empty string")
        else:
            values[_JSON_FIELDS[key]] = value.strip()
    return OAuthProvider(name=name, **values)


def _parse_scopes(value: Any) -> tuple[str, ...]:
    scopes = value.split() if isinstance(value, str) else value
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and s and not any(c.isspace() for c in s) for s in scopes)
    ):
        raise ValueError("scopes: expected a list of scope names or one space-separated string")
    return tuple(dict.fromkeys(scopes))


def _check_url(url: str, label: str) -> None:
    """Allow https only, except plain http on the loopback interface for development and tests."""
    parts = urlsplit(url)
    local_http = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    if not (parts.scheme == "https" or local_http) or not parts.hostname or parts.fragment:
        raise ValueError(f"{label}: expected an https URL, got {url!r}")


def pkce_challenge(code_verifier: str) -> str:
    """The S256 code challenge for a verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_callback(params: Mapping[str, str], expected_state: str) -> str:
    """Return the authorization code of the provider's redirect back, after checking its state.

    A state that is not the one this browser was given means the response belongs to another
    login (a forged or replayed callback), so nothing else in it is trusted.
    """
    state = params.get("state") or ""
    if not expected_state or not hmac.compare_digest(
        state.encode("utf-8"), expected_state.encode("utf-8")
    ):
        raise OAuthError("the login response does not belong to this login attempt (bad state)")
    error = params.get("error")
    if error:
        raise OAuthError(f"the provider did not approve the login: {_safe_code(error)}")
    code = params.get("code")
    if not code:
        raise OAuthError("the login response carries no authorization code")
    return code


def _safe_code(value: Any) -> str:
    """A provider-sent error code if it looks like one; free text might echo anything."""
    return value if isinstance(value, str) and _SAFE_CODE.fullmatch(value) else "unexpected error"


@dataclass
class _KeySet:
    fetched_at: float
    keys: list[jwt.PyJWK]


class OAuthClient:
    """Runs the authorization code flow with PKCE against configured OpenID Connect providers.

    Its requests obey `egress` like a workflow's: a provider, or an endpoint its discovery
    document names, on a non-public address is reached only when A2N_EGRESS_ALLOW allows it.

    Thread-safe; meant to live as long as the process so discovery documents and key sets stay
    cached (both are refetched after `cache_ttl` seconds). Blocking: call it from a worker thread.
    """

    def __init__(
        self,
        egress: Egress,
        *,
        timeout: float = 10.0,
        leeway: float = 60.0,
        cache_ttl: float = 3600.0,
    ) -> None:
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._http = httpx.Client(
            timeout=self._timeout,
            follow_redirects=False,
            transport=egress.transport(trust_env=True),
        )
        self._leeway = leeway
        self._cache_ttl = cache_ttl
        self._lock = threading.Lock()
        self._metadata: dict[OAuthProvider, tuple[float, ProviderMetadata]] = {}
        self._key_sets: dict[str, _KeySet] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(
        self,
        provider: OAuthProvider,
        redirect_uri: str,
        *,
        login_hint: str | None = None,
        prompt: str | None = None,
    ) -> AuthorizationRequest:
        """Create state, nonce and a PKCE verifier, and the URL that sends the user to log in."""
        _check_redirect_uri(redirect_uri)
        metadata = self.metadata(provider)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        if prompt:
            params["prompt"] = prompt
        return AuthorizationRequest(
            provider=provider.name,
            url=_with_query(metadata.authorization_endpoint, params),
            redirect_uri=redirect_uri,
            state=state,
            nonce=nonce,
            code_verifier=code_verifier,
        )

    def finish(
        self,
        provider: OAuthProvider,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
    ) -> ExternalIdentity:
        """Redeem the code, verify the id_token it brings, and say who logged in.

        The id_token must be signed (RS256/ES256) by a key in the provider's key set and carry
        this provider's issuer, our client id as audience, an expiry in the future and the nonce
        of this login. Profile claims missing from it are read from the userinfo endpoint.
        """
        if not (code and code_verifier and nonce):
            raise OAuthError("the login cannot finish: code, verifier or nonce is missing")
        metadata = self.metadata(provider)
        tokens = self._redeem(provider, metadata, redirect_uri, code, code_verifier)
        claims = self._verify_id_token(provider, metadata, tokens["id_token"], nonce)
        access_token: str = tokens["access_token"]
        if metadata.userinfo_endpoint and not {"email", "name"} <= claims.keys():
            profile = self._userinfo(provider, metadata.userinfo_endpoint, access_token)
            if profile.get("sub") != claims["sub"]:
                raise OAuthError(f"the userinfo of {provider.name} describes another user")
            claims = {**profile, **claims}
        email = _text(claims.get("email"))
        return ExternalIdentity(
            provider=provider.name,
            issuer=provider.issuer,
            subject=claims["sub"],
            email=email,
            email_verified=email is not None and _truthy(claims.get("email_verified")),
            name=_text(claims.get("name")),
            picture=_text(claims.get("picture")),
            scope=_granted_scope(tokens.get("scope"), provider.scopes),
            access_token=access_token,
            refresh_token=_text(tokens.get("refresh_token")),
        )

    def metadata(self, provider: OAuthProvider) -> ProviderMetadata:
        """The provider's endpoints; discovery runs only for endpoints not configured."""
        if provider.authorization_endpoint and provider.token_endpoint and provider.jwks_uri:
            return ProviderMetadata(
                authorization_endpoint=provider.authorization_endpoint,
                token_endpoint=provider.token_endpoint,
                jwks_uri=provider.jwks_uri,
                userinfo_endpoint=provider.userinfo_endpoint,
                client_auth="client_secret_basic",
            )
        now = time.monotonic()
        with self._lock:
            cached = self._metadata.get(provider)
        if cached is not None and now - cached[0] < self._cache_ttl:
            return cached[1]
        found = self._discover(provider)
        with self._lock:
            self._metadata[provider] = (now, found)
        return found

    def _discover(self, provider: OAuthProvider) -> ProviderMetadata:
        what = f"the OpenID discovery document of {provider.name}"
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = _json_object(self._send("GET", url, what), what)
        if document.get("issuer") != provider.issuer:
            raise OAuthError(
                f"{what} names issuer {str(document.get('issuer'))[:200]!r}, "
                f"not the configured {provider.issuer!r}"
            )

        def endpoint(key: str, configured: str | None) -> str | None:
            value = configured or document.get(key)
            if value is None:
                return None
            try:
                if not isinstance(value, str):
                    raise ValueError(key)
                _check_url(value, key)
            except ValueError:
                raise OAuthError(f"{what} has an invalid {key}") from None
            return value

        def required(key: str, configured: str | None) -> str:
            value = endpoint(key, configured)
            if value is None:
                raise OAuthError(f"{what} has no {key}")
            return value

        methods = document.get("token_endpoint_auth_methods_supported")
        auth_method: ClientAuth = "client_secret_basic"
        if (
            isinstance(methods, list)
            and "client_secret_basic" not in methods
            and "client_secret_post" in methods
        ):
            auth_method = "client_secret_post"
        return ProviderMetadata(
            authorization_endpoint=required(
                "authorization_endpoint", provider.authorization_endpoint
            ),
            token_endpoint=required("token_endpoint", provider.token_endpoint),
            jwks_uri=required("jwks_uri", provider.jwks_uri),
            userinfo_endpoint=endpoint("userinfo_endpoint", provider.userinfo_endpoint),
            client_auth=auth_method,
        )

    def _redeem(
        self,
        provider: OAuthProvider,
        metadata: ProviderMetadata,
        redirect_uri: str,
        code: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        what = f"the token endpoint of {provider.name}"
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if metadata.client_auth == "client_secret_post":
            form |= {"client_id": provider.client_id, "client_secret": provider.client_secret}
        else:
            # RFC 6749 section 2.3.1: form-encode both parts before Basic-encoding them.
            pair = f"{quote_plus(provider.client_id)}:{quote_plus(provider.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        response = self._send("POST", metadata.token_endpoint, what, data=form, headers=headers)
        if response.status_code != 200:
            try:
                error = _safe_code(response.json().get("error"))
            except (ValueError, AttributeError):
                error = f"HTTP {response.status_code}"
            raise OAuthError(f"{what} refused the authorization code: {error}")
        tokens = _json_object(response, what)
        if not isinstance(tokens.get("access_token"), str) or not tokens["access_token"]:
            raise OAuthError(f"{what} returned no access_token")
        token_type = tokens.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise OAuthError(f"{what} returned an unsupported token type")
        if not isinstance(tokens.get("id_token"), str):
            raise OAuthError(f"{what} returned no id_token (is the openid scope granted?)")
        return tokens

    def _verify_id_token(
        self, provider: OAuthProvider, metadata: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        what = f"the id_token from {provider.name}"
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OAuthError(f"{what} is malformed") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise OAuthError(
                f"{what} is signed with {_safe_code(alg)}; only RS256/ES256 are accepted"
            )
        kid = header.get("kid")
        key = self._signing_key(
            provider, metadata.jwks_uri, kid if isinstance(kid, str) else None, alg
        )
        try:
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[alg],
                audience=provider.client_id,
                issuer=provider.issuer,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError(f"{what} has expired") from None
        except jwt.InvalidAudienceError:
            raise OAuthError(f"{what} was issued to another client") from None
        except jwt.InvalidIssuerError:
            raise OAuthError(f"{what} was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise OAuthError(f"{what} has a signature that does not verify") from None
        except jwt.ImmatureSignatureError:
            raise OAuthError(f"{what} is not valid yet") from None
        except jwt.MissingRequiredClaimError as exc:
            raise OAuthError(f"{what} lacks the {_safe_code(exc.claim)} claim") from None
        except jwt.PyJWTError as exc:
            raise OAuthError(f"{what} is invalid ({type(exc).__name__})") from None
        audience = claims["aud"]
        azp = claims.get("azp")
        if (isinstance(audience, list) and len(audience) > 1 and azp is None) or (
            azp is not None and azp != provider.client_id
        ):
            raise OAuthError(f"{what} was issued to another client (azp)")
        sent_nonce = claims.get("nonce")
        if not isinstance(sent_nonce, str) or not hmac.compare_digest(
            sent_nonce.encode("utf-8"), nonce.encode("utf-8")
        ):
            raise OAuthError(f"{what} belongs to another login attempt (bad nonce)")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise OAuthError(f"{what} has no subject")
        return claims

    def _signing_key(
        self, provider: OAuthProvider, jwks_uri: str, kid: str | None, alg: str
    ) -> jwt.PyJWK:
        now = time.monotonic()
        with self._lock:
            key_set = self._key_sets.get(jwks_uri)
        if key_set is None or now - key_set.fetched_at >= self._cache_ttl:
            key_set = self._fetch_keys(provider, jwks_uri)
        key = _pick_key(key_set.keys, kid, alg)
        if key is None and now - key_set.fetched_at >= _JWKS_MIN_REFRESH:
            key = _pick_key(self._fetch_keys(provider, jwks_uri).keys, kid, alg)
        if key is None:
            raise OAuthError(f"no signing key of {provider.name} matches the id_token")
        return key

    def _fetch_keys(self, provider: OAuthProvider, jwks_uri: str) -> _KeySet:
        what = f"the key set of {provider.name}"
        document = _json_object(self._send("GET", jwks_uri, what), what)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise OAuthError(f"{what} has no keys")
        keys = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC"):
                continue  # never a symmetric key: it would turn the signature into a MAC
            try:
                keys.append(jwt.PyJWK(entry))
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # one unusable key must not lock everybody out
        key_set = _KeySet(fetched_at=time.monotonic(), keys=keys)
        with self._lock:
            self._key_sets[jwks_uri] = key_set
        return key_set

    def _userinfo(self, provider: OAuthProvider, url: str, access_token: str) -> dict[str, Any]:
        what = f"the userinfo endpoint of {provider.name}"
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        return _json_object(self._send("GET", url, what, headers=headers), what)

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._http.request(
                method, url, data=data, headers=headers, timeout=self._timeout
            )
        except EgressRefused as refused:
            raise OAuthError(f"could not reach {what}: {refused.message}") from None
        except httpx.HTTPError as exc:
            # The exception's text can name the request; the class says enough (timeout, refused).
            raise OAuthError(f"could not reach {what} ({type(exc).__name__})") from None


def _pick_key(keys: list[jwt.PyJWK], kid: str | None, alg: str) -> jwt.PyJWK | None:
    candidates = [key for key in keys if key.algorithm_name == alg]
    if kid is not None:
        return next((key for key in candidates if key.key_id == kid), None)
    return candidates[0] if len(candidates) == 1 else None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise OAuthError(f"{what} answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise OAuthError(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise OAuthError(f"{what} is not a JSON object")
    return document


def _check_redirect_uri(redirect_uri: str) -> None:
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        raise ValueError(f"redirect_uri: expected an absolute http(s) URL, got {redirect_uri!r}")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _granted_scope(value: Any, requested: tuple[str, ...]) -> str | None:
    """Scopes as RFC 6749 section 5.1 has it: absent means those requested. Tokens that are not
    printable ASCII are dropped, so what reaches a table is plain text."""
    scopes = value.split() if isinstance(value, str) else requested
    kept = [scope for scope in scopes if _SCOPE_TOKEN.fullmatch(scope)][:_MAX_SCOPES]
    return " ".join(kept) or None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _truthy(value: Any) -> bool:
    """Some providers send email_verified as the string "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
