"""AccountLink: an account at an OpenID Connect provider, linked to at most one user.

Its id is derived from the provider name and the subject the provider gives that account, so two
sign-ins racing to link the same external account conflict in the event store itself (the way
`EmailClaim` makes an address belong to one account), and signing in finds the link by id.
Erasing its user unlinks it; the same external account may then be linked again, to a new user.
"""

from __future__ import annotations

import uuid

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.errors import InvalidState

_NAMESPACE = uuid.UUID("5b7c1f0e-6f3a-5d2e-9a41-a2a2a2a2a2a2")


class AccountLink(Aggregate):
    class Linked(Aggregate.Created):
        user_id: str
        provider: str
        issuer: str
        subject: str
        scope: str | None

    class Unlinked(Aggregate.Event):
        pass

    class Relinked(Aggregate.Event):
        user_id: str
        provider: str
        issuer: str
        subject: str
        scope: str | None

    @event(Linked)
    def __init__(
        self, user_id: str, provider: str, issuer: str, subject: str, scope: str | None
    ) -> None:
        self.user_id: str | None = user_id
        self.provider = provider
        self.issuer = issuer
        self.subject = subject
        self.scope = scope

    @staticmethod
    def id_for(provider: str, subject: str) -> str:
        """The link id of one external account. Provider names hold no newline (see
        `OAuthProvider`), so different (provider, subject) pairs never share an id."""
        return str(uuid.uuid5(_NAMESPACE, f"{provider}\n{subject}"))

    @classmethod
    def link(
        cls, *, user_id: str, provider: str, issuer: str, subject: str, scope: str | None
    ) -> AccountLink:
        return cls._create(
            cls.Linked,
            id=cls.id_for(provider, subject),
            user_id=user_id,
            provider=provider,
            issuer=issuer,
            subject=subject,
            scope=scope,
        )

    def unlink(self) -> None:
        if self.user_id is None:
            raise InvalidState("the account is not linked")
        self._unlinked()

    def relink(self, *, user_id: str, issuer: str, scope: str | None) -> None:
        """An unlinked external account linked again (its former user was erased)."""
        if self.user_id is not None:
            raise InvalidState("the account is linked to a user")
        self._relinked(
            user_id=user_id,
            provider=self.provider,
            issuer=issuer,
            subject=self.subject,
            scope=scope,
        )

    @event(Unlinked)
    def _unlinked(self) -> None:
        self.user_id = None

    @event(Relinked)
    def _relinked(
        self, user_id: str, provider: str, issuer: str, subject: str, scope: str | None
    ) -> None:
        self.user_id = user_id
        self.issuer = issuer
        self.scope = scope
