"""Request and response bodies of the credential routes (camelCase JSON, unknown fields refused).

Requests carry secret data (`data`); no response ever does. Answers say which fields the data
sets (`fields`), never their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from application.credentials.commands import ShareRecorded, Validation
from application.credentials.rotation import RotationReport
from domain.credentials.credential import Credential, ShareTerms

CredentialTypeName = Literal[
    "API_KEY", "BASIC_AUTH", "OAUTH", "BEARER_TOKEN", "CERTIFICATE", "SSH_KEY", "CUSTOM"
]


class _Body(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    pass


class CreateCredential(_Body):
    """A new credential; `data` holds the secret fields its `type` defines (see
    GET /credential-templates for each type's schema)."""

    name: str
    type: str
    """API_KEY, BASIC_AUTH, OAUTH, BEARER_TOKEN, CERTIFICATE, SSH_KEY or CUSTOM. A plain string:
    the enum error of the body decoder would echo a mistyped value, which may be a secret."""
    data: dict[str, Any]
    description: str | None = None
    provider: str | None = None
    is_active: bool = True
    expires_at: datetime | None = None
    metadata: dict[str, Any] = {}
    configuration: dict[str, Any] = {}
    validation_rules: dict[str, Any] = {}
    tags: list[str] = []
    notes: str | None = None


class UpdateCredential(_Body):
    """Only the fields present change; the data is replaced with PUT .../data."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    provider: str | UnsetType | None = UNSET
    is_active: bool | UnsetType = UNSET
    expires_at: datetime | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    configuration: dict[str, Any] | UnsetType = UNSET
    validation_rules: dict[str, Any] | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET
    notes: str | UnsetType | None = UNSET


class ReplaceData(_Body):
    """The new secret data, as a whole (fields left out are gone)."""

    data: dict[str, Any]


class ShareCredential(_Body):
    """Name the recipient by exactly one of `userId` and `email`. Sharing again with the same
    user changes the terms; the uses counted so far stay."""

    permission: str
    """USE or EDIT (a plain string for the reason `CreateCredential.type` is one)."""
    user_id: str | None = None
    email: str | None = None
    expires_at: datetime | None = None
    usage_limit: int | None = None


class _Out(msgspec.Struct, rename="camel"):
    pass


class ViewerShare(_Out):
    """The caller's own share of a credential shared with them."""

    id: str
    permission: str
    expires_at: datetime | None
    usage_limit: int | None
    used_count: int


class CredentialSummary(_Out):
    """A row of GET /credentials."""

    id: str
    name: str
    description: str | None
    type: str
    provider: str | None
    fields: list[str]
    """Names of the secret fields the data sets; their values are never shown."""
    encryption_version: str
    is_active: bool
    is_shared: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    usage_count: int
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    last_validated_at: datetime | None
    validation_status: str | None
    user_id: str
    revision: int
    permission: str
    """OWNER, or the level of the caller's share."""
    share: ViewerShare | None
    """The caller's share, when the credential is shared with them."""

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> CredentialSummary:
        return cls(**_row_fields(cls, row))


class CredentialRead(CredentialSummary):
    """GET /credentials/{id}: everything but the data."""

    metadata: dict[str, Any]
    configuration: dict[str, Any]
    validation_rules: dict[str, Any]
    notes: str | None

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> CredentialRead:
        return cls(**_row_fields(cls, row))


class CredentialPage(_Out):
    items: list[CredentialSummary]
    next_cursor: str | None


class CredentialCommandResult(CredentialRead):
    position: int

    @classmethod
    def recorded(
        cls, credential: Credential, position: int, viewer_id: str
    ) -> CredentialCommandResult:
        share = credential.share_of(viewer_id)
        return cls(
            id=credential.id,
            name=credential.name,
            description=credential.description,
            type=credential.credential_type,
            provider=credential.provider,
            fields=list(credential.fields),
            encryption_version=str(credential.key_version),
            is_active=credential.is_active,
            is_shared=bool(credential.shares),
            expires_at=credential.expires_at,
            last_used_at=credential.last_used_at,
            usage_count=credential.usage_count,
            tags=list(credential.tags),
            created_at=credential.created_on,
            updated_at=credential.modified_on,
            last_validated_at=credential.last_validated_at,
            validation_status=credential.validation_status,
            user_id=credential.owner_id,
            revision=credential.version,
            # A command's caller owns the credential or holds a share of it.
            permission=str(share.permission) if share else "OWNER",
            share=_viewer_share(share),
            metadata=credential.metadata,
            configuration=credential.configuration,
            validation_rules=credential.validation_rules,
            notes=credential.notes,
            position=position,
        )


class CredentialDeleted(_Out):
    id: str
    revision: int
    position: int


class CheckRead(_Out):
    name: str
    ok: bool
    message: str


class ValidationResult(_Out):
    """What POST /credentials/{id}/validate found (offline: no request left the server)."""

    id: str
    status: str
    checks: list[CheckRead]
    validated_at: datetime | None
    revision: int
    position: int

    @classmethod
    def of(cls, validation: Validation) -> ValidationResult:
        credential = validation.credential
        return cls(
            id=credential.id,
            status=str(validation.status),
            checks=[CheckRead(c.name, c.ok, c.message) for c in validation.checks],
            validated_at=credential.last_validated_at,
            revision=credential.version,
            position=validation.position,
        )


# -- sharing ---------------------------------------------------------------------------------


class ShareRead(_Out):
    id: str
    credential_id: str
    user_id: str
    permission: str
    expires_at: datetime | None
    usage_limit: int | None
    used_count: int
    shared_by: str
    created_at: datetime
    updated_at: datetime


class SharePage(_Out):
    items: list[ShareRead]
    next_cursor: str | None


class ShareCommandResult(_Out):
    """A share as granted or changed; `revision` is the credential's (its ETag)."""

    id: str
    credential_id: str
    user_id: str
    permission: str
    expires_at: datetime | None
    usage_limit: int | None
    used_count: int
    revision: int
    position: int

    @classmethod
    def of(cls, recorded: ShareRecorded) -> ShareCommandResult:
        share = recorded.share
        return cls(
            id=share.id,
            credential_id=recorded.credential.id,
            user_id=share.user_id,
            permission=str(share.permission),
            expires_at=share.expires_at,
            usage_limit=share.usage_limit,
            used_count=share.used_count,
            revision=recorded.credential.version,
            position=recorded.position,
        )


class UnshareResult(_Out):
    credential_id: str
    share_id: str
    revision: int
    position: int


# -- usage, templates, rotation ----------------------------------------------------------------


class UsageRead(_Out):
    """One use of a credential by an execution."""

    id: str
    credential_id: str
    user_id: str
    share_id: str | None
    execution_id: str | None
    node_id: str | None
    used_at: datetime


class UsagePage(_Out):
    items: list[UsageRead]
    next_cursor: str | None


class TemplateRead(_Out):
    """Setup guidance for one credential type or service, with the JSON Schemas of its data
    (the secret fields) and configuration."""

    id: str
    name: str
    description: str
    type: str
    provider: str | None
    data_schema: dict[str, Any]
    configuration_schema: dict[str, Any]
    configuration: dict[str, Any]
    instructions: str
    documentation_url: str | None
    icon: str | None
    is_built_in: bool


class TemplatePage(_Out):
    items: list[TemplateRead]
    next_cursor: str | None


class RotationResult(_Out):
    """What a master key rotation did: data keys now wrapped by `keyVersion`."""

    key_version: int
    rewrapped: int
    unchanged: int
    position: int

    @classmethod
    def of(cls, report: RotationReport) -> RotationResult:
        return cls(report.key_version, report.rewrapped, report.unchanged, report.position)


def _viewer_share(share: ShareTerms | None) -> ViewerShare | None:
    if share is None:
        return None
    return ViewerShare(
        share.id, str(share.permission), share.expires_at, share.usage_limit, share.used_count
    )


def _row_fields(cls: type[msgspec.Struct], row: dict[str, Any]) -> dict[str, Any]:
    """A credential read model row (with the viewer's share columns) as response fields."""
    fields = {name: row[name] for name in cls.__struct_fields__ if name in row}
    fields["fields"] = row["data_fields"]
    fields["share"] = (
        ViewerShare(
            row["share_id"],
            row["share_permission"],
            row["share_expires_at"],
            row["share_usage_limit"],
            row["share_used_count"],
        )
        if row["share_id"] is not None
        else None
    )
    return fields
