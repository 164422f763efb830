"""Signing in, and linking accounts, through the OpenID Connect providers of A2N_OAUTH_PROVIDERS.

A sign-in takes two requests. `start` sends the browser to the provider and keeps what the
callback will need (nonce, PKCE verifier, redirect URI; for a signed-in user linking a provider
account, that user) as a *sign-in attempt*; `finish` takes the provider's redirect back, redeems
the code, links if asked to, and signs the user in.

Attempts live in Redis when it is configured (else in this process's memory) for ten minutes,
under the SHA-256 of their `state`, encrypted with a key derived from the state, the provider and
a random *browser key* that only the browser that started holds (the API keeps it in an HttpOnly
cookie). Hence:
- an attempt is taken at most once (GETDEL): a replayed callback finds nothing;
- a callback from another browser (login CSRF: an attacker's code pushed on a victim; or a callback
  URL copied from a log or history) or for another provider cannot open the attempt; it is refused
  and recorded as a security event;
- reading the store reveals no verifier or nonce.
A signed cookie alone could not be single-use, and keeping attempts as events would store the
verifier forever. Authorization codes, access tokens and id tokens are used and dropped: they are
never stored or logged.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import redis
from eventsourcing.persistence import IntegrityError

from application.caller import Caller
from application.crypto import (
    DecryptionFailed,
    decrypt,
    encrypt,
    keyed_digest,
    new_token,
    token_hash,
)
from application.errors import Conflict, InvalidParameter, NotAuthenticated, NotFound
from application.identity.commands import MAX_NAME, IdentityService, SignedIn, normalize_email
from application.identity.oauth import (
    ExternalIdentity,
    OAuthClient,
    OAuthError,
    OAuthProvider,
    check_callback,
)
from application.identity.two_factor import Challenge
from application.ids import new_id
from domain.errors import ValidationFailed
from domain.identity.account_link import AccountLink
from domain.identity.security_event import SecurityEvent, Severity
from domain.identity.user import User

ATTEMPT_TTL = 600
"""Seconds a user has to finish signing in at the provider."""
MAX_PARAMETER = 2048
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
_SUBJECT = re.compile(r"[\x20-\x7e]{1,255}")
"""OpenID Connect Core 2: `sub` is at most 255 ASCII characters."""


Admit = Callable[[Caller, User], SignedIn | Challenge]
"""Signs in a user the provider vouched for: tokens, or a challenge when two-factor is on."""


class ProviderUnavailable(Exception):
    """The provider could not be asked to start a sign-in (discovery failed); safe to show."""


class AttemptStore(Protocol):
    """Short-lived sign-in attempts; `take` returns a value once, then never again."""

    def put(self, key: str, value: bytes, ttl: float) -> None: ...

    def take(self, key: str) -> bytes | None: ...


class RedisAttempts:
    """Attempts shared by every API process; GETDEL makes taking one atomic."""

    def __init__(self, client: redis.Redis, *, prefix: str = "a2n:oauth:attempt:") -> None:
        self.client = client
        self.prefix = prefix

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.client.set(self.prefix + key, value, px=max(1, round(ttl * 1000)))

    def take(self, key: str) -> bytes | None:
        found = self.client.getdel(self.prefix + key)
        return found if isinstance(found, bytes) else None


class MemoryAttempts:
    """Attempts in this process, for running without Redis (one API process only). Bounded, so
    a flood of started sign-ins evicts the oldest rather than filling memory."""

    def __init__(
        self, *, capacity: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: bytes, ttl: float) -> None:
        now = self.clock()
        with self._lock:
            while self._items and (
                len(self._items) >= self.capacity or next(iter(self._items.values()))[0] <= now
            ):
                self._items.popitem(last=False)
            self._items[key] = (now + ttl, value)

    def take(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.pop(key, None)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the key it must bring back (never put it in a URL)."""

    url: str
    browser_key: str = field(repr=False)


@dataclass(frozen=True)
class _Attempt:
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    linking_user: str | None


class OAuthLogin:
    """Starts and finishes sign-ins through configured providers; see the module docstring."""

    def __init__(
        self,
        identity: IdentityService,
        client: OAuthClient,
        providers: Mapping[str, OAuthProvider],
        store: AttemptStore,
        *,
        admit: Admit,
        secret_key: bytes,
    ) -> None:
        self.identity = identity
        self.admit = admit
        self.client = client
        self.providers = providers
        self.store = store
        self._secret_key = secret_key

    def provider(self, name: str) -> OAuthProvider:
        found = self.providers.get(name)
        if found is None:
            raise NotFound(name)
        return found

    def start(
        self, provider_name: str, redirect_uri: str, *, linking_user: str | None = None
    ) -> Started:
        """Keep a new attempt and say where the provider's sign-in page is. With `linking_user`,
        the callback links the provider account to that (signed-in) user."""
        provider = self.provider(provider_name)
        try:
            request = self.client.start(provider, redirect_uri)
        except OAuthError as exc:
            raise ProviderUnavailable(exc.message) from None
        browser_key = new_token()
        sealed = encrypt(
            self._attempt_key(request.state, browser_key),
            json.dumps(
                [request.nonce, request.code_verifier, request.redirect_uri, linking_user]
            ).encode(),
            _aad(provider),
        )
        self.store.put(token_hash(request.state), sealed, ATTEMPT_TTL)
        return Started(request.url, browser_key)

    def finish(
        self,
        caller: Caller,
        provider_name: str,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        browser_key: str | None,
    ) -> SignedIn | Challenge:
        """Complete the attempt named by `state`: sign in whoever the provider vouches for, or
        link the provider account to the user who started linking, and sign that user in."""
        provider = self.provider(provider_name)
        params = {
            name: _parameter(name, value)
            for name, value in (("state", state), ("code", code), ("error", error))
            if value is not None
        }
        if "state" not in params:
            raise InvalidParameter("state", "is required")
        attempt = self._take(caller, provider, params["state"], browser_key)
        identity = self.client.finish(
            provider,
            attempt.redirect_uri,
            check_callback(params, params["state"]),  # the state opened the attempt: it is ours
            attempt.code_verifier,
            attempt.nonce,
        )
        if attempt.linking_user is not None:
            return self._link(caller, provider, identity, attempt.linking_user)
        return self._sign_in(caller, provider, identity)

    def _take(
        self, caller: Caller, provider: OAuthProvider, state: str, browser_key: str | None
    ) -> _Attempt:
        sealed = self.store.take(token_hash(state))
        if sealed is None:
            raise InvalidParameter("state", "has expired or was already used: sign in again")
        try:
            if not browser_key:
                raise DecryptionFailed("no browser key")
            nonce, verifier, redirect_uri, linking_user = json.loads(
                decrypt(self._attempt_key(state, browser_key), sealed, _aad(provider))
            )
        except DecryptionFailed:
            self._state_mismatch(caller, provider)
            raise InvalidParameter(
                "state", "belongs to a sign-in this browser did not start: sign in again"
            ) from None
        return _Attempt(nonce, verifier, redirect_uri, linking_user)

    def _sign_in(
        self, caller: Caller, provider: OAuthProvider, identity: ExternalIdentity
    ) -> SignedIn | Challenge:
        """The linked user; else a new link to the account with the same, verified, address;
        else a new account."""
        linked = self._linked_user(provider, identity)
        if linked is not None:
            return self.admit(caller, self.identity.app.load(linked, User))
        address = _address(identity.email)
        if address is None:
            raise OAuthError(
                f"{provider.name} did not share a usable email address, which a new account needs"
            )
        existing = self.identity.user_with_email(address)
        if existing is None:
            opened = self.identity.open_account(
                caller,
                address,
                None,
                _display_name(identity.name),
                verified=identity.email_verified,
                belonging=lambda user_id: [self._new_link(provider, identity, user_id)],
            )
            return self.admit(caller, opened.aggregate)
        # Taking over an account by its address is safe only when both sides proved the address:
        # else whoever registered it first (or a provider's unverified claim) would gain access.
        if not (identity.email_verified and existing.email_verified):
            raise Conflict(
                f"an account with this email address exists: sign in to it, then link "
                f"{provider.name} with POST /api/v1/me/oauth/{provider.name}/link"
            )
        return self._link_and_sign_in(caller, provider, identity, existing)

    def _link(
        self, caller: Caller, provider: OAuthProvider, identity: ExternalIdentity, user_id: str
    ) -> SignedIn | Challenge:
        """Link for the signed-in user who started; an account linked elsewhere stays there."""
        user = self.identity.app.load(user_id, User)
        linked = self._linked_user(provider, identity)
        if linked is None:
            return self._link_and_sign_in(caller, provider, identity, user)
        if linked != user.id:
            raise Conflict(f"this {provider.name} account is linked to another A2N account")
        return self.admit(caller, user)

    def _linked_user(self, provider: OAuthProvider, identity: ExternalIdentity) -> str | None:
        """The user this provider account is linked to, if any."""
        link = self._stored_link(provider, identity)
        if link is None or link.user_id is None:
            return None
        if link.issuer != identity.issuer:
            raise OAuthError(
                f"this {provider.name} account was linked while the provider had another "
                "issuer; an administrator must check A2N_OAUTH_PROVIDERS"
            )
        return link.user_id

    def _stored_link(
        self, provider: OAuthProvider, identity: ExternalIdentity
    ) -> AccountLink | None:
        """The link aggregate of this provider account, linked or left by an erased user."""
        if not _SUBJECT.fullmatch(identity.subject):
            raise OAuthError(f"{provider.name} identifies the account with an unusable subject")
        try:
            return self.identity.app.load(
                AccountLink.id_for(provider.name, identity.subject), AccountLink
            )
        except NotFound:
            return None

    def _new_link(
        self, provider: OAuthProvider, identity: ExternalIdentity, user_id: str
    ) -> AccountLink:
        """Link this provider account to `user_id`: a new link, or the one an erasure undid."""
        link = self._stored_link(provider, identity)
        if link is None:
            return AccountLink.link(
                user_id=user_id,
                provider=provider.name,
                issuer=identity.issuer,
                subject=identity.subject,
                scope=identity.scope,
            )
        link.relink(user_id=user_id, issuer=identity.issuer, scope=identity.scope)
        return link

    def _link_and_sign_in(
        self, caller: Caller, provider: OAuthProvider, identity: ExternalIdentity, user: User
    ) -> SignedIn | Challenge:
        if not user.is_active:
            raise NotAuthenticated(f"the account is {user.status.lower()}")
        try:
            self.identity.app.record(
                caller.acting_as(user.id).metadata(), self._new_link(provider, identity, user.id)
            )
        except IntegrityError:
            raise Conflict(f"this {provider.name} account was just linked: sign in again") from None
        return self.admit(caller, user)

    def _state_mismatch(self, caller: Caller, provider: OAuthProvider) -> None:
        alert = SecurityEvent.record(
            event_id=new_id(),
            event_type="OAUTH_STATE_MISMATCH",
            severity=Severity.MEDIUM,
            description="an OAuth sign-in response came from a browser that did not start that "
            "sign-in (login CSRF, or a copied callback URL); it was refused",
            resource_type="OAUTH_PROVIDER",
            resource_id=provider.name,
        )
        self.identity.app.record(caller.metadata(), alert)

    def _attempt_key(self, state: str, browser_key: str) -> bytes:
        return keyed_digest(self._secret_key, "oauth-attempt", f"{state}\n{browser_key}")


def _aad(provider: OAuthProvider) -> bytes:
    return f"a2n:oauth-attempt:{provider.name}".encode()


def _parameter(name: str, value: str) -> str:
    if not value or len(value) > MAX_PARAMETER or not _PRINTABLE.fullmatch(value):
        raise InvalidParameter(name, f"must be 1 to {MAX_PARAMETER} printable ASCII characters")
    return value


def _address(email: str | None) -> str | None:
    if email is None:
        return None
    try:
        return normalize_email(email)
    except ValidationFailed:
        return None


def _display_name(name: str | None) -> str | None:
    """The provider's name for the user if it is plain text; a sign-in never fails over it."""
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in cleaned):
        return None
    return cleaned
