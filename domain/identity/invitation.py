"""Invitation: an administrator's single-use, expiring offer of an account with a given role.

The account's id is chosen when inviting, so the invited address is sealed with that future
user's data key: erasing the user later erases the address from the invitation too. Only a hash
of the token is kept; the token itself goes out by mail.
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState, NotAllowed
from domain.identity.user import Role, User

INVITE_PURPOSE = "INVITE"
"""The invitation's purpose in the `verification` table, beside the other single-use tokens."""


class Invitation(Aggregate):
    class Issued(Aggregate.Created):
        user_id: str
        email: str
        role: str
        invited_by: str
        token_hash: str
        expires_at: datetime

    class Accepted(Aggregate.Event):
        pass

    @event(Issued)
    def __init__(
        self,
        user_id: str,
        email: str,
        role: str,
        invited_by: str,
        token_hash: str,
        expires_at: datetime,
    ) -> None:
        self.user_id = user_id
        self.email = email
        self.role = Role(role)
        self.invited_by = invited_by
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.accepted = False

    @classmethod
    def issue(
        cls,
        *,
        invitation_id: str,
        user_id: str,
        sealed_email: str,
        role: Role,
        by: User,
        token_hash: str,
        expires_at: datetime,
    ) -> Invitation:
        check_grant(by, role)
        return cls._create(
            cls.Issued,
            id=invitation_id,
            user_id=user_id,
            email=sealed_email,
            role=str(role),
            invited_by=by.id,
            token_hash=token_hash,
            expires_at=expires_at,
        )

    def accept(self, *, now: datetime, inviter: User) -> None:
        """Use it up; it lapses with time, and when its inviter may no longer grant its role."""
        if self.accepted or now >= self.expires_at or not _may_grant(inviter, self.role):
            raise InvalidState("the invitation is invalid, used or expired")
        self._accepted()

    @event(Accepted)
    def _accepted(self) -> None:
        self.accepted = True


def check_grant(by: User, role: Role) -> None:
    """Admins invite users and admins; only an owner invites an owner."""
    if not _may_grant(by, role):
        raise NotAllowed(f"you may not invite someone as {role}")


def _may_grant(by: User, role: Role) -> bool:
    return by.is_active and by.is_admin and (role is not Role.OWNER or by.role is Role.OWNER)
