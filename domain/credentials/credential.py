"""The Credential aggregate: a user's secret (API key, password, token, certificate, key) with
its details, its shares and a record of every use.

The secret data never enters the aggregate or its events in clear. A command receives the data,
checks it against the type's schema and hands it to `seal` (the application's envelope
encryption), and only the sealed result is recorded: the ciphertext, the data key wrapped by a
master key, and that master key's version. `data_version` counts data replacements; it is part of
what the encryption authenticates, so a ciphertext cannot be passed off as another version's.

Sharing grants another user USE (their executions may decrypt it) or EDIT (also change it), for a
limited time and number of uses if the owner likes. Every use is an event (`CredentialUsed`), so
a share's quota is checked against the aggregate itself and two concurrent uses cannot both take
its last use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import Aggregate
from domain.credentials.checks import Check, ValidationStatus, run_checks
from domain.credentials.types import (
    MAX_CONFIGURATION_BYTES,
    SPECS,
    CredentialType,
    TypeSpec,
    json_size,
    spec_of,
)
from domain.errors import InvalidState, ValidationFailed, Violation
from domain.text import camel, text_rule, text_violations
from domain.workflows.workflow import checked_tags

MAX_NAME_LENGTH = 255
MAX_TEXT_LENGTH = 10_000
MAX_PROVIDER_LENGTH = 100
MAX_JSON_DEPTH = 8
MAX_USAGE_LIMIT = 1_000_000_000
DETAIL_FIELDS = (
    "name",
    "description",
    "provider",
    "is_active",
    "expires_at",
    "metadata",
    "configuration",
    "validation_rules",
    "tags",
    "notes",
)
SEALED_PREFIX = "a2n-credential:v1:"


class CredentialPermission(StrEnum):
    """What a user may do with a credential; each level includes the ones before it.

    - USE: see its details (never its data), use it in their executions, validate it.
    - EDIT: also change its details and replace its data.
    - OWNER: also share, unshare and delete it; not grantable.
    """

    USE = "USE"
    EDIT = "EDIT"
    OWNER = "OWNER"

    def includes(self, other: CredentialPermission) -> bool:
        return _ORDER.index(self) >= _ORDER.index(other)


_ORDER = tuple(CredentialPermission)
GRANTABLE = (CredentialPermission.USE, CredentialPermission.EDIT)


class CredentialUnavailable(InvalidState):
    """The credential exists and the user may know it, but it cannot be used now (deactivated,
    expired, a share expired or its uses used up). The message says which; never a secret."""


@dataclass(frozen=True)
class SealedData:
    """Credential data as stored: `ciphertext` (base64 of nonce and AES-GCM output) under a
    random data key, `wrapped_key` (base64) that data key wrapped by master key `key_version`."""

    ciphertext: str
    wrapped_key: str
    key_version: int

    def as_text(self, data_version: int) -> str:
        """The self-describing text kept in the `credential.encrypted_data` column."""
        return (
            f"{SEALED_PREFIX}{data_version}:{self.key_version}:{self.wrapped_key}:{self.ciphertext}"
        )


Seal = Callable[[int, dict[str, Any]], SealedData]
"""(data version, data) -> the data sealed for this credential at that version."""


@dataclass(frozen=True)
class ShareTerms:
    """One user's share of a credential."""

    id: str
    user_id: str
    permission: CredentialPermission
    expires_at: datetime | None
    usage_limit: int | None
    used_count: int

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def refusal(self, credential_id: str, now: datetime) -> str | None:
        """Why this share allows no use now, or None when it allows one."""
        if self.is_expired(now):
            assert self.expires_at is not None
            return (
                f"your share of credential {credential_id} expired at {self.expires_at.isoformat()}"
            )
        if self.usage_limit is not None and self.used_count >= self.usage_limit:
            return (
                f"your share of credential {credential_id} has used all {self.usage_limit} uses "
                "it allows; ask its owner for more"
            )
        return None


class Credential(Aggregate):
    """A named secret of one owner, sealed, shared with some users under terms."""

    class Created(Aggregate.Created):
        owner_id: str
        name: str
        description: str | None
        credential_type: str
        provider: str | None
        is_active: bool
        expires_at: datetime | None
        metadata: dict[str, Any]
        configuration: dict[str, Any]
        validation_rules: dict[str, Any]
        tags: list[str]
        notes: str | None
        data_ciphertext: str
        data_key_wrapped: str
        key_version: int
        data_version: int
        fields: list[str]

    class DetailsChanged(Aggregate.Event):
        changes: dict[str, Any]
        previous: dict[str, Any]

    class DataReplaced(Aggregate.Event):
        data_ciphertext: str
        data_key_wrapped: str
        key_version: int
        data_version: int
        fields: list[str]

    class KeyRewrapped(Aggregate.Event):
        """The current data key, unchanged, is now wrapped by master key `key_version`."""

        data_key_wrapped: str
        key_version: int
        previous: dict[str, int]

    class Shared(Aggregate.Event):
        """A user was granted a share, or had its terms (`previous`) changed."""

        share_id: str
        user_id: str
        permission: str
        expires_at: datetime | None
        usage_limit: int | None
        previous: dict[str, Any] | None

    class Unshared(Aggregate.Event):
        share_id: str
        user_id: str

    class Used(Aggregate.Event):
        """`user_id`'s execution decrypted the data, as the owner or through share `share_id`."""

        user_id: str
        share_id: str | None
        execution_id: str | None
        node_id: str | None

    class Validated(Aggregate.Event):
        status: str
        checks: list[dict[str, Any]]
        data_version: int

    class Deleted(Aggregate.Event):
        pass

    @event(Created)
    def __init__(
        self,
        owner_id: str,
        name: str,
        description: str | None,
        credential_type: str,
        provider: str | None,
        is_active: bool,
        expires_at: datetime | None,
        metadata: dict[str, Any],
        configuration: dict[str, Any],
        validation_rules: dict[str, Any],
        tags: list[str],
        notes: str | None,
        data_ciphertext: str,
        data_key_wrapped: str,
        key_version: int,
        data_version: int,
        fields: list[str],
    ) -> None:
        # Only JSON-like values: snapshots store this state as it is.
        self.owner_id = owner_id
        self.name = name
        self.description = description
        self.credential_type = credential_type
        self.provider = provider
        self.is_active = is_active
        self.expires_at = expires_at
        self.metadata = metadata
        self.configuration = configuration
        self.validation_rules = validation_rules
        self.tags = tags
        self.notes = notes
        self._set_data(data_ciphertext, data_key_wrapped, key_version, data_version, fields)
        self.shares: dict[str, dict[str, Any]] = {}
        self.usage_count = 0
        self.last_used_at: datetime | None = None
        self.validation_status: str | None = None
        self.last_validated_at: datetime | None = None
        self.is_deleted = False

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        credential_id: str,
        owner_id: str,
        name: Any,
        credential_type: Any,
        data: Any,
        seal: Seal,
        now: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> Credential:
        """A new credential; `details` may set any of DETAIL_FIELDS but `name`."""
        spec = spec_of(credential_type) if isinstance(credential_type, str) else None
        if spec is None:
            kinds = ", ".join(CredentialType)
            raise ValidationFailed([Violation("/type", f"must be one of: {kinds}")])
        given = {**(details or {}), "name": name}
        cleaned, violations = _checked_details(given, spec, now)
        violations += _unknown(given)
        violations += _data_violations(spec, data)
        if violations:
            raise ValidationFailed(violations)
        sealed = seal(1, dict(data))
        return cls._create(
            cls.Created,
            id=credential_id,
            owner_id=owner_id,
            name=cleaned["name"],
            description=cleaned.get("description"),
            credential_type=str(spec.type),
            provider=cleaned.get("provider"),
            is_active=cleaned.get("is_active", True),
            expires_at=cleaned.get("expires_at"),
            metadata=cleaned.get("metadata", {}),
            configuration=cleaned.get("configuration", {}),
            validation_rules=cleaned.get("validation_rules", {}),
            tags=cleaned.get("tags", []),
            notes=cleaned.get("notes"),
            data_ciphertext=sealed.ciphertext,
            data_key_wrapped=sealed.wrapped_key,
            key_version=sealed.key_version,
            data_version=1,
            fields=sorted(data),
        )

    def change_details(self, changes: Mapping[str, Any], now: datetime) -> None:
        """Change any of DETAIL_FIELDS; values equal to the current ones record nothing."""
        self._refuse_if_deleted()
        cleaned, violations = _checked_details(changes, self.spec, now)
        violations += _unknown(changes)
        if violations:
            raise ValidationFailed(violations)
        current = {key: getattr(self, key) for key in DETAIL_FIELDS}
        changed = {key: value for key, value in cleaned.items() if current[key] != value}
        if changed:
            self._details_changed(changes=changed, previous={k: current[k] for k in changed})

    def replace_data(self, data: Any, seal: Seal) -> None:
        """Replace the secret data as a whole (a new data key seals it). Sealed data cannot be
        compared, so this always records a new version."""
        self._refuse_if_deleted()
        violations = _data_violations(self.spec, data)
        if violations:
            raise ValidationFailed(violations)
        version = self.data_version + 1
        sealed = seal(version, dict(data))
        self._data_replaced(
            data_ciphertext=sealed.ciphertext,
            data_key_wrapped=sealed.wrapped_key,
            key_version=sealed.key_version,
            data_version=version,
            fields=sorted(data),
        )

    def rewrap(self, wrapped_key: str, key_version: int) -> bool:
        """Record that the data key is now wrapped by master key `key_version`; False (nothing
        recorded) when it already is. Deleted credentials are left as they are: once the old
        master key is retired their data is unreadable for good."""
        if self.is_deleted or key_version == self.key_version:
            return False
        self._key_rewrapped(
            data_key_wrapped=wrapped_key,
            key_version=key_version,
            previous={"keyVersion": self.key_version},
        )
        return True

    def delete(self) -> None:
        """Delete the credential: it can no longer be used, read or changed; its shares end.
        Its history (uses included) stays in the event store."""
        self._refuse_if_deleted()
        self._deleted()

    def validate(
        self, data: Mapping[str, Any], now: datetime
    ) -> tuple[ValidationStatus, list[Check]]:
        """Check the opened `data` offline (see `checks`) and record the outcome."""
        self._refuse_if_deleted()
        status, checks = run_checks(self.spec, data, expires_at=self.expires_at, now=now)
        self._validated(
            status=str(status), checks=[c.as_dict() for c in checks], data_version=self.data_version
        )
        return status, checks

    def use(
        self, user_id: str, *, execution_id: str | None, node_id: str | None, now: datetime
    ) -> None:
        """Record that `user_id` (the owner, or a user it is shared with) decrypts the data now,
        or raise CredentialUnavailable saying why they may not. Callers first make sure
        `user_id` is `known_to` it."""
        self._refuse_if_deleted()
        share = None if user_id == self.owner_id else self.share_of(user_id)
        if user_id != self.owner_id and share is None:
            raise CredentialUnavailable(f"credential {self.id} is not shared with you")
        if not self.is_active:
            raise CredentialUnavailable(f"credential {self.id} is deactivated")
        if self.expires_at is not None and self.expires_at <= now:
            raise CredentialUnavailable(
                f"credential {self.id} expired at {self.expires_at.isoformat()}"
            )
        refusal = share.refusal(self.id, now) if share is not None else None
        if refusal is not None:
            raise CredentialUnavailable(refusal)
        self._used(
            user_id=user_id,
            share_id=share.id if share is not None else None,
            execution_id=execution_id,
            node_id=node_id,
        )

    # -- sharing ----------------------------------------------------------------------------

    def known_to(self, user_id: str) -> bool:
        """Whether `user_id` may know the credential exists (its owner, or holding a share,
        even an expired or used-up one)."""
        return not self.is_deleted and (user_id == self.owner_id or user_id in self.shares)

    def permission_of(self, user_id: str, now: datetime) -> CredentialPermission | None:
        """What `user_id` may do now: OWNER, the level of an unexpired share, else None."""
        if self.is_deleted:
            return None
        if user_id == self.owner_id:
            return CredentialPermission.OWNER
        share = self.share_of(user_id)
        if share is None or share.is_expired(now):
            return None
        return share.permission

    def share_of(self, user_id: str) -> ShareTerms | None:
        found = self.shares.get(user_id)
        if found is None:
            return None
        return ShareTerms(
            id=found["id"],
            user_id=user_id,
            permission=CredentialPermission(found["permission"]),
            expires_at=found["expires_at"],
            usage_limit=found["usage_limit"],
            used_count=found["used_count"],
        )

    def share_with(
        self,
        user_id: str,
        permission: Any,
        *,
        share_id: str,
        expires_at: Any = None,
        usage_limit: Any = None,
        now: datetime,
    ) -> ShareTerms:
        """Grant `user_id` a share on these terms, or change the terms of theirs (its count of
        uses so far stays: raising the limit grants more uses). The same terms record nothing."""
        violations = share_terms_violations(permission, expires_at, usage_limit, now)
        if violations:
            raise ValidationFailed(violations)
        self._refuse_if_deleted()
        if user_id == self.owner_id:
            raise InvalidState("the owner may use the credential already; share with someone else")
        terms = {
            "permission": str(permission),
            "expires_at": expires_at,
            "usage_limit": usage_limit,
        }
        current = self.shares.get(user_id)
        if current is None:
            self._shared(share_id=share_id, user_id=user_id, previous=None, **terms)
        else:
            previous = {key: current[key] for key in terms}
            if previous != terms:
                self._shared(share_id=current["id"], user_id=user_id, previous=previous, **terms)
        share = self.share_of(user_id)
        assert share is not None
        return share

    def unshare(self, share_id: str) -> ShareTerms | None:
        """End share `share_id`; None (nothing recorded) when there is no such share."""
        for user_id in self.shares:
            share = self.share_of(user_id)
            if share is not None and share.id == share_id:
                self._unshared(share_id=share_id, user_id=user_id)
                return share
        return None

    @property
    def spec(self) -> TypeSpec:
        return SPECS[CredentialType(self.credential_type)]

    @property
    def sealed(self) -> SealedData:
        return SealedData(self.data_ciphertext, self.data_key_wrapped, self.key_version)

    # -- events -----------------------------------------------------------------------------

    def _set_data(
        self, ciphertext: str, wrapped_key: str, key_version: int, version: int, fields: list[str]
    ) -> None:
        self.data_ciphertext = ciphertext
        self.data_key_wrapped = wrapped_key
        self.key_version = key_version
        self.data_version = version
        self.fields = fields

    @event(DetailsChanged)
    def _details_changed(self, changes: dict[str, Any], previous: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event(DataReplaced)
    def _data_replaced(
        self,
        data_ciphertext: str,
        data_key_wrapped: str,
        key_version: int,
        data_version: int,
        fields: list[str],
    ) -> None:
        self._set_data(data_ciphertext, data_key_wrapped, key_version, data_version, fields)

    @event(KeyRewrapped)
    def _key_rewrapped(
        self, data_key_wrapped: str, key_version: int, previous: dict[str, int]
    ) -> None:
        self.data_key_wrapped = data_key_wrapped
        self.key_version = key_version

    @event(Shared)
    def _shared(
        self,
        share_id: str,
        user_id: str,
        permission: str,
        expires_at: datetime | None,
        usage_limit: int | None,
        previous: dict[str, Any] | None,
    ) -> None:
        used = self.shares[user_id]["used_count"] if user_id in self.shares else 0
        self.shares[user_id] = {
            "id": share_id,
            "permission": permission,
            "expires_at": expires_at,
            "usage_limit": usage_limit,
            "used_count": used,
        }

    @event(Unshared)
    def _unshared(self, share_id: str, user_id: str) -> None:
        del self.shares[user_id]

    @event(Used)
    def _used(
        self,
        user_id: str,
        share_id: str | None,
        execution_id: str | None,
        node_id: str | None,
        timestamp: datetime | None = None,
    ) -> None:
        # The library passes the event's own timestamp when the event is applied.
        self.usage_count += 1
        self.last_used_at = timestamp
        if share_id is not None:
            self.shares[user_id]["used_count"] += 1

    @event(Validated)
    def _validated(
        self,
        status: str,
        checks: list[dict[str, Any]],
        data_version: int,
        timestamp: datetime | None = None,
    ) -> None:
        self.validation_status = status
        self.last_validated_at = timestamp

    @event(Deleted)
    def _deleted(self) -> None:
        self.is_deleted = True
        self.shares = {}

    def _refuse_if_deleted(self) -> None:
        if self.is_deleted:
            raise InvalidState("the credential is deleted")


def share_terms_violations(
    permission: Any, expires_at: Any, usage_limit: Any, now: datetime
) -> list[Violation]:
    """The rules a share's terms break (checked before the recipient is looked up, so every
    mistake of a request is reported at once)."""
    violations: list[Violation] = []
    if permission not in GRANTABLE:
        violations.append(Violation("/permission", "must be USE or EDIT"))
    violations += _expiry_violations(expires_at, now)
    if usage_limit is not None and (
        isinstance(usage_limit, bool)
        or not isinstance(usage_limit, int)
        or not 1 <= usage_limit <= MAX_USAGE_LIMIT
    ):
        violations.append(
            Violation("/usageLimit", f"must be an integer from 1 to {MAX_USAGE_LIMIT}")
        )
    return violations


def _unknown(values: Mapping[str, Any]) -> list[Violation]:
    return [
        Violation(f"/{key}", "cannot be set here")
        for key in values
        if key not in DETAIL_FIELDS and key != "name"
    ]


def _data_violations(spec: TypeSpec, data: Any) -> list[Violation]:
    if not isinstance(data, Mapping):
        return [Violation("/data", "must be an object")]
    violations = [v.under("/data") for v in text_violations(data, 2)]
    return violations or spec.data_violations(data)


def _expiry_violations(expires_at: Any, now: datetime) -> list[Violation]:
    if expires_at is None:
        return []
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        return [Violation("/expiresAt", "must be a date-time with a time zone")]
    if expires_at <= now:
        return [Violation("/expiresAt", "must be in the future")]
    return []


def _checked_details(
    values: Mapping[str, Any], spec: TypeSpec, now: datetime
) -> tuple[dict[str, Any], list[Violation]]:
    """Clean the detail fields present in `values` and list the rules they break."""
    violations = text_violations(
        {k: values[k] for k in DETAIL_FIELDS if k in values}, MAX_JSON_DEPTH
    )
    if violations:
        return {}, violations
    cleaned: dict[str, Any] = {}
    for key, check in _TEXTS.items():
        if key in values:
            text, problem = check(values[key])
            if problem is None:
                cleaned[key] = text
            else:
                violations.append(Violation(f"/{camel(key)}", problem))
    if "is_active" in values:
        if isinstance(values["is_active"], bool):
            cleaned["is_active"] = values["is_active"]
        else:
            violations.append(Violation("/isActive", "must be true or false"))
    if "expires_at" in values:
        found = _expiry_violations(values["expires_at"], now)
        violations += found
        if not found:
            cleaned["expires_at"] = values["expires_at"]
    for key in ("metadata", "validation_rules"):
        if key not in values:
            continue
        if not isinstance(values[key], Mapping):
            violations.append(Violation(f"/{camel(key)}", "must be an object"))
        elif json_size(values[key]) > MAX_CONFIGURATION_BYTES:
            message = f"is larger than {MAX_CONFIGURATION_BYTES} bytes as JSON"
            violations.append(Violation(f"/{camel(key)}", message))
        else:
            cleaned[key] = dict(values[key])
    if "configuration" in values:
        found = spec.configuration_violations(values["configuration"])
        violations += found
        if not found:
            cleaned["configuration"] = dict(values["configuration"])
    if "tags" in values:
        tags, tag_violations = checked_tags(values["tags"])
        violations += tag_violations
        cleaned["tags"] = tags
    return cleaned, violations


_TEXTS = {
    "name": text_rule(MAX_NAME_LENGTH, required=True),
    "description": text_rule(MAX_TEXT_LENGTH),
    "provider": text_rule(MAX_PROVIDER_LENGTH),
    "notes": text_rule(MAX_TEXT_LENGTH),
}
