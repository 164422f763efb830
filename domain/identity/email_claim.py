"""EmailClaim: makes an email address belong to at most one account.

Its id is derived from a keyed digest of the normalised address, so registration saves the claim
and the User in one atomic write and a second registration of the same address conflicts in the
event store itself, without a lookup that could race. Login finds the account through it too.
"""

from __future__ import annotations

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState


class EmailClaim(Aggregate):
    class Claimed(Aggregate.Created):
        user_id: str

    class Released(Aggregate.Event):
        pass

    class Reclaimed(Aggregate.Event):
        user_id: str

    @event(Claimed)
    def __init__(self, user_id: str) -> None:
        self.user_id: str | None = user_id

    @classmethod
    def claim(cls, claim_id: str, user_id: str) -> EmailClaim:
        return cls._create(cls.Claimed, id=claim_id, user_id=user_id)

    @property
    def is_free(self) -> bool:
        return self.user_id is None

    def reclaim(self, user_id: str) -> None:
        """A released address registered again, by a new account."""
        if not self.is_free:
            raise InvalidState("the address belongs to an account")
        self._reclaimed(user_id=user_id)

    def release(self) -> None:
        if self.user_id is None:
            raise InvalidState("the address is not claimed")
        self._released()

    @event(Released)
    def _released(self) -> None:
        self.user_id = None

    @event(Reclaimed)
    def _reclaimed(self, user_id: str) -> None:
        self.user_id = user_id
