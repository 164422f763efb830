"""Identity use cases: registration, sign-in, token refresh, verification, API keys, admin.

Secrets (passwords, refresh tokens, API keys, verification tokens) cross this layer only on the
way in or, once, on the way out to their owner; events and tables hold hashes, and personal data
is sealed with the user's data key before it reaches an aggregate.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from eventsourcing.persistence import IntegrityError
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.crypto import keyed_digest, new_token, same_hash, token_hash
from application.errors import AccessRevoked, Conflict, Forbidden, NotAuthenticated, NotFound
from application.eventstore import Recorded
from application.identity.app import IdentityApp
from application.identity.mail import Outbox
from application.identity.passwords import Passwords, check_password_rules
from application.identity.personal_data import PersonalData
from application.identity.principal import Principal
from application.identity.tokens import TokenSigner
from application.ids import is_id, new_id
from application.keys import Keys
from application.settings import RegistrationMode, Settings
from domain.aggregate import Aggregate
from domain.errors import InvalidState, ValidationFailed, Violation
from domain.identity.api_key import ApiKey
from domain.identity.email_claim import EmailClaim
from domain.identity.invitation import Invitation
from domain.identity.security_event import SecurityEvent, Severity
from domain.identity.session import Redemption, Session
from domain.identity.user import Role, User
from domain.identity.verification import Purpose, Verification

A = TypeVar("A", bound=Aggregate)
Mailed = TypeVar("Mailed", Verification, Invitation)
"""Aggregates redeemed with a mailed `<id>.<secret>` token whose hash they keep."""

API_KEY_PREFIX = "a2n_"
INSTALLATION_CLAIM = "00000000-0000-5000-8000-000000000001"
"""The EmailClaim id the first account takes: whoever saves it first is the OWNER."""
VERIFICATION_TTL = {
    Purpose.EMAIL_VERIFICATION: timedelta(days=2),
    Purpose.PASSWORD_RESET: timedelta(hours=1),
}
MAX_NAME = 200
# No whitespace or control characters anywhere (PostgreSQL text refuses NUL, and a value the
# projector cannot store would park it).
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]{2,}$")


@dataclass(frozen=True)
class SignedIn:
    """Tokens handed to the client once; only their hashes are kept."""

    user_id: str
    session_id: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    position: int


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str = field(repr=False)
    position: int


def normalize_email(email: str) -> str:
    address = email.strip().lower()
    if len(address) > 254 or not _EMAIL.match(address):
        raise ValidationFailed([Violation("/email", "must be an email address")])
    return address


def _clean_name(name: str | None, pointer: str = "/name") -> str | None:
    if name is None:
        return None
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME or "\x00" in cleaned:
        raise ValidationFailed([Violation(pointer, f"must be 1 to {MAX_NAME} characters")])
    return cleaned


class IdentityService:
    def __init__(
        self,
        app: IdentityApp,
        personal: PersonalData,
        outbox: Outbox,
        signer: TokenSigner,
        *,
        secret_key: bytes,
        refresh_ttl: int,
        registration: RegistrationMode = "open",
        passwords: Passwords | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.personal = personal
        self.outbox = outbox
        self.signer = signer
        self._secret_key = secret_key
        self.refresh_ttl = timedelta(seconds=refresh_ttl)
        self.registration = registration
        self.passwords = passwords or Passwords()
        self.now = clock

    # -- accounts ---------------------------------------------------------------------------

    def register(
        self,
        caller: Caller,
        *,
        email: str,
        password: str,
        name: str | None = None,
        invite_token: str | None = None,
    ) -> Recorded[User]:
        """Create an account; the very first one becomes the OWNER. An invitation gives the
        invited role, and the address it was mailed to counts as verified."""
        address = normalize_email(email)
        return self.open_account(
            caller,
            address,
            self.passwords.hash(password),
            _clean_name(name),
            invite_token=invite_token,
        )

    def open_account(
        self,
        caller: Caller,
        address: str,
        password_hash: str | None,
        name: str | None,
        *,
        verified: bool = False,
        belonging: Callable[[str], list[Aggregate]] = lambda user_id: [],
        invite_token: str | None = None,
    ) -> Recorded[User]:
        """Sign-up under A2N_REGISTRATION, by password or through an OAuth provider (which brings
        no password). `belonging(user_id)` gives aggregates saved atomically with the account.
        The first account is the OWNER whatever else; an invitation is used up with the account
        it opens, so two sign-ups with one invitation conflict in the event store."""
        for _ in range(3):
            first = not self._exists(INSTALLATION_CLAIM)
            invitation = None
            if invite_token is not None and not first:
                invitation = self._invitation(invite_token, address)
            elif not first and self.registration == "invite":
                raise Forbidden("registration is by invitation: ask an administrator")
            user_id = new_id() if invitation is None else invitation.user_id
            accepted: list[Aggregate] = [] if invitation is None else [invitation]
            try:
                return self._register(
                    caller,
                    user_id,
                    address,
                    password_hash,
                    name,
                    Role.OWNER if first else (invitation.role if invitation else Role.USER),
                    verified or invitation is not None,
                    [*accepted, *belonging(user_id)],
                )
            except IntegrityError:
                if self.claim_for(address) is not None:
                    raise Conflict("an account with this email address exists") from None
        raise Conflict("registration collided with another; try again")

    def create_owner(self, *, email: str, password: str, name: str | None) -> Recorded[User]:
        """Headless set-up (`a2n user create-owner`): only while no account exists."""
        if self._exists(INSTALLATION_CLAIM):
            raise Conflict("an owner already exists")
        address = normalize_email(email)
        caller = Caller(user_id="system")
        try:
            return self._register(
                caller,
                new_id(),
                address,
                self.passwords.hash(password),
                _clean_name(name),
                Role.OWNER,
                True,
            )
        except IntegrityError:
            raise Conflict("an owner already exists") from None

    def _register(
        self,
        caller: Caller,
        user_id: str,
        address: str,
        password_hash: str | None,
        name: str | None,
        role: Role,
        verified: bool = False,
        belongings: Sequence[Aggregate] = (),
    ) -> Recorded[User]:
        user = User.register(
            user_id=user_id,
            sealed_email=self.personal.seal(user_id, address),
            sealed_name=self.personal.seal_optional(user_id, name),
            password_hash=password_hash,
            role=role,
            email_verified=verified,
        )
        existing = self.claim_for(address, include_free=True)
        if existing is None:
            claim = EmailClaim.claim(self._email_claim_id(address), user_id)
        elif existing.is_free:
            existing.reclaim(user_id)
            claim = existing
        else:
            raise Conflict("an account with this email address exists")
        claims: list[Aggregate] = [claim, *belongings]
        if role is Role.OWNER:
            claims.append(EmailClaim.claim(INSTALLATION_CLAIM, user_id))
        meta = caller.acting_as(user_id).metadata()
        position = self.app.record(meta, user, *claims)
        if not verified:
            self._send_verification(caller, user, address, Purpose.EMAIL_VERIFICATION)
        return Recorded(user, position)

    def verify_email(self, caller: Caller, token: str) -> Recorded[User]:
        verification = self.redeem(token, Purpose.EMAIL_VERIFICATION)
        user = self.app.load(verification.user_id, User)
        user.verify_email()
        return Recorded(user, self.app.record(caller.metadata(), verification, user))

    def request_password_reset(self, caller: Caller, email: str) -> None:
        """Mail a reset link if the account exists; the answer never tells whether it does."""
        claim = self.claim_for(normalize_email(email))
        if claim is None or claim.user_id is None:
            return
        user = self.app.load(claim.user_id, User)
        if user.is_active:
            address = self.personal.open(user.id, user.email)
            if address is not None:
                self._send_verification(caller, user, address, Purpose.PASSWORD_RESET)

    def reset_password(self, caller: Caller, token: str, password: str) -> Recorded[User]:
        """Set a new password and end every session of the account."""
        check_password_rules(password)
        verification = self.redeem(token, Purpose.PASSWORD_RESET)
        user = self.app.load(verification.user_id, User)
        user.change_password(self.passwords.hash(password), by_reset=True)
        return Recorded(user, self.app.record(caller.metadata(), verification, user))

    def change_password(
        self, caller: Caller, principal: Principal, current: str, new: str
    ) -> Recorded[User]:
        check_password_rules(new, "/newPassword")
        user = self.app.load(principal.user_id, User)
        if not self.passwords.matches(user.password_hash, current):
            raise ValidationFailed([Violation("/currentPassword", "is not your password")])
        user.change_password(self.passwords.hash(new))
        return Recorded(user, self.app.record(caller.metadata(), user))

    def change_profile(
        self, caller: Caller, principal: Principal, changes: dict[str, str | None]
    ) -> Recorded[User]:
        user = self.app.load(principal.user_id, User)
        sealed: dict[str, str | None] = {}
        if "name" in changes:
            sealed["name"] = self.personal.seal_optional(user.id, _clean_name(changes["name"]))
        if "image" in changes:
            sealed["image"] = self.personal.seal_optional(
                user.id, _clean_name(changes["image"], "/image")
            )
        user.change_profile(sealed)
        return Recorded(user, self.app.record(caller.metadata(), user))

    # -- sign-in ----------------------------------------------------------------------------

    def find_user(self, email: str) -> User | None:
        """The account that signs in with this address, if any (a malformed one has none)."""
        try:
            claim = self.claim_for(normalize_email(email))
        except ValidationFailed:
            return None
        return self.app.load(claim.user_id, User) if claim and claim.user_id else None

    def active_recipient(self, user_id: str | None, email: str | None) -> str:
        """The id of the active account named by exactly one of `user_id` and `email` (whom a
        workflow or credential is shared with). Every way an account can be unusable (unknown,
        suspended, erased) is the same 422, so a caller learns no more than sign-up tells."""
        if (user_id is None) == (email is None):
            raise ValidationFailed([Violation("", "give either userId or email")])
        user: User | None = None
        if email is not None:
            user = self.find_user(email)
            pointer = "/email"
        else:
            assert user_id is not None
            pointer = "/userId"
            try:
                user = self.app.load(user_id, User)
            except NotFound:
                user = None
        if user is None or not user.is_active:
            raise ValidationFailed([Violation(pointer, "names no active account")])
        return user.id

    def check_password(self, caller: Caller, user: User | None, password: str) -> User:
        """The first step of sign-in (`application.identity.sign_in` runs the whole of it)."""
        if user is None or not self.passwords.matches(user.password_hash, password):
            self.record_security_event(
                caller,
                "FAILED_LOGIN",
                Severity.MEDIUM,
                "sign-in with a wrong email address or password",
                user_id=user.id if user else None,
            )
            raise NotAuthenticated("wrong email address or password")
        if not user.is_active:
            raise NotAuthenticated("wrong email address or password")
        return user

    def user_with_email(self, address: str) -> User | None:
        """The account registered with this normalised address, if any."""
        claim = self.claim_for(address)
        return self.app.load(claim.user_id, User) if claim and claim.user_id else None

    def start_session(self, caller: Caller, user: User, *spent: Aggregate) -> SignedIn:
        """Sign `user` in, saving with the session what the sign-in used up (a challenge)."""
        refresh_secret = new_token()
        session = Session.start(
            session_id=new_id(),
            user_id=user.id,
            token_id=new_id(),
            token_hash=token_hash(refresh_secret),
            expires_at=self.now() + self.refresh_ttl,
        )
        user.logged_in(session.id)
        meta = caller.acting_as(user.id).metadata()
        position = self.app.record(meta, user, session, *spent)
        return self._signed_in(user.id, session.id, refresh_secret, position)

    def refresh(self, caller: Caller, refresh_token: str) -> SignedIn:
        """Trade a refresh token for new tokens; a reused one ends its whole session."""
        session_id, _, secret = refresh_token.partition(".")
        if not is_id(session_id) or not secret:
            raise NotAuthenticated("the refresh token is not valid")
        try:
            session = self.app.load(session_id, Session)
        except NotFound:
            raise NotAuthenticated("the refresh token is not valid") from None
        user = self.app.load(session.user_id, User)
        next_secret = new_token()
        outcome = session.redeem(
            token_hash(secret),
            now=self.now(),
            next_token_id=new_id(),
            next_token_hash=token_hash(next_secret),
            expires_at=self.now() + self.refresh_ttl,
        )
        meta = caller.acting_as(user.id).metadata()
        if outcome is Redemption.REUSED:
            alert = SecurityEvent.record(
                event_id=new_id(),
                event_type="REFRESH_TOKEN_REUSE",
                severity=Severity.HIGH,
                description="a used refresh token was presented again; the session was ended",
                user_id=user.id,
                resource_type="SESSION",
                resource_id=session.id,
            )
            position = self.app.record(meta, session, alert)
            raise AccessRevoked("the refresh token is not valid", position)
        if outcome is Redemption.REFUSED or not user.accepts_session(session.created_on):
            raise NotAuthenticated("the refresh token is not valid")
        try:
            position = self.app.record(meta, session)
        except IntegrityError:
            # Another refresh with the same token won the race: this one is a reuse.
            raise NotAuthenticated("the refresh token is not valid") from None
        return self._signed_in(user.id, session.id, next_secret, position)

    def end_session(self, caller: Caller, principal: Principal, session_id: str) -> int:
        """Log out one of the caller's own sessions (`me/sessions/{id}` or the current one)."""
        return self.app.change(
            session_id,
            Session,
            lambda s: s.revoke("logout"),
            caller.metadata(),
            visible=lambda s: s.user_id == principal.user_id,
        ).position

    def _signed_in(self, user_id: str, session_id: str, secret: str, position: int) -> SignedIn:
        return SignedIn(
            user_id=user_id,
            session_id=session_id,
            access_token=self.signer.issue(user_id, session_id, self.now()),
            refresh_token=f"{session_id}.{secret}",
            expires_in=int(self.signer.ttl.total_seconds()),
            position=position,
        )

    # -- API keys ---------------------------------------------------------------------------

    def create_api_key(
        self,
        caller: Caller,
        principal: Principal,
        *,
        name: str,
        scopes: list[str],
        allowed_ips: list[str],
        expires_at: datetime | None,
    ) -> NewApiKey:
        key_id = new_id()
        secret = new_token()
        key = ApiKey.create(
            key_id=key_id,
            user_id=principal.user_id,
            name=name,
            prefix=api_key_text(key_id, secret)[:12],
            key_hash=token_hash(secret),
            scopes=scopes,
            allowed_ips=allowed_ips,
            expires_at=expires_at,
            now=self.now(),
            grantable=principal.scopes,
        )
        position = self.app.record(caller.metadata(), key)
        return NewApiKey(key, api_key_text(key_id, secret), position)

    def revoke_api_key(self, caller: Caller, principal: Principal, key_id: str) -> Recorded[ApiKey]:
        return self.app.change(
            key_id,
            ApiKey,
            ApiKey.revoke,
            caller.metadata(),
            visible=lambda k: k.user_id == principal.user_id,
        )

    def api_key_used(self, key_id: str) -> None:
        """Record a use (the caller throttles this to once a minute per key)."""
        self.app.change(key_id, ApiKey, ApiKey.used, Caller("system").metadata())

    # -- administration ---------------------------------------------------------------------

    def suspend(
        self, caller: Caller, admin: Principal, user_id: str, reason: str | None
    ) -> Recorded[User]:
        acting = self.acting_admin(admin)
        return self.app.change(
            user_id, User, lambda u: u.suspend(reason, by=acting), caller.metadata()
        )

    def reactivate(self, caller: Caller, admin: Principal, user_id: str) -> Recorded[User]:
        self.acting_admin(admin)
        return self.app.change(user_id, User, User.reactivate, caller.metadata())

    def change_role(
        self, caller: Caller, admin: Principal, user_id: str, role: Role
    ) -> Recorded[User]:
        acting = self.acting_admin(admin)
        return self.app.change(
            user_id, User, lambda u: u.change_role(role, by=acting), caller.metadata()
        )

    def acting_admin(self, principal: Principal) -> User:
        """The caller's account, if it may administer (ADMIN or OWNER, active), else Forbidden."""
        if not principal.is_admin:
            raise Forbidden("this needs the ADMIN or OWNER role")
        acting = self.app.load(principal.user_id, User)
        if not acting.is_admin or not acting.is_active:
            raise Forbidden("this needs the ADMIN or OWNER role")
        return acting

    # -- helpers ----------------------------------------------------------------------------

    def _send_verification(
        self, caller: Caller, user: User, address: str, purpose: Purpose
    ) -> None:
        secret = new_token()
        verification = Verification.issue(
            verification_id=new_id(),
            user_id=user.id,
            purpose=purpose,
            token_hash=token_hash(secret),
            expires_at=self.now() + VERIFICATION_TTL[purpose],
        )
        self.app.record(caller.metadata(), verification)
        token = f"{verification.id}.{secret}"
        if purpose is Purpose.EMAIL_VERIFICATION:
            subject, action = "Confirm your email address", "POST /api/v1/auth/verify-email"
        else:
            subject, action = "Reset your password", "POST /api/v1/auth/password/reset"
        self.outbox.queue(
            user_id=user.id,
            to=address,
            subject=subject,
            body=f"Use this token with {action} within {VERIFICATION_TTL[purpose]}:\n\n{token}\n",
            purpose=str(purpose),
        )

    def redeem(self, token: str, purpose: Purpose) -> Verification:
        """The verification `token` names, consumed (saved by the caller), or ValidationFailed."""
        invalid = ValidationFailed([Violation("/token", "is invalid, used or expired")])
        verification = self._mailed(token, Verification)
        if verification is None:
            raise invalid
        try:
            verification.consume(purpose, now=self.now())
        except Exception:
            raise invalid from None
        return verification

    def _invitation(self, token: str, address: str) -> Invitation:
        """The invitation `token` names, accepted (saved with the account), or Forbidden."""
        invalid = Forbidden("the invitation is invalid, used or expired")
        invitation = self._mailed(token, Invitation)
        if invitation is None:
            raise invalid
        try:
            invitation.accept(now=self.now(), inviter=self.app.load(invitation.invited_by, User))
        except (NotFound, InvalidState):
            raise invalid from None
        if self.personal.open(invitation.user_id, invitation.email) != address:
            raise ValidationFailed([Violation("/email", "is not the address that was invited")])
        return invitation

    def _mailed(self, token: str, kind: type[Mailed]) -> Mailed | None:
        """The aggregate a mailed `<id>.<secret>` token names, if the secret matches its hash."""
        aggregate_id, _, secret = token.partition(".")
        if not is_id(aggregate_id) or not secret:
            return None
        try:
            found = self.app.load(aggregate_id, kind)
        except NotFound:
            return None
        return found if same_hash(secret, found.token_hash) else None

    def record_security_event(
        self,
        caller: Caller,
        event_type: str,
        severity: Severity,
        description: str,
        *,
        user_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        alert = SecurityEvent.record(
            event_id=new_id(),
            event_type=event_type,
            severity=severity,
            description=description,
            user_id=user_id,
            resource_type="USER" if user_id else None,
            resource_id=user_id,
            details=details,
        )
        self.app.record(caller.metadata(), alert)

    def _email_claim_id(self, address: str) -> str:
        digest = keyed_digest(self._secret_key, "email-claim", address)
        return str(uuid.UUID(bytes=digest[:16], version=5))

    def claim_for(self, address: str, *, include_free: bool = False) -> EmailClaim | None:
        try:
            claim = self.app.load(self._email_claim_id(address), EmailClaim)
        except NotFound:
            return None
        return claim if include_free or not claim.is_free else None

    def is_account(self, user_id: str) -> bool:
        """Whether `user_id` names an account (an erased one too: it keeps its id), from its
        events: a command right after sign-up must not depend on the projection's lag."""
        return self._exists(user_id, User)

    def _exists(self, aggregate_id: str, kind: type[Aggregate] = Aggregate) -> bool:
        try:
            self.app.load(aggregate_id, kind)
        except NotFound:
            return False
        return True


def api_key_text(key_id: str, secret: str) -> str:
    """The key a client sends: `a2n_<id without dashes>_<secret>`."""
    return f"{API_KEY_PREFIX}{key_id.replace('-', '')}_{secret}"


def parse_api_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a key in the `api_key_text` shape, or None."""
    if not text.startswith(API_KEY_PREFIX):
        return None
    compact, _, secret = text[len(API_KEY_PREFIX) :].partition("_")
    if len(compact) != 32 or not secret:
        return None
    try:
        key_id = str(uuid.UUID(compact))
    except ValueError:
        return None
    return key_id, secret


def identity_service(
    app: IdentityApp, pool: ConnectionPool[Any], keys: Keys, settings: Settings
) -> IdentityService:
    """The service wired as every role runs it (API, CLI)."""
    return IdentityService(
        app,
        PersonalData(keys.master, pool),
        Outbox(pool),
        TokenSigner(keys.secret_key, settings.access_token_ttl),
        secret_key=keys.secret_key,
        refresh_ttl=settings.refresh_token_ttl,
        registration=settings.registration,
        passwords=Passwords(settings.password_hashing),
    )
