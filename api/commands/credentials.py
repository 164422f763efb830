"""Credential commands: create, change, replace data, delete, validate, share and unshare; and
the admins' master key rotation. Secret data comes in; no answer carries it back."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import needs, principal_of
from api.context import check_command_body, current_actor, etag, expected_revision, services
from api.schemas.credentials import (
    CreateCredential,
    CredentialCommandResult,
    CredentialDeleted,
    ReplaceData,
    RotationResult,
    ShareCommandResult,
    ShareCredential,
    UnshareResult,
    UpdateCredential,
    ValidationResult,
)
from api.schemas.workflows import as_plain, set_fields
from application.caller import Caller
from application.credentials.commands import CredentialService
from application.eventstore import Recorded
from domain.credentials.credential import Credential

AnyRequest = Request[Any, Any, Any]


def credential_service(request: AnyRequest) -> CredentialService:
    return services(request).credentials


def _result(
    recorded: Recorded[Credential], caller: Caller, status: int = 200
) -> Response[CredentialCommandResult]:
    return Response(
        CredentialCommandResult.recorded(recorded.aggregate, recorded.position, caller.user_id),
        status_code=status,
        headers=etag(recorded.aggregate.version),
    )


class CredentialCommands(Controller):
    path = "/credentials"
    tags = ["credentials"]
    opt = needs("credentials:use")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(credential_service, sync_to_thread=False),
    }

    @post(
        "/",
        summary="Create a credential (its data is sealed and never shown again)",
        sync_to_thread=True,
        status_code=201,
    )
    def create(
        self,
        data: JSONBody[CreateCredential],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[CredentialCommandResult]:
        details = set_fields(data)
        for key in ("name", "type", "data"):
            details.pop(key)
        recorded = service.create(
            caller,
            name=data.name,
            credential_type=data.type,
            data=as_plain(data)["data"],
            details={**details, "expires_at": data.expires_at},
        )
        return _result(recorded, caller, 201)

    @patch(
        "/{credential_id:str}",
        summary="Change a credential's details (EDIT); its data is replaced with PUT .../data",
        sync_to_thread=True,
    )
    def update(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        data: JSONBody[UpdateCredential],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[CredentialCommandResult]:
        changes = set_fields(data)
        if "expires_at" in changes:
            changes["expires_at"] = data.expires_at  # a datetime, not its JSON text
        return _result(
            service.update(
                caller, credential_id, changes, expected_revision=expected_revision(request)
            ),
            caller,
        )

    @put(
        "/{credential_id:str}/data",
        summary="Replace a credential's secret data as a whole (EDIT)",
        sync_to_thread=True,
    )
    def replace_data(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        data: JSONBody[ReplaceData],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[CredentialCommandResult]:
        return _result(
            service.replace_data(
                caller,
                credential_id,
                as_plain(data)["data"],
                expected_revision=expected_revision(request),
            ),
            caller,
        )

    @delete(
        "/{credential_id:str}",
        summary="Delete a credential (its owner); its shares end, its history stays",
        sync_to_thread=True,
        status_code=200,
    )
    def remove(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[CredentialDeleted]:
        recorded = service.delete(
            caller, credential_id, expected_revision=expected_revision(request)
        )
        credential = recorded.aggregate
        return Response(
            CredentialDeleted(credential.id, credential.version, recorded.position),
            headers=etag(credential.version),
        )

    @post(
        "/{credential_id:str}/validate",
        summary="Check the data offline (fields, expiry, certificate and key) and record it",
        sync_to_thread=True,
        status_code=200,
    )
    def validate(
        self,
        credential_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[ValidationResult]:
        validation = service.validate(caller, credential_id)
        return Response(
            ValidationResult.of(validation), headers=etag(validation.credential.version)
        )

    @post(
        "/{credential_id:str}/shares",
        summary="Share the credential with an account, or change its terms (201 when new)",
        description="The owner only. `expiresAt` ends the share at that time, `usageLimit` "
        "after that many uses by the recipient's executions.",
        sync_to_thread=True,
    )
    def share(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        data: JSONBody[ShareCredential],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[ShareCommandResult]:
        recorded = service.share(
            caller,
            credential_id,
            permission=data.permission,
            user_id=data.user_id,
            email=data.email,
            expires_at=data.expires_at,
            usage_limit=data.usage_limit,
            expected_revision=expected_revision(request),
        )
        return Response(
            ShareCommandResult.of(recorded),
            status_code=201 if recorded.created else 200,
            headers=etag(recorded.credential.version),
        )

    @delete(
        "/{credential_id:str}/shares/{share_id:str}",
        summary="End a share (the owner), or give up your own",
        sync_to_thread=True,
        status_code=200,
    )
    def unshare(
        self,
        request: AnyRequest,
        credential_id: FromPath[str],
        share_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> Response[UnshareResult]:
        recorded = service.unshare(
            caller, credential_id, share_id, expected_revision=expected_revision(request)
        )
        credential = recorded.aggregate
        return Response(
            UnshareResult(credential.id, share_id, credential.version, recorded.position),
            headers=etag(credential.version),
        )


class CredentialAdminCommands(Controller):
    path = "/admin/credentials"
    tags = ["credentials"]
    opt = needs("admin")
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(credential_service, sync_to_thread=False),
    }

    @post(
        "/rotate-key",
        summary="Re-wrap every credential's data key under the newest master key",
        description="For ADMIN and OWNER. After adding a version to A2N_MASTER_KEYS and "
        "restarting, this records one KeyRewrapped event per credential whose data key an "
        "older master key wraps; the data itself is never decrypted.",
        sync_to_thread=True,
        status_code=200,
    )
    def rotate_key(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        service: NamedDependency[CredentialService],
    ) -> RotationResult:
        services(request).identity.acting_admin(principal_of(request))
        return RotationResult.of(service.rotate_keys(caller))
