"""Session: one login and its family of rotating refresh tokens.

Each refresh redeems the current token and issues the next one. Presenting a token that was
already redeemed means it was copied: the whole family is revoked at once (RFC 9700's refresh
token reuse detection), and the application records a security event.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import Aggregate


class Redemption(StrEnum):
    ROTATED = "ROTATED"
    REUSED = "REUSED"
    REFUSED = "REFUSED"


class Session(Aggregate):
    class Started(Aggregate.Created):
        user_id: str
        token_id: str
        token_hash: str
        expires_at: datetime

    class Refreshed(Aggregate.Event):
        token_id: str
        token_hash: str
        expires_at: datetime
        replaced_token_id: str

    class Revoked(Aggregate.Event):
        reason: str

    @event(Started)
    def __init__(self, user_id: str, token_id: str, token_hash: str, expires_at: datetime) -> None:
        self.user_id = user_id
        self.token_id = token_id
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.redeemed_hashes: list[str] = []
        self.revoked_reason: str | None = None

    @classmethod
    def start(
        cls, *, session_id: str, user_id: str, token_id: str, token_hash: str, expires_at: datetime
    ) -> Session:
        return cls._create(
            cls.Started,
            id=session_id,
            user_id=user_id,
            token_id=token_id,
            token_hash=token_hash,
            expires_at=expires_at,
        )

    def is_live(self, now: datetime) -> bool:
        return self.revoked_reason is None and now < self.expires_at

    def redeem(
        self,
        presented_hash: str,
        *,
        now: datetime,
        next_token_id: str,
        next_token_hash: str,
        expires_at: datetime,
    ) -> Redemption:
        """Swap the current refresh token for the next one, or revoke the family on reuse."""
        if presented_hash in self.redeemed_hashes:
            if self.revoked_reason is None:
                self._revoked(reason="refresh_token_reuse")
            return Redemption.REUSED
        if presented_hash != self.token_hash or not self.is_live(now):
            return Redemption.REFUSED
        self._refreshed(
            token_id=next_token_id,
            token_hash=next_token_hash,
            expires_at=expires_at,
            replaced_token_id=self.token_id,
        )
        return Redemption.ROTATED

    def revoke(self, reason: str) -> None:
        if self.revoked_reason is None:
            self._revoked(reason=reason)

    @event(Refreshed)
    def _refreshed(
        self, token_id: str, token_hash: str, expires_at: datetime, replaced_token_id: str
    ) -> None:
        self.redeemed_hashes.append(self.token_hash)
        self.token_id = token_id
        self.token_hash = token_hash
        self.expires_at = expires_at

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.revoked_reason = reason
