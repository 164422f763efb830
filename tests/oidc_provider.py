"""A small but real OpenID Connect provider for tests, on 127.0.0.1 in a thread.

It speaks HTTP like a hosted provider does (discovery, authorize, token, jwks, userinfo), checks
what a strict provider checks (client credentials, redirect_uri, PKCE S256, single-use codes) and
signs id_tokens with its own generated key, so the client is tested against the protocol rather
than against mocks of itself. Knobs on `OIDCProvider` make it misbehave on purpose.

    with running_provider(users={"alice": {"email": "alice@example.com"}}) as provider:
        provider.issuer, provider.client_id, provider.client_secret
        location = provider.approve(authorization_url)  # the redirect back, with code and state
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from application.identity.oauth import OAuthProvider, parse_providers

DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
        "picture": "https://example.com/alice.png",
    }
}
CODE_TTL = 60
TOKEN_TTL = 300
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")

Signer = Callable[[dict[str, Any]], str]


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    login: str
    scopes: tuple[str, ...]
    issued_at: float
    access_tokens: list[str] = field(default_factory=list)


class OIDCProvider:
    """State and behaviour of the provider; the HTTP handler only parses and answers.

    Knobs tests may set between requests:
    - `id_token_claims`: merged into every id_token issued (a value of None removes the claim);
    - `id_token_signer`: replaces `sign` for id_tokens (forged keys, other algorithms);
    - `discovery_overrides`: merged into the discovery document (None removes a key);
    - `userinfo_claims`: merged into userinfo answers;
    - `failures`: path -> HTTP status answered instead of the real response;
    - `delays`: path -> seconds to sleep before answering.
    `hits` counts requests per path.
    """

    def __init__(
        self,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        client_id: str = "a2n-test-client",
        client_secret: str | None = None,
        alg: str = "RS256",
        client_auth_methods: Sequence[str] = ("client_secret_basic", "client_secret_post"),
        redirect_uris: Sequence[str] | None = None,
        profile_in_id_token: bool = True,
    ) -> None:
        self.users = {login: dict(claims) for login, claims in (users or DEFAULT_USERS).items()}
        self.client_id = client_id
        self.client_secret = client_secret or "s3cret-" + secrets.token_urlsafe(24)
        self.alg = alg
        self.client_auth_methods = tuple(client_auth_methods)
        self.redirect_uris = None if redirect_uris is None else tuple(redirect_uris)
        self.profile_in_id_token = profile_in_id_token
        self.kid = "test-" + secrets.token_hex(4)
        self.private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" else new_rsa_key()
        )
        self.id_token_claims: dict[str, Any] = {}
        self.id_token_signer: Signer | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.userinfo_claims: dict[str, Any] = {}
        self.failures: dict[str, int] = {}
        self.delays: dict[str, float] = {}
        self.hits: Counter[str] = Counter()
        self.issuer = ""  # set once the server has its port
        self._grants: dict[str, _Grant] = {}
        self._used_codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    # -- helpers for tests ------------------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: Any = None,
        alg: str | None = None,
        kid: str | None = None,
    ) -> str:
        """Sign claims as this provider would (or with another key, to forge)."""
        return jwt.encode(
            dict(claims),
            key if key is not None else self.private_key,
            algorithm=alg or self.alg,
            headers={"kid": kid or self.kid},
        )

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(
            jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.private_key.public_key())
        )
        jwk |= {"kid": self.kid, "use": "sig", "alg": self.alg}
        return {"keys": [jwk]}

    def approve(self, authorization_url: str) -> str:
        """Visit the authorization URL like a browser whose user approves; return the redirect."""
        response = httpx.get(authorization_url, follow_redirects=False, timeout=5)
        if response.status_code != 302:
            raise AssertionError(f"authorize answered {response.status_code}: {response.text}")
        return response.headers["location"]

    def access_token_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._access_tokens

    # -- endpoints ----------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": list(self.client_auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "picture", "nonce"],
        }
        return _merge(document, self.discovery_overrides)

    def authorize(self, query: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        """Auto-approve as the user named by `login_hint` (the first user when there is none)."""
        client_id = query.get("client_id")
        redirect_uri = query.get("redirect_uri", "")
        if client_id != self.client_id:
            return 400, {}, "unknown client_id"
        if not redirect_uri.startswith(("http://", "https://")) or (
            self.redirect_uris is not None and redirect_uri not in self.redirect_uris
        ):
            return 400, {}, "redirect_uri is not registered"

        def back(params: dict[str, str]) -> tuple[int, dict[str, str], str]:
            if query.get("state"):
                params["state"] = query["state"]
            separator = "&" if "?" in redirect_uri else "?"
            return 302, {"Location": redirect_uri + separator + urlencode(params)}, ""

        scopes = tuple(query.get("scope", "").split())
        if query.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if "openid" not in scopes:
            return back({"error": "invalid_scope"})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return back({"error": "invalid_request", "error_description": "PKCE S256 required"})
        login = query.get("login_hint") or next(iter(self.users))
        if login not in self.users:
            return back({"error": "access_denied"})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=client_id,
                redirect_uri=redirect_uri,
                code_challenge=query["code_challenge"],
                nonce=query.get("nonce"),
                login=login,
                scopes=scopes,
                issued_at=time.time(),
            )
        return back({"code": code})

    def token(self, form: Mapping[str, str], authorization: str | None) -> tuple[int, Any]:
        client = self._authenticate(form, authorization)
        if client is None:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        code = form.get("code", "")
        with self._lock:
            grant = self._grants.pop(code, None)
            if grant is None:
                reused = self._used_codes.get(code)
                if reused is not None:  # RFC 6749 4.1.2: revoke what the code already issued
                    for token in reused.access_tokens:
                        self._access_tokens.pop(token, None)
                return 400, {"error": "invalid_grant", "error_description": "unknown code"}
            self._used_codes[code] = grant
        if grant.client_id != client or time.time() - grant.issued_at > CODE_TTL:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            _s256(verifier), grant.code_challenge
        ):
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            grant.access_tokens.append(access_token)
            self._access_tokens[access_token] = (grant.login, grant.scopes)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self._subject(grant.login),
            "aud": self.client_id,
            "iat": now,
            "exp": now + TOKEN_TTL,
            "auth_time": int(grant.issued_at),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if self.profile_in_id_token:
            claims |= self._profile(grant.login, grant.scopes)
        claims = _merge(claims, self.id_token_claims)
        id_token = (self.id_token_signer or self.sign)(claims)
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL,
            "refresh_token": secrets.token_urlsafe(32),
            "id_token": id_token,
            "scope": " ".join(grant.scopes),
        }

    def userinfo(self, authorization: str | None) -> tuple[int, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        with self._lock:
            found = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if found is None:
            return 401, {"error": "invalid_token"}
        login, scopes = found
        claims = {"sub": self._subject(login), **self._profile(login, scopes)}
        return 200, _merge(claims, self.userinfo_claims)

    # -- internals ----------------------------------------------------------------------------

    def _authenticate(self, form: Mapping[str, str], authorization: str | None) -> str | None:
        """The client id if its credentials check out by one allowed method, else None."""
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            if "client_secret_basic" not in self.client_auth_methods or "client_secret" in form:
                return None
            try:
                pair = base64.b64decode(encoded, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            raw_id, _, raw_secret = pair.partition(":")
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        elif "client_secret" in form:
            if "client_secret_post" not in self.client_auth_methods:
                return None
            client_id, secret = form.get("client_id", ""), form["client_secret"]
        else:
            return None
        if client_id != self.client_id or not hmac.compare_digest(
            secret.encode(), self.client_secret.encode()
        ):
            return None
        return client_id

    def _subject(self, login: str) -> str:
        return str(self.users[login].get("sub", f"sub-{login}"))

    def _profile(self, login: str, scopes: Sequence[str]) -> dict[str, Any]:
        user = self.users[login]
        profile: dict[str, Any] = {}
        if "email" in scopes and "email" in user:
            profile["email"] = user["email"]
            profile["email_verified"] = user.get("email_verified", False)
        if "profile" in scopes:
            profile |= {k: user[k] for k in ("name", "picture") if k in user}
        return profile


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _handler(provider: OIDCProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            provider.hits[path] += 1
            if provider.stopping.wait(provider.delays.get(path, 0)):
                return  # the provider is shutting down: let the client's connection drop
            if path in provider.failures:
                self._answer(provider.failures[path], {"error": "temporarily_unavailable"})
                return
            query = dict(parse_qsl(url.query))
            authorization = self.headers.get("Authorization")
            if self.command == "GET" and path == "/.well-known/openid-configuration":
                self._answer(200, provider.discovery())
            elif self.command == "GET" and path == "/jwks":
                self._answer(200, provider.jwks())
            elif self.command == "GET" and path == "/authorize":
                status, headers, text = provider.authorize(query)
                self._answer(status, text, headers)
            elif self.command == "POST" and path == "/token":
                if self.headers.get("Content-Type", "").split(";")[0] != (
                    "application/x-www-form-urlencoded"
                ):
                    self._answer(400, {"error": "invalid_request"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                self._answer(*provider.token(form, authorization))
            elif self.command == "GET" and path == "/userinfo":
                self._answer(*provider.userinfo(authorization))
            else:
                self._answer(404, {"error": "not_found"})

        def _answer(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is not an error; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def running_provider(
    users: Mapping[str, Mapping[str, Any]] | None = None, **options: Any
) -> Iterator[OIDCProvider]:
    """Serve an `OIDCProvider` on 127.0.0.1 with an ephemeral port until the block ends.

    `users` maps a login (what `login_hint` names) to its claims: email, email_verified, name,
    picture and optionally sub (default `sub-<login>`). `options` go to `OIDCProvider`.
    """
    provider = OIDCProvider(users, **options)
    server = _Server(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield provider
    finally:
        provider.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def a2n_providers(provider: OIDCProvider, name: str = "test") -> Mapping[str, OAuthProvider]:
    """A2N_OAUTH_PROVIDERS naming `provider` as `name`."""
    entry = {
        "issuer": provider.issuer,
        "clientId": provider.client_id,
        "clientSecret": provider.client_secret,
    }
    return parse_providers(json.dumps({name: entry}))
