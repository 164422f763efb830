"""Account lifecycle for administrators: invitations, GDPR erasure, resolving security events.

Erasure is crypto-shredding. One atomic save records `User.Erased` (which holds nothing
personal), frees the email address for a new registration and unlinks provider accounts; then the
user's data key and mail are deleted, so every sealed field of every event of that user becomes
unreadable. Sessions, refresh tokens and API keys stop at once because authentication requires an
active user; the projectors revoke and anonymise their rows from the same event, so a rebuild from
zero gives the same tables.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError
from psycopg_pool import ConnectionPool

from application.caller import Caller
from application.crypto import new_token, token_hash
from application.errors import ConcurrentWrite, Conflict
from application.eventstore import SAVE_ATTEMPTS, Recorded
from application.identity.commands import IdentityService, normalize_email
from application.identity.principal import Principal
from application.ids import new_id
from application.notifications.store import drop_notifications
from domain.aggregate import Aggregate
from domain.identity.account_link import AccountLink
from domain.identity.invitation import INVITE_PURPOSE, Invitation, check_grant
from domain.identity.security_event import SecurityEvent
from domain.identity.user import Role, Status, User

INVITATION_TTL = timedelta(days=7)


class AccountLifecycle:
    def __init__(self, identity: IdentityService, pool: ConnectionPool[Any]) -> None:
        self.identity = identity
        self.app = identity.app
        self.pool = pool

    def invite(
        self, caller: Caller, admin: Principal, *, email: str, role: Role
    ) -> Recorded[Invitation]:
        """Mail a single-use registration token for `email` with `role`."""
        acting = self.identity.acting_admin(admin)
        check_grant(acting, role)
        address = normalize_email(email)
        if self.identity.user_with_email(address) is not None:
            raise Conflict("an account with this email address exists")
        user_id = new_id()
        secret = new_token()
        invitation = Invitation.issue(
            invitation_id=new_id(),
            user_id=user_id,
            sealed_email=self.identity.personal.seal(user_id, address),
            role=role,
            by=acting,
            token_hash=token_hash(secret),
            expires_at=self.identity.now() + INVITATION_TTL,
        )
        position = self.app.record(caller.metadata(), invitation)
        self.identity.outbox.queue(
            user_id=user_id,
            to=address,
            subject="You are invited to A2N",
            body=f"You are invited to A2N as {role}. Register with POST /api/v1/auth/register "
            f'with this address and "inviteToken" within {INVITATION_TTL}:\n\n'
            f"{invitation.id}.{secret}\n",
            purpose=INVITE_PURPOSE,
        )
        return Recorded(invitation, position)

    def erase(self, caller: Caller, admin: Principal, user_id: str) -> Recorded[User]:
        """Erase an account (GDPR); see the module docstring. Erasing an account again finishes
        an erasure that stopped between its save and the key's deletion, then answers 409."""
        acting = self.identity.acting_admin(admin)
        for _ in range(SAVE_ATTEMPTS):
            user = self.app.load(user_id, User)
            if user.status is Status.DELETED:
                self._shred(user.id)
            address = self.identity.personal.open(user.id, user.email)
            user.erase(by=acting)
            freed: list[Aggregate] = []
            claim = self.identity.claim_for(address) if address is not None else None
            if claim is not None and claim.user_id == user.id:
                claim.release()
                freed.append(claim)
            try:
                position = self.app.record(
                    caller.metadata(), user, *freed, *self._unlinked(user.id)
                )
            except IntegrityError:
                continue
            self._shred(user.id)
            return Recorded(user, position)
        raise ConcurrentWrite(user_id)

    def resolve_security_event(
        self, caller: Caller, admin: Principal, event_id: str, note: str | None
    ) -> Recorded[SecurityEvent]:
        acting = self.identity.acting_admin(admin)
        return self.app.change(
            event_id,
            SecurityEvent,
            lambda alert: alert.resolve(acting.id, note),
            caller.metadata(),
        )

    def _unlinked(self, user_id: str) -> list[AccountLink]:
        """The user's provider links, each unlinked. They are found through the `account` table,
        so the caller lets the identity projection catch up first (the erase route does); a link
        made while the erasure runs stays tied to the erased account, which cannot sign in."""
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT id FROM account WHERE user_id = %s", (user_id,)).fetchall()
        links = []
        for (link_id,) in rows:
            link = self.app.load(link_id, AccountLink)
            if link.user_id == user_id:
                link.unlink()
                links.append(link)
        return links

    def _shred(self, user_id: str) -> None:
        """Delete what the event store cannot: the data key, mail (addressed in clear) and the
        notifications meant for the user."""
        self.identity.personal.erase(user_id)
        self.identity.outbox.drop(user_id)
        with self.pool.connection() as conn:
            drop_notifications(conn, user_id)
