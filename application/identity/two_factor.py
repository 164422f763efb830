"""Two-factor authentication: TOTP codes (RFC 6238) and single-use recovery codes.

`setup` reveals a new secret once; it takes effect when a code from the authenticator app
confirms it (`confirm`), which reveals the recovery codes once. The secret is kept only sealed
with the user's data key (in the TwoFactorEnrolled event) and recovery codes only as hashes.
A code is accepted from the previous, current or next 30-second step (clock drift), and each
step only once: a code seen on the wire cannot be replayed.

Sign-in with two factors: a right password earns a challenge (a Verification bound to the user,
valid for five minutes), which `complete` trades once, with a code, for a session.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NoReturn

import pyotp
from eventsourcing.persistence import IntegrityError
from pyotp.exceptions import OTPVerificationError

from application.caller import Caller
from application.crypto import new_token, token_hash
from application.errors import ConcurrentWrite, Forbidden, NotAuthenticated
from application.eventstore import Recorded
from application.identity.commands import IdentityService, SignedIn
from application.identity.principal import Principal
from application.ids import new_id
from domain.errors import ValidationFailed, Violation
from domain.identity.security_event import Severity
from domain.identity.user import User
from domain.identity.verification import Purpose, Verification

ISSUER = "A2N"
CHALLENGE_TTL = timedelta(minutes=5)
RECOVERY_CODE_COUNT = 10
DRIFT_STEPS = 1
MAX_CODE_LENGTH = 64
_TOTP_CODE = re.compile(r"^[0-9]{6}$")
_RECOVERY_CODE = re.compile(r"^[A-Z2-7]{16}$")  # 80 random bits in base32


class WrongCode(ValidationFailed):
    """A well-formed code that does not verify; the login lockout counts these."""

    def __init__(self) -> None:
        super().__init__([Violation("/code", "is wrong, expired or already used")])


@dataclass(frozen=True)
class Enrollment:
    """The new secret, shown once so the user can add it to an authenticator app."""

    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    position: int


@dataclass(frozen=True)
class RecoveryCodes:
    """Codes that each replace one TOTP code once; shown only when two-factor is turned on."""

    codes: list[str] = field(repr=False)
    position: int


@dataclass(frozen=True)
class Challenge:
    """What a right password earns when two-factor is on: the token for `complete`."""

    token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class _Code:
    """A code as typed, recognised: the digits of a TOTP code, or a recovery code's hash."""

    totp: str | None = None
    recovery_hash: str | None = None


def _parse(code: str, *, recovery: bool) -> _Code:
    compact = code.strip().replace(" ", "").replace("-", "").upper()
    if len(code) <= MAX_CODE_LENGTH:
        if _TOTP_CODE.match(compact):
            return _Code(totp=compact)
        if recovery and _RECOVERY_CODE.match(compact):
            return _Code(recovery_hash=token_hash(compact))
    expected = "the 6-digit code of your authenticator app"
    raise ValidationFailed(
        [Violation("/code", f"must be {expected}{' or a recovery code' if recovery else ''}")]
    )


def _new_recovery_code() -> str:
    """`ABCD-EFGH-IJKL-MNOP`: 80 random bits, enough that an unsalted hash cannot be reversed."""
    text = base64.b32encode(secrets.token_bytes(10)).decode()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _person(principal: Principal) -> str:
    """Only a person in a session manages the second factor, never a program with an API key."""
    if principal.session_id is None:
        raise Forbidden("two-factor settings need a signed-in session, not an API key")
    return principal.user_id


class TwoFactorService:
    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity
        self.app = identity.app

    # -- the caller's own settings ----------------------------------------------------------

    def setup(self, caller: Caller, principal: Principal) -> Enrollment:
        """Start set-up with a new secret (again if need be: the last one counts)."""
        user_id = _person(principal)
        secret = pyotp.random_base32()
        sealed = self.identity.personal.seal(user_id, secret)
        recorded = self.app.change(
            user_id, User, lambda user: user.enroll_two_factor(sealed), caller.metadata()
        )
        user = recorded.aggregate
        name = self.identity.personal.open(user.id, user.email) or user.id
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        return Enrollment(secret, uri, recorded.position)

    def confirm(self, caller: Caller, principal: Principal, code: str) -> RecoveryCodes:
        """Turn two-factor on once a code proves the app has the secret."""
        user_id = _person(principal)
        typed = _parse(code, recovery=False)
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        hashes = [token_hash(c.replace("-", "")) for c in codes]

        def enable(user: User) -> None:
            step = self._time_step(user, user.secret_to_confirm(), typed)
            if step is None:
                raise WrongCode()
            user.enable_two_factor(hashes, step)

        recorded = self.app.change(user_id, User, enable, caller.metadata())
        return RecoveryCodes(codes, recorded.position)

    def disable(self, caller: Caller, principal: Principal, code: str) -> Recorded[User]:
        """Turn two-factor off with a TOTP code or a recovery code."""
        user_id = _person(principal)
        typed = _parse(code, recovery=True)
        user = self.app.load(user_id, User)
        if not self._use_code(user, typed):
            self._refuse(
                caller, user, "FAILED_2FA", "a wrong code was given to turn two-factor sign-in off"
            )
        user.disable_two_factor()
        try:
            position = self.app.record(caller.metadata(), user)
        except IntegrityError:
            raise ConcurrentWrite(user_id) from None
        return Recorded(user, position)

    # -- sign-in ----------------------------------------------------------------------------

    def admit(self, caller: Caller, user: User) -> SignedIn | Challenge:
        """Tokens for a user whose first factor checked out (a password, an OAuth provider), or
        a challenge when two-factor sign-in is on: no way in skips the second factor."""
        if not user.is_active:
            raise NotAuthenticated(f"the account is {user.status.lower()}")
        if user.two_factor_enabled:
            return self.challenge(caller, user)
        return self.identity.start_session(caller, user)

    def challenge(self, caller: Caller, user: User) -> Challenge:
        """Issue the challenge for a user whose password was right."""
        secret = new_token()
        verification = Verification.issue(
            verification_id=new_id(),
            user_id=user.id,
            purpose=Purpose.TWO_FACTOR_LOGIN,
            token_hash=token_hash(secret),
            expires_at=self.identity.now() + CHALLENGE_TTL,
        )
        self.app.record(caller.acting_as(user.id).metadata(), verification)
        return Challenge(f"{verification.id}.{secret}", int(CHALLENGE_TTL.total_seconds()))

    def challenged_user(self, challenge: str) -> str:
        """Whose sign-in the challenge continues (NotAuthenticated if it cannot be used)."""
        return self._redeem(challenge).user_id

    def complete(self, caller: Caller, challenge: str, code: str) -> SignedIn:
        """Trade a live challenge and a right code for a session; the challenge is then spent.

        A wrong code leaves the challenge usable (for a typo) but counts as a failed sign-in.
        """
        typed = _parse(code, recovery=True)
        verification = self._redeem(challenge)
        user = self.app.load(verification.user_id, User)
        if not user.is_active or not user.two_factor_enabled:
            raise NotAuthenticated("the sign-in was interrupted; sign in with your password again")
        if not self._use_code(user, typed):
            self._refuse(caller, user, "FAILED_LOGIN", "sign-in with a wrong two-factor code")
        try:
            return self.identity.start_session(caller, user, verification)
        except IntegrityError:
            # A concurrent request spent the same challenge (or changed the user) first.
            raise self._spent() from None

    # -- helpers ----------------------------------------------------------------------------

    def _use_code(self, user: User, typed: _Code) -> bool:
        """Spend the code on `user` (a pending event) if it verifies; False if it does not."""
        sealed_secret = user.active_secret()
        if typed.recovery_hash is not None:
            if not user.has_recovery_code(typed.recovery_hash):
                return False
            user.use_recovery_code(typed.recovery_hash)
            return True
        step = self._time_step(user, sealed_secret, typed)
        if step is None or not user.accepts_time_step(step):
            return False
        user.use_time_step(step)
        return True

    def _time_step(self, user: User, sealed_secret: str, typed: _Code) -> int | None:
        """The time step whose TOTP code was typed, or None (also when the secret was erased)."""
        secret = self.identity.personal.open(user.id, sealed_secret)
        if secret is None or typed.totp is None:
            return None
        try:
            return pyotp.TOTP(secret).verify_and_get_timecode(
                typed.totp, for_time=self.identity.now(), valid_window=DRIFT_STEPS
            )
        except OTPVerificationError:
            return None

    def _refuse(self, caller: Caller, user: User, event_type: str, description: str) -> NoReturn:
        self.identity.record_security_event(
            caller, event_type, Severity.MEDIUM, description, user_id=user.id
        )
        raise WrongCode()

    def _redeem(self, challenge: str) -> Verification:
        try:
            return self.identity.redeem(challenge, Purpose.TWO_FACTOR_LOGIN)
        except ValidationFailed:
            raise self._spent() from None

    @staticmethod
    def _spent() -> NotAuthenticated:
        return NotAuthenticated(
            "the challenge is invalid, used or expired; sign in with your password again"
        )
