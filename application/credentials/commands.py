"""Credential use cases: each loads a Credential, checks what the caller may do, calls the
aggregate and saves what it decided. Data arrives in clear and leaves this module sealed.

Access is decided on the aggregate (never a read model that may lag): a credential the caller
neither owns nor holds a share of does not exist for them (404); one they hold a share of but
that needs more, or whose share expired, is 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application.caller import Caller
from application.credentials.app import CredentialsApp
from application.credentials.rotation import RotationReport, rotate_credential_keys
from application.credentials.sealing import CredentialSealer
from application.errors import Forbidden, NotFound
from application.eventstore import Recorded
from application.identity.commands import IdentityService
from application.ids import new_id
from domain.credentials.checks import Check, ValidationStatus
from domain.credentials.credential import (
    Credential,
    CredentialPermission,
    ShareTerms,
    share_terms_violations,
)
from domain.errors import ValidationFailed

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Validation:
    """The outcome of validating a credential, as recorded."""

    credential: Credential
    status: ValidationStatus
    checks: list[Check]
    position: int


@dataclass(frozen=True)
class ShareRecorded:
    """A share as granted or changed; `created` when this command granted it."""

    credential: Credential
    share: ShareTerms
    created: bool
    position: int


class CredentialService:
    def __init__(
        self,
        app: CredentialsApp,
        sealer: CredentialSealer,
        identity: IdentityService,
        clock: Clock = utc_now,
    ) -> None:
        self.app = app
        self.sealer = sealer
        self.identity = identity
        self.clock = clock

    def create(
        self,
        caller: Caller,
        *,
        name: Any,
        credential_type: Any,
        data: Any,
        details: Mapping[str, Any] | None = None,
    ) -> Recorded[Credential]:
        """A new credential of the caller's; `details` as `Credential.create` takes them."""
        credential_id = new_id()
        credential = Credential.create(
            credential_id=credential_id,
            owner_id=caller.user_id,
            name=name,
            credential_type=credential_type,
            data=data,
            seal=self.sealer.for_credential(credential_id),
            now=self.clock(),
            details=details,
        )
        return Recorded(credential, self.app.record(caller.metadata(), credential))

    def update(
        self,
        caller: Caller,
        credential_id: str,
        changes: Mapping[str, Any],
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Credential]:
        """Change details (EDIT)."""
        return self._change(
            caller,
            credential_id,
            lambda c: c.change_details(changes, self.clock()),
            CredentialPermission.EDIT,
            expected_revision,
        )

    def replace_data(
        self,
        caller: Caller,
        credential_id: str,
        data: Any,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Credential]:
        """Replace the secret data as a whole (EDIT)."""
        return self._change(
            caller,
            credential_id,
            lambda c: c.replace_data(data, self.sealer.for_credential(c.id)),
            CredentialPermission.EDIT,
            expected_revision,
        )

    def delete(
        self, caller: Caller, credential_id: str, *, expected_revision: int | None = None
    ) -> Recorded[Credential]:
        """Delete the credential (its owner only)."""
        return self._change(
            caller, credential_id, Credential.delete, CredentialPermission.OWNER, expected_revision
        )

    def validate(self, caller: Caller, credential_id: str) -> Validation:
        """Open the data, check it offline and record the outcome (USE is enough: the answer
        says what is wrong, never a value)."""
        outcome: list[tuple[ValidationStatus, list[Check]]] = []

        def check(credential: Credential) -> None:
            data = self.sealer.open(credential.id, credential.data_version, credential.sealed)
            outcome[:] = [credential.validate(data, self.clock())]

        recorded = self._change(caller, credential_id, check, CredentialPermission.USE, None)
        status, checks = outcome[0]
        return Validation(recorded.aggregate, status, checks, recorded.position)

    def rotate_keys(self, caller: Caller) -> RotationReport:
        """Re-wrap every credential's data key under the newest master key (admins: the
        caller checks the role)."""
        return rotate_credential_keys(self.app, self.sealer, caller)

    # -- sharing ----------------------------------------------------------------------------

    def share(
        self,
        caller: Caller,
        credential_id: str,
        *,
        permission: Any,
        user_id: str | None = None,
        email: str | None = None,
        expires_at: Any = None,
        usage_limit: Any = None,
        expected_revision: int | None = None,
    ) -> ShareRecorded:
        """Share with the account named by `user_id` or `email`, or change the terms of its
        share (the owner only)."""
        share_id = new_id()
        granted: list[ShareTerms] = []

        def grant(credential: Credential) -> None:
            now = self.clock()
            broken = share_terms_violations(permission, expires_at, usage_limit, now)
            try:
                # Looked up only once the caller proved ownership: nobody else learns anything.
                recipient = self.identity.active_recipient(user_id, email)
            except ValidationFailed as unknown:
                raise ValidationFailed(unknown.violations + broken) from None
            granted[:] = [
                credential.share_with(
                    recipient,
                    permission,
                    share_id=share_id,
                    expires_at=expires_at,
                    usage_limit=usage_limit,
                    now=now,
                )
            ]

        recorded = self._change(
            caller, credential_id, grant, CredentialPermission.OWNER, expected_revision
        )
        share = granted[0]
        return ShareRecorded(recorded.aggregate, share, share.id == share_id, recorded.position)

    def unshare(
        self,
        caller: Caller,
        credential_id: str,
        share_id: str,
        *,
        expected_revision: int | None = None,
    ) -> Recorded[Credential]:
        """End a share: its owner may end any, a sharee their own (even an expired one)."""

        def revoke(credential: Credential) -> None:
            mine = credential.share_of(caller.user_id)
            if credential.owner_id != caller.user_id and (mine is None or mine.id != share_id):
                raise Forbidden("only the credential's owner may end another user's share")
            if credential.unshare(share_id) is None:
                raise NotFound(f"{credential_id} share {share_id}")

        return self.app.change(
            credential_id,
            Credential,
            revoke,
            caller.metadata(),
            expected_revision=expected_revision,
            visible=lambda c: c.known_to(caller.user_id),
        )

    def _change(
        self,
        caller: Caller,
        credential_id: str,
        command: Callable[[Credential], Any],
        needs: CredentialPermission,
        expected_revision: int | None,
    ) -> Recorded[Credential]:
        return self.app.change(
            credential_id,
            Credential,
            command,
            caller.metadata(),
            expected_revision=expected_revision,
            visible=access_check(caller.user_id, needs, self.clock()),
        )


def access_check(
    user_id: str, needs: CredentialPermission, now: datetime
) -> Callable[[Credential], bool]:
    """For `EventStoreApp.change(visible=...)`: False (404) when the credential is not known to
    `user_id`; Forbidden (403) when their share expired or grants less than `needs`."""

    def visible(credential: Credential) -> bool:
        if not credential.known_to(user_id):
            return False
        held = credential.permission_of(user_id, now)
        if held is None:
            raise Forbidden(f"your share of credential {credential.id} has expired")
        if not held.includes(needs):
            raise Forbidden(f"this needs {needs} permission on the credential; you have {held}")
        return True

    return visible
