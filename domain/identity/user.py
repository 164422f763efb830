"""The User aggregate: an account, its role and status, its password and second factor.

Personal data (email, name, image) and the TOTP secret arrive already sealed with the user's
own data key: the aggregate stores opaque strings, so its events hold no readable personal data
and erasing the key erases them everywhere (crypto-shredding) without rewriting history.
Recovery codes arrive as hashes. Checking a code needs the plaintext secret, so the application
does that; the aggregate decides whether a matching code may still be used (each TOTP time step
once, each recovery code once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, NotAllowed


class Role(StrEnum):
    USER = "USER"
    ADMIN = "ADMIN"
    OWNER = "OWNER"


class Status(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    DELETED = "DELETED"


class User(Aggregate):
    class Registered(Aggregate.Created):
        email: str
        name: str | None
        password_hash: str | None
        role: str
        email_verified: bool

    class EmailVerified(Aggregate.Event):
        pass

    class PasswordChanged(Aggregate.Event):
        password_hash: str
        by_reset: bool

    class ProfileChanged(Aggregate.Event):
        changes: dict[str, Any]

    class RoleChanged(Aggregate.Event):
        role: str
        previous: str

    class Suspended(Aggregate.Event):
        reason: str | None

    class Reactivated(Aggregate.Event):
        pass

    class LoggedIn(Aggregate.Event):
        session_id: str

    class TwoFactorEnrolled(Aggregate.Event):
        sealed_secret: str

    class TwoFactorEnabled(Aggregate.Event):
        recovery_code_hashes: list[str]
        time_step: int

    class TwoFactorDisabled(Aggregate.Event):
        pass

    class TotpCodeUsed(Aggregate.Event):
        time_step: int

    class RecoveryCodeUsed(Aggregate.Event):
        code_hash: str

    class Erased(Aggregate.Event):
        """GDPR erasure: holds nothing personal; the data key is deleted beside it."""

    @event(Registered)
    def __init__(
        self,
        email: str,
        name: str | None,
        password_hash: str | None,
        role: str,
        email_verified: bool,
    ) -> None:
        self.email: str | None = email
        self.name = name
        self.image: str | None = None
        self.password_hash = password_hash
        self.role = Role(role)
        self.status = Status.ACTIVE
        self.email_verified = email_verified
        self.sessions_valid_after: datetime | None = None
        # The sealed TOTP secret, awaiting its first code until `two_factor_enabled`.
        self.two_factor_secret: str | None = None
        self.two_factor_enabled = False
        self.recovery_code_hashes: list[str] = []
        # The newest TOTP time step accepted: a code of that step or an older one is a replay.
        self.last_time_step = 0

    @classmethod
    def register(
        cls,
        *,
        user_id: str,
        sealed_email: str,
        sealed_name: str | None,
        password_hash: str | None,
        role: Role,
        email_verified: bool = False,
    ) -> User:
        return cls._create(
            cls.Registered,
            id=user_id,
            email=sealed_email,
            name=sealed_name,
            password_hash=password_hash,
            role=str(role),
            email_verified=email_verified,
        )

    # -- commands ---------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.status is Status.ACTIVE

    @property
    def is_admin(self) -> bool:
        return self.role in (Role.ADMIN, Role.OWNER)

    def accepts_session(self, started_at: datetime) -> bool:
        """Sessions end with suspension and with a password reset (which may follow a theft)."""
        valid_after = self.sessions_valid_after
        return self.is_active and (valid_after is None or started_at > valid_after)

    def verify_email(self) -> None:
        self._refuse_unless_active()
        if not self.email_verified:
            self._email_verified()

    def change_password(self, password_hash: str, *, by_reset: bool = False) -> None:
        self._refuse_unless_active()
        self._password_changed(password_hash=password_hash, by_reset=by_reset)

    def change_profile(self, changes: Mapping[str, str | None]) -> None:
        """Set sealed `name`/`image`; the caller compares plaintexts, so anything given changes."""
        self._refuse_unless_active()
        unknown = set(changes) - {"name", "image"}
        if unknown:
            raise InvalidState(f"cannot change {', '.join(sorted(unknown))} here")
        if changes:
            self._profile_changed(changes=dict(changes))

    def change_role(self, role: Role, *, by: User) -> None:
        """Admins manage USER and ADMIN; only an OWNER grants or takes away OWNER."""
        self._refuse_if_deleted()
        if not by.is_admin:
            raise InvalidState("only an admin can change roles")
        if (role is Role.OWNER or self.role is Role.OWNER) and by.role is not Role.OWNER:
            raise InvalidState("only an owner can grant or revoke the OWNER role")
        if by.id == self.id and role is not self.role:
            raise InvalidState("you cannot change your own role")
        if role is not self.role:
            self._role_changed(role=str(role), previous=str(self.role))

    def suspend(self, reason: str | None, *, by: User) -> None:
        """Stop the account at once: its sessions and API keys stop working."""
        self._refuse_if_deleted()
        if by.id == self.id:
            raise InvalidState("you cannot suspend your own account")
        if self.role is Role.OWNER:
            raise InvalidState("an owner cannot be suspended")
        if self.role is Role.ADMIN and by.role is not Role.OWNER:
            raise InvalidState("only an owner can suspend an admin")
        if self.status is Status.ACTIVE:
            self._suspended(reason=reason)

    def erase(self, *, by: User) -> None:
        """End the account for good and forget its personal data (the application deletes the
        data key that sealed it). Nobody erases themselves, and as with suspension only an owner
        erases an admin or an owner: so an owner is erased only by another, and the last owner
        never is."""
        self._refuse_if_deleted()
        if not by.is_admin:
            raise NotAllowed("only an admin can erase an account")
        if by.id == self.id:
            raise InvalidState(
                "you cannot erase your own account: another administrator must (an owner for "
                "an owner), so the last owner is never erased"
            )
        if self.role is not Role.USER and by.role is not Role.OWNER:
            raise NotAllowed(f"only an owner can erase an {self.role.lower()}")
        self._erased()

    def reactivate(self) -> None:
        self._refuse_if_deleted()
        if self.status is Status.SUSPENDED:
            self._reactivated()

    def logged_in(self, session_id: str) -> None:
        self._refuse_unless_active()
        self._logged_in(session_id=session_id)

    def enroll_two_factor(self, sealed_secret: str) -> None:
        """Start (or restart) set-up with a new secret; it works once a code confirms it."""
        self._refuse_unless_active()
        if self.two_factor_enabled:
            raise InvalidState("two-factor authentication is already on; turn it off first")
        self._two_factor_enrolled(sealed_secret=sealed_secret)

    def secret_to_confirm(self) -> str:
        """The sealed secret whose first code `enable_two_factor` awaits."""
        self._refuse_unless_active()
        if self.two_factor_enabled:
            raise InvalidState("two-factor authentication is already on")
        if self.two_factor_secret is None:
            raise InvalidState("set up two-factor authentication first")
        return self.two_factor_secret

    def enable_two_factor(self, recovery_code_hashes: list[str], time_step: int) -> None:
        """Turn the second factor on, after a code of `time_step` proved the secret works."""
        self.secret_to_confirm()
        self._two_factor_enabled(
            recovery_code_hashes=list(recovery_code_hashes), time_step=time_step
        )

    def active_secret(self) -> str:
        """The sealed secret sign-in codes are checked against."""
        if not self.two_factor_enabled or self.two_factor_secret is None:
            raise InvalidState("two-factor authentication is off")
        return self.two_factor_secret

    def accepts_time_step(self, time_step: int) -> bool:
        return time_step > self.last_time_step

    def has_recovery_code(self, code_hash: str) -> bool:
        return code_hash in self.recovery_code_hashes

    def use_time_step(self, time_step: int) -> None:
        """Spend a TOTP code's time step, so the same code cannot be replayed."""
        self.active_secret()
        if not self.accepts_time_step(time_step):
            raise InvalidState("this code was already used")
        self._totp_code_used(time_step=time_step)

    def use_recovery_code(self, code_hash: str) -> None:
        self.active_secret()
        if not self.has_recovery_code(code_hash):
            raise InvalidState("this recovery code is unknown or was already used")
        self._recovery_code_used(code_hash=code_hash)

    def disable_two_factor(self) -> None:
        """Turn the second factor off; its secret and recovery codes are forgotten."""
        self.active_secret()
        self._two_factor_disabled()

    # -- events -----------------------------------------------------------------------------

    @event(EmailVerified)
    def _email_verified(self) -> None:
        self.email_verified = True

    @event(PasswordChanged)
    def _password_changed(
        self, password_hash: str, by_reset: bool, timestamp: datetime | None = None
    ) -> None:
        self.password_hash = password_hash
        if by_reset:
            self.sessions_valid_after = timestamp

    @event(ProfileChanged)
    def _profile_changed(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(RoleChanged)
    def _role_changed(self, role: str, previous: str) -> None:
        self.role = Role(role)

    @event(Suspended)
    def _suspended(self, reason: str | None) -> None:
        self.status = Status.SUSPENDED

    @event(Reactivated)
    def _reactivated(self) -> None:
        self.status = Status.ACTIVE

    @event(LoggedIn)
    def _logged_in(self, session_id: str) -> None:
        pass

    @event(TwoFactorEnrolled)
    def _two_factor_enrolled(self, sealed_secret: str) -> None:
        self.two_factor_secret = sealed_secret
        self.last_time_step = 0

    @event(TwoFactorEnabled)
    def _two_factor_enabled(self, recovery_code_hashes: list[str], time_step: int) -> None:
        self.two_factor_enabled = True
        self.recovery_code_hashes = list(recovery_code_hashes)
        self.last_time_step = time_step

    @event(TwoFactorDisabled)
    def _two_factor_disabled(self) -> None:
        self.two_factor_enabled = False
        self.two_factor_secret = None
        self.recovery_code_hashes = []

    @event(TotpCodeUsed)
    def _totp_code_used(self, time_step: int) -> None:
        self.last_time_step = time_step

    @event(RecoveryCodeUsed)
    def _recovery_code_used(self, code_hash: str) -> None:
        self.recovery_code_hashes = [h for h in self.recovery_code_hashes if h != code_hash]

    @event(Erased)
    def _erased(self) -> None:
        self.status = Status.DELETED
        self.email = None
        self.name = None
        self.image = None
        self.password_hash = None
        self.two_factor_enabled = False
        self.two_factor_secret = None
        self.recovery_code_hashes = []

    def _refuse_unless_active(self) -> None:
        if self.status is not Status.ACTIVE:
            raise InvalidState(f"the account is {self.status.lower()}")

    def _refuse_if_deleted(self) -> None:
        if self.status is Status.DELETED:
            raise InvalidState("the account is deleted")
