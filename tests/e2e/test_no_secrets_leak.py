"""No secret leaks out of a running service: not into its logs, its stored events and tables, nor
into any response other than the one that hands the secret to its owner.

`a2n up` runs as a real process with debug logging; every identity flow that handles a secret is
driven over HTTP (sign-up, sign-in, refresh rotation, API keys, two-factor sign-in with a code
and with a recovery code, password reset, email verification, OAuth sign-in against a local OpenID
provider, hostile bodies carrying the password). Then its whole output and a text dump of every
table are scanned for the plaintext of each secret.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import psycopg
import pyotp
from psycopg import sql

from tests.api.conftest import TEST_MASTER_KEYS, TEST_SECRET_KEY
from tests.api.test_two_factor import next_code
from tests.e2e.test_up import ROOT, free_port, wait_for_health
from tests.http_receiver import Receiver, running_receiver
from tests.oidc_provider import OIDCProvider, running_provider

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "an entirely different passphrase"
WRONG_PASSWORD = "not the password at all, sorry"
# Kept in the outbox by design until sent: the reset and verification links live there.
TABLES_HOLDING_MAIL = {"mail_outbox"}
SLACK_TOKEN = uuid.uuid4().hex
HOOK_TOKEN = uuid.uuid4().hex
HOOK_SECRET = uuid.uuid4().hex


@dataclass
class Service:
    """A running `a2n up`: where it answers, every response body it gave, and (once stopped)
    everything it wrote to stdout and stderr."""

    base: str
    database_url: str
    http: httpx.Client
    bodies: list[str] = field(default_factory=list)
    output: str = ""

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, f"{self.base}/api/v1{path}", **kwargs)
        self.bodies.append(response.text)
        return response

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.is_success, response.text
        return response.json() if response.content else None


@contextmanager
def running_up(env: dict[str, str], base: str, database_url: str) -> Iterator[Service]:
    """`a2n up` with `env`, until the block ends; then its output is in `Service.output`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "up"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("A2N_")}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with httpx.Client(timeout=10) as http:
        service = Service(base, database_url, http)
        try:
            wait_for_health(base, process, 60)
            yield service
        finally:
            process.send_signal(signal.SIGTERM)
            service.output = process.communicate(timeout=30)[0]


def dump_tables(database_url: str) -> str:
    """Every row of every table as text; event payloads (bytea) decoded as the JSON they hold."""
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        dumped = []
        for (table,) in tables:
            if table in TABLES_HOLDING_MAIL:
                continue
            rows = conn.execute(
                sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(sql.Identifier(table))
            ).fetchall()
            dumped += [f"{table}: {row[0]}" for row in rows]
            if table.endswith("_events"):
                rows = conn.execute(
                    sql.SQL("SELECT convert_from(state, 'UTF8') FROM {}").format(
                        sql.Identifier(table)
                    )
                ).fetchall()
                dumped += [f"{table}: {row[0]}" for row in rows]
    return "\n".join(dumped)


def test_no_secret_reaches_logs_events_tables_or_other_responses(
    make_database: Callable[..., str], redis_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database_url = make_database()
    with (
        running_provider(redirect_uris=[f"{base}/api/v1/auth/oauth/test/callback"]) as provider,
        running_receiver(statuses=[404]) as receiver,
    ):
        providers = {
            "test": {
                "issuer": provider.issuer,
                "clientId": provider.client_id,
                "clientSecret": provider.client_secret,
            }
        }
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "A2N_PORT": str(port),
            "A2N_PUBLIC_URL": base,
            "A2N_LOG_LEVEL": "debug",
            "A2N_RATE_LIMITS": "off",
            "A2N_SECRET_KEY": TEST_SECRET_KEY,
            "A2N_MASTER_KEYS": TEST_MASTER_KEYS,
            "A2N_DB_POOL_MAX": "4",
            "A2N_OAUTH_PROVIDERS": json.dumps(providers),
            "A2N_EGRESS_ALLOW": "127.0.0.0/8",  # the provider listens on 127.0.0.1
            # Notification channels whose URLs carry tokens (one answers 404, recorded).
            "A2N_NOTIFY_SLACK_URL": receiver.url(f"/services/T0/B0/{SLACK_TOKEN}"),
            "A2N_NOTIFY_WEBHOOK_URL": receiver.url(f"/hooks/{HOOK_TOKEN}?key={HOOK_TOKEN}"),
            "A2N_NOTIFY_WEBHOOK_SECRET": HOOK_SECRET,
            "A2N_NOTIFY_POLL_INTERVAL": "0.2",
        }
        with running_up(env, base, database_url) as service:
            issued, never_shown = drive_every_secret_through(service, provider)
            notify_through_tokened_urls(service, receiver, issued)
    never_shown |= {
        SLACK_TOKEN: "Slack webhook token",
        HOOK_TOKEN: "webhook URL token",
        HOOK_SECRET: "webhook signing secret",
        TEST_SECRET_KEY: "A2N_SECRET_KEY",
        TEST_MASTER_KEYS.split(":", 1)[1]: "master key",
        provider.client_secret: "OAuth client secret",
    }
    stored = dump_tables(database_url)
    assert '"event": "request"' in service.output  # debug logging was on and captured
    assert '"sealed_secret"' in stored  # the dump did read the events of the 2FA enrolment
    for secret, what in {**issued, **never_shown}.items():
        assert secret not in service.output, f"the {what} appears in the log"
        assert secret not in stored, f"the {what} is stored in clear"
    for secret, what in never_shown.items():
        assert not any(secret in body for body in service.bodies), f"a response shows the {what}"
    for secret, what in issued.items():
        showing = sum(secret in body for body in service.bodies)
        assert showing == 1, f"the {what} appears in {showing} responses, not only where issued"


def notify_through_tokened_urls(
    service: Service, receiver: Receiver, issued: dict[str, str]
) -> None:
    """Send a test notification on each URL channel (the owner signs in again) and wait until
    both calls arrived; the first is answered 404, so a failure is recorded too."""
    owner = service.ok(
        "POST", "/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
    )
    issued[owner["accessToken"]] = "owner access token (notifications)"
    issued[owner["refreshToken"]] = "owner refresh token (notifications)"
    headers = {"Authorization": f"Bearer {owner['accessToken']}"}
    for channel in ("slack", "webhook"):
        service.ok("POST", "/admin/notifications/test", headers=headers, json={"channel": channel})
    deadline = time.monotonic() + 30
    while len(receiver.requests) < 2:
        assert time.monotonic() < deadline, receiver.requests
        time.sleep(0.05)


def drive_every_secret_through(
    service: Service, provider: OIDCProvider
) -> tuple[dict[str, str], dict[str, str]]:
    """Run each flow that handles a secret. Return the secrets handed to their owner in exactly
    one response, and those no response may show, each mapped to what it is."""
    issued: dict[str, str] = {}
    never_shown = {
        PASSWORD: "password",
        NEW_PASSWORD: "new password",
        WRONG_PASSWORD: "wrong password",
    }

    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['accessToken']}"}

    def keep_tokens(tokens: dict[str, Any], who: str) -> dict[str, Any]:
        issued[tokens["accessToken"]] = f"{who} access token"
        issued[tokens["refreshToken"]] = f"{who} refresh token"
        return tokens

    def sign_in(email: str, password: str, who: str) -> dict[str, Any]:
        return keep_tokens(
            service.ok("POST", "/auth/login", json={"email": email, "password": password}), who
        )

    def mailed_token(owner: dict[str, Any], user_id: str, purpose: str) -> str:
        # Read without recording: the outbox hands tokens to the OWNER by design.
        mail = service.http.get(f"{service.base}/api/v1/admin/mail-outbox", headers=bearer(owner))
        body = next(
            m["body"] for m in mail.json() if m["userId"] == user_id and m["purpose"] == purpose
        )
        token: str = body.strip().splitlines()[-1]
        return token

    # The OWNER and a user with passwords; a refresh rotation; a failed sign-in.
    owner_email, user_email = "owner@example.com", f"u-{uuid.uuid4().hex[:8]}@example.com"
    registered_owner = service.ok(
        "POST", "/auth/register", json={"email": owner_email, "password": PASSWORD}
    )
    owner = sign_in(owner_email, PASSWORD, "owner")
    registered = service.ok(
        "POST", "/auth/register", json={"email": user_email, "password": PASSWORD}
    )
    user = sign_in(user_email, PASSWORD, "user")
    refreshed = service.ok("POST", "/auth/refresh", json={"refreshToken": user["refreshToken"]})
    user = keep_tokens(refreshed, "user")
    wrong = {"email": user_email, "password": WRONG_PASSWORD}
    assert service.call("POST", "/auth/login", json=wrong).status_code == 401
    # Hostile bodies carrying the password where it does not belong.
    for hostile in (
        {"email": user_email, "password": PASSWORD, "extra": PASSWORD},
        {"email": PASSWORD, "password": PASSWORD},
        {"email": user_email, "password": [PASSWORD]},
    ):
        assert service.call("POST", "/auth/login", json=hostile).status_code in (400, 401, 422)

    # Email verification and password reset by mailed, single-use token.
    verification = mailed_token(owner, registered["id"], "EMAIL_VERIFICATION")
    never_shown[verification] = "email verification token"
    service.ok("POST", "/auth/verify-email", json={"token": verification})
    service.ok("POST", "/auth/password/forgot", json={"email": user_email})
    reset = mailed_token(owner, registered["id"], "PASSWORD_RESET")
    never_shown[reset] = "password reset token"
    service.ok("POST", "/auth/password/reset", json={"token": reset, "password": NEW_PASSWORD})
    user = sign_in(user_email, NEW_PASSWORD, "user")

    # An API key, used both ways.
    scopes = {"name": "ci", "scopes": ["workflows:read"]}
    key = service.ok("POST", "/me/api-keys", headers=bearer(user), json=scopes)["key"]
    issued[key] = "API key"
    service.ok("GET", "/workflows", headers={"X-API-Key": key})
    service.ok("GET", "/workflows", headers={"Authorization": f"Bearer {key}"})

    # Two-factor sign-in: with a code, then with a recovery code.
    secret = service.ok("POST", "/me/2fa/setup", headers=bearer(user))["secret"]
    issued[secret] = "TOTP secret"
    totp = pyotp.TOTP(secret)
    confirmed = service.ok(
        "POST", "/me/2fa/confirm", headers=bearer(user), json={"code": totp.now()}
    )
    for code in confirmed["recoveryCodes"]:
        issued[code] = "recovery code"
    for second_factor in (next_code(totp), confirmed["recoveryCodes"][0]):
        credentials = {"email": user_email, "password": NEW_PASSWORD}
        challenge = service.ok("POST", "/auth/login", json=credentials)["challenge"]
        issued[challenge] = "two-factor challenge"
        step = {"challenge": challenge, "code": second_factor}
        keep_tokens(service.ok("POST", "/auth/login/2fa", json=step), "two-factor user")

    # Credentials: created, replaced, validated, shared, listed, rotated; hostile bodies too.
    api_key, replaced = f"sk_live_{uuid.uuid4().hex}", f"sk_live_{uuid.uuid4().hex}"
    password_field = f"pw-{uuid.uuid4().hex}"
    never_shown |= {
        api_key: "credential API key",
        replaced: "replaced credential API key",
        password_field: "credential password",
    }
    body = {"name": "Stripe", "type": "API_KEY", "data": {"apiKey": api_key}}
    credential = service.ok("POST", "/credentials", headers=bearer(user), json=body)
    path = f"/credentials/{credential['id']}"
    service.ok("PUT", f"{path}/data", headers=bearer(user), json={"data": {"apiKey": replaced}})
    service.ok("PATCH", path, headers=bearer(user), json={"notes": "rotate monthly"})
    service.ok("POST", f"{path}/validate", headers=bearer(user))
    shared = {"userId": registered_owner["id"], "permission": "USE", "usageLimit": 5}
    position = service.ok("POST", f"{path}/shares", headers=bearer(user), json=shared)["position"]
    seen = {**bearer(user), "A2N-Min-Position": str(position)}
    for readable in (path, "/credentials", f"{path}/shares", f"{path}/usage"):
        service.ok("GET", readable, headers=seen)
    service.ok("POST", "/admin/credentials/rotate-key", headers=bearer(owner))
    basic = {"username": "ann", "password": password_field}
    for hostile in (
        {"name": "x", "type": "BASIC_AUTH", "data": {**basic, "extra": password_field}},
        {"name": "x", "type": "BASIC_AUTH", "data": {"username": "ann", "pass": password_field}},
        {"name": password_field, "type": "NOPE", "data": basic},
        {"name": "x", "type": password_field, "data": basic},
        {"name": "x", "type": "BASIC_AUTH", "data": basic, "secret": password_field},
    ):
        refused = service.call("POST", "/credentials", headers=bearer(user), json=hostile)
        assert refused.status_code == 422, refused.text

    # OAuth sign-in: the browser's cookie, the code and state, the provider's tokens.
    id_tokens: list[str] = []

    def keep_id_token(claims: dict[str, Any]) -> str:
        id_tokens.append(provider.sign(claims))
        return id_tokens[-1]

    provider.id_token_signer = keep_id_token
    started = service.http.get(f"{service.base}/api/v1/auth/oauth/test/start")
    assert started.status_code == 302, started.text
    callback = urlsplit(provider.approve(f"{started.headers['location']}&login_hint=alice"))
    signed_in = service.call("GET", f"/auth/oauth/test/callback?{callback.query}")
    assert signed_in.status_code == 200, signed_in.text
    keep_tokens(signed_in.json(), "OAuth user")
    query = dict(parse_qsl(callback.query))
    never_shown[query["code"]] = "OAuth code"
    never_shown[query["state"]] = "OAuth state"
    never_shown[started.cookies["a2n_oauth"]] = "OAuth browser cookie"
    assert id_tokens
    assert provider._access_tokens
    never_shown |= dict.fromkeys(id_tokens, "OpenID id_token")
    never_shown |= dict.fromkeys(provider._access_tokens, "provider access token")
    return issued, never_shown
