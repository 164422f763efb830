"""Verification: a single-use, expiring token proving control of an email address or a step.

Used for email verification, password reset, and the second step of a two-factor sign-in (the
challenge a correct password earns); only the token's hash is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState


class Purpose(StrEnum):
    EMAIL_VERIFICATION = "EMAIL_VERIFICATION"
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105 (a purpose, not a password)
    TWO_FACTOR_LOGIN = "TWO_FACTOR_LOGIN"


class Verification(Aggregate):
    class Issued(Aggregate.Created):
        user_id: str
        purpose: str
        token_hash: str
        expires_at: datetime

    class Consumed(Aggregate.Event):
        pass

    @event(Issued)
    def __init__(self, user_id: str, purpose: str, token_hash: str, expires_at: datetime) -> None:
        self.user_id = user_id
        self.purpose = Purpose(purpose)
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.consumed = False

    @classmethod
    def issue(
        cls,
        *,
        verification_id: str,
        user_id: str,
        purpose: Purpose,
        token_hash: str,
        expires_at: datetime,
    ) -> Verification:
        return cls._create(
            cls.Issued,
            id=verification_id,
            user_id=user_id,
            purpose=str(purpose),
            token_hash=token_hash,
            expires_at=expires_at,
        )

    def consume(self, purpose: Purpose, *, now: datetime) -> None:
        if self.purpose is not purpose or self.consumed or now >= self.expires_at:
            raise InvalidState("the token is invalid, used or expired")
        self._consumed()

    @event(Consumed)
    def _consumed(self) -> None:
        self.consumed = True
