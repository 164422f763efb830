"""Who may call a webhook: the trigger's `auth` checked against a secret of its owner's.

Modes (the trigger's `auth.mode`):
- `none`: anyone who knows the URL.
- `header`: header `auth.headerName` must carry the credential's token exactly.
- `basic`: `Authorization: Basic` with the credential's user name and password.
- `hmac`: header `auth.headerName` carries the hex HMAC (`auth.algorithm`, sha256 by default;
  the hex may be prefixed `sha256=`) of `timestamp + "." + raw body`, keyed with the credential's
  secret, where `timestamp` is the Unix time in header `auth.timestampHeader`. A timestamp more
  than five minutes away is refused, and so is a signature already accepted within that window
  (a replay), so a captured request cannot be sent again.

Secrets are compared in constant time and never logged, echoed or stored. They come from a
`WebhookSecrets` (the credentials context: the credential's data fields, for the workflow's
owner); a mode that needs one refuses every request when it cannot be had (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from application.credentials.vault import CredentialVault
from application.crypto import DecryptionFailed
from application.errors import NotFound
from domain.credentials.credential import CredentialUnavailable
from domain.workflows.nodes.triggers import DEFAULT_TIMESTAMP_HEADER

log = structlog.get_logger("a2n.webhooks")

REPLAY_WINDOW_SECONDS = 300
TOKEN_FIELDS = ("apiKey", "token", "value", "secret")
"""Credential data fields that hold a header token, first found wins."""
SECRET_FIELDS = ("secret", "apiKey", "token")
"""Credential data fields that hold an HMAC secret, first found wins."""
_DIGESTS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class WebhookSecrets(Protocol):
    """The data fields of a credential, for its user; None when there is none to be had (no
    such credential, not theirs, or no credential store)."""

    def secret(self, owner_id: str, credential_id: str) -> Mapping[str, str] | None: ...


class VaultSecrets:
    """A webhook's credential opened through the credential vault for the workflow's owner
    (each check is a recorded use, like a node's); None when it cannot be used, with a log line
    saying why (never the secret)."""

    def __init__(self, vault: CredentialVault) -> None:
        self.vault = vault

    def secret(self, owner_id: str, credential_id: str) -> Mapping[str, str] | None:
        try:
            opened = self.vault.use(owner_id, credential_id, execution_id=None, node_id=None)
        except (NotFound, CredentialUnavailable, DecryptionFailed) as refused:
            log.warning(
                "webhook_secret_unavailable",
                credential_id=credential_id,
                reason=type(refused).__name__,
            )
            return None
        return {str(k): str(v) for k, v in opened["data"].items()}


class ReplayGuard(Protocol):
    """Remembers keys for a while: `first_use` is True only the first time within `ttl`."""

    def first_use(self, key: str, ttl: float) -> bool: ...


class Refused(Exception):
    """The request did not authenticate; the message says why without any secret."""

    def __init__(self, message: str, *, basic: bool = False) -> None:
        super().__init__(message)
        self.basic = basic


@dataclass(frozen=True)
class Signed:
    """What a webhook request offers to authenticate with."""

    headers: Mapping[str, str]  # lower-cased names
    body: bytes


@dataclass
class WebhookAuth:
    """Checks requests against their trigger's auth config."""

    secrets: WebhookSecrets
    replays: ReplayGuard
    clock: Callable[[], float] = time.time

    def check(self, auth: Mapping[str, Any], owner_id: str, scope: str, request: Signed) -> None:
        """Raise Refused unless `request` satisfies `auth`. `scope` (the trigger) keeps one
        trigger's accepted signatures apart from another's."""
        mode = auth.get("mode", "none")
        if mode == "none":
            return
        data = self.secrets.secret(owner_id, str(auth.get("credentialId")))
        if mode == "basic":
            _basic(data, request.headers.get("authorization", ""))
        elif mode == "header":
            given = request.headers.get(str(auth["headerName"]).lower())
            _header(data, given)
        elif mode == "hmac":
            self._hmac(auth, data, scope, request)
        else:
            raise Refused(f"unknown auth mode {mode!r}")

    def _hmac(
        self, auth: Mapping[str, Any], data: Mapping[str, str] | None, scope: str, request: Signed
    ) -> None:
        header = str(auth["headerName"]).lower()
        stamp_header = str(auth.get("timestampHeader", DEFAULT_TIMESTAMP_HEADER)).lower()
        algorithm = str(auth.get("algorithm", "sha256"))
        given = request.headers.get(header, "").strip()
        stamp = request.headers.get(stamp_header, "").strip()
        if not given or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise Refused(f"send the signature in {header} and the Unix time in {stamp_header}")
        if abs(self.clock() - int(stamp)) > REPLAY_WINDOW_SECONDS:
            raise Refused(f"the timestamp is more than {REPLAY_WINDOW_SECONDS} seconds away")
        secret = _field(data, SECRET_FIELDS)
        signed = stamp.encode() + b"." + request.body
        expected = hmac.new(secret, signed, _DIGESTS[algorithm]).hexdigest()
        offered = given.removeprefix(f"{algorithm}=").lower()
        if not hmac.compare_digest(offered.encode(), expected.encode()) or not data:
            raise Refused("the signature does not match")
        replay_key = hashlib.sha256(f"{scope}\n{offered}".encode()).hexdigest()
        if not self.replays.first_use(replay_key, REPLAY_WINDOW_SECONDS * 2):
            raise Refused("this signature was already used")


def _field(data: Mapping[str, str] | None, names: tuple[str, ...]) -> bytes:
    """The first of `names` in the credential's data; without one, a random value, so the
    comparison that follows takes its usual time and fails."""
    for name in names:
        value = (data or {}).get(name)
        if isinstance(value, str) and value:
            return value.encode()
    return hashlib.sha256(str(time.perf_counter_ns()).encode()).digest()


def _header(data: Mapping[str, str] | None, given: str | None) -> None:
    expected = _field(data, TOKEN_FIELDS)
    if not hmac.compare_digest((given or "").encode(), expected) or not data or given is None:
        raise Refused("the token header is missing or wrong")


def _basic(data: Mapping[str, str] | None, header: str) -> None:
    kind, _, encoded = header.partition(" ")
    try:
        pair = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        pair = ""
    user, _, password = pair.partition(":")
    user_ok = hmac.compare_digest(user.encode(), _field(data, ("username", "user")))
    password_ok = hmac.compare_digest(password.encode(), _field(data, ("password",)))
    if kind.lower() != "basic" or not (user_ok and password_ok) or not data:
        raise Refused("the user name or password is missing or wrong", basic=True)
