"""Identity commands: sign-up and sign-in (public), the caller's own account, and admin actions."""

from __future__ import annotations

from typing import Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, delete, patch, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from api.auth import PUBLIC, SESSION_ONLY, needs, principal_of
from api.context import anonymous_caller, check_command_body, current_actor, services
from api.schemas.identity import (
    Accepted,
    ApiKeyCreated,
    ChangePassword,
    CreateApiKey,
    ForgotPassword,
    InvitationCreated,
    Invite,
    Refresh,
    Register,
    ResetPassword,
    ResolveSecurityEvent,
    SecurityEventResolved,
    SetRole,
    Suspend,
    TokenBody,
    Tokens,
    UpdateMe,
    UserCommandResult,
)
from application.caller import Caller
from application.errors import AccessRevoked
from application.eventstore import Recorded
from application.identity.authenticate import IDENTITY_READER
from application.identity.commands import IdentityService, SignedIn
from application.identity.lifecycle import AccountLifecycle
from domain.errors import InvalidState
from domain.identity.user import Role, User

AnyRequest = Request[Any, Any, Any]


def identity_service(request: AnyRequest) -> IdentityService:
    return services(request).identity


def lifecycle_service(request: AnyRequest) -> AccountLifecycle:
    return services(request).lifecycle


def token_response(signed: SignedIn) -> Tokens:
    return Tokens(
        access_token=signed.access_token,
        refresh_token=signed.refresh_token,
        token_type="Bearer",  # noqa: S106 (the OAuth token type)
        expires_in=signed.expires_in,
        user_id=signed.user_id,
        session_id=signed.session_id,
        position=signed.position,
    )


def _user_result(recorded: Recorded[User]) -> UserCommandResult:
    user = recorded.aggregate
    return UserCommandResult(
        id=user.id,
        role=str(user.role),
        status=str(user.status),
        email_verified=user.email_verified,
        revision=user.version,
        position=recorded.position,
    )


class _IdentityController(Controller):
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(current_actor, sync_to_thread=False),
        "service": Provide(identity_service, sync_to_thread=False),
    }


class _AdminController(_IdentityController):
    dependencies = {
        **_IdentityController.dependencies,
        "lifecycle": Provide(lifecycle_service, sync_to_thread=False),
    }


class AuthCommands(Controller):
    path = "/auth"
    tags = ["auth"]
    before_request = staticmethod(check_command_body)
    dependencies = {
        "caller": Provide(anonymous_caller, sync_to_thread=False),
        "service": Provide(identity_service, sync_to_thread=False),
    }

    @post(
        "/register",
        summary="Create an account (the first becomes OWNER; `inviteToken` from an invitation)",
        opt=PUBLIC,
        sync_to_thread=True,
        status_code=201,
    )
    def register(
        self,
        data: JSONBody[Register],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return _user_result(
            service.register(
                caller,
                email=data.email,
                password=data.password,
                name=data.name,
                invite_token=data.invite_token,
            )
        )

    @post(
        "/refresh",
        summary="Trade a refresh token for new tokens (rotates it)",
        opt=PUBLIC,
        status_code=200,
    )
    async def refresh(
        self,
        request: AnyRequest,
        data: JSONBody[Refresh],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> Tokens:
        try:
            signed_in = await to_thread.run_sync(service.refresh, caller, data.refresh_token)
        except AccessRevoked as revoked:
            # A reused token ended its session: its access tokens must be dead when we answer.
            await _settled(request, revoked.position)
            raise
        return token_response(signed_in)

    @post(
        "/verify-email",
        summary="Confirm the email address with the mailed token",
        opt=PUBLIC,
        sync_to_thread=True,
        status_code=200,
    )
    def verify_email(
        self,
        data: JSONBody[TokenBody],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return _user_result(service.verify_email(caller, data.token))

    @post(
        "/password/forgot",
        summary="Mail a password reset token if the account exists",
        opt=PUBLIC,
        sync_to_thread=True,
        status_code=202,
    )
    def forgot_password(
        self,
        data: JSONBody[ForgotPassword],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> Accepted:
        service.request_password_reset(caller, data.email)
        return Accepted(detail="If an account has this address, a reset token was mailed to it.")

    @post(
        "/password/reset",
        summary="Set a new password with the mailed token; ends sessions",
        opt=PUBLIC,
        status_code=200,
    )
    async def reset_password(
        self,
        request: AnyRequest,
        data: JSONBody[ResetPassword],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return await _applied(request, service.reset_password, caller, data.token, data.password)


class SessionCommands(_IdentityController):
    path = "/"
    tags = ["auth"]

    @post("/auth/logout", summary="End the current session", status_code=200)
    async def logout(
        self,
        request: AnyRequest,
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> Accepted:
        principal = principal_of(request)
        if principal.session_id is None:
            return Accepted(detail="API keys have no session; revoke the key instead.")
        position = await _end_session(request, caller, service, principal.session_id)
        return Accepted(detail="Signed out.", position=position)


class MeCommands(_IdentityController):
    path = "/me"
    tags = ["me"]
    opt = SESSION_ONLY

    @patch("/", summary="Change your name or image", sync_to_thread=True)
    def update(
        self,
        request: AnyRequest,
        data: JSONBody[UpdateMe],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return _user_result(service.change_profile(caller, principal_of(request), changes))

    @post("/password", summary="Change your password", sync_to_thread=True, status_code=200)
    def change_password(
        self,
        request: AnyRequest,
        data: JSONBody[ChangePassword],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return _user_result(
            service.change_password(
                caller, principal_of(request), data.current_password, data.new_password
            )
        )

    @delete(
        "/sessions/{session_id:str}",
        summary="End one of your sessions (its tokens stop working before this answers)",
        status_code=200,
    )
    async def end_session(
        self,
        request: AnyRequest,
        session_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> Accepted:
        position = await _end_session(request, caller, service, session_id)
        return Accepted(detail="The session was ended.", position=position)

    @post(
        "/api-keys",
        summary="Create an API key (the key is shown only in this response)",
        sync_to_thread=True,
        status_code=201,
    )
    def create_api_key(
        self,
        request: AnyRequest,
        data: JSONBody[CreateApiKey],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> ApiKeyCreated:
        made = service.create_api_key(
            caller,
            principal_of(request),
            name=data.name,
            scopes=data.scopes,
            allowed_ips=data.allowed_ips,
            expires_at=data.expires_at,
        )
        key = made.key
        return ApiKeyCreated(
            id=key.id,
            name=key.name,
            key=made.secret,
            prefix=key.prefix,
            scopes=key.scopes,
            allowed_ips=key.allowed_ips,
            expires_at=key.expires_at,
            position=made.position,
        )

    @delete(
        "/api-keys/{key_id:str}",
        summary="Revoke one of your API keys (it stops working before this answers)",
        status_code=200,
    )
    async def revoke_api_key(
        self,
        request: AnyRequest,
        key_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> Accepted:
        principal = principal_of(request)
        revoked = await to_thread.run_sync(
            lambda: service.revoke_api_key(caller, principal, key_id)
        )
        await _settled(request, revoked.position)
        return Accepted(detail="The API key was revoked.", position=revoked.position)


class UserCommands(_AdminController):
    """Admin actions; each waits until authentication sees the change before answering."""

    path = "/users"
    tags = ["users"]

    @post(
        "/invite",
        summary="Mail an invitation to register with a role (the token goes only by mail)",
        opt=needs("admin"),
        sync_to_thread=True,
        status_code=201,
    )
    def invite(
        self,
        request: AnyRequest,
        data: JSONBody[Invite],
        caller: NamedDependency[Caller],
        lifecycle: NamedDependency[AccountLifecycle],
    ) -> InvitationCreated:
        recorded = lifecycle.invite(
            caller, principal_of(request), email=data.email, role=Role(data.role)
        )
        invitation = recorded.aggregate
        return InvitationCreated(
            id=invitation.id,
            user_id=invitation.user_id,
            role=str(invitation.role),
            expires_at=invitation.expires_at,
            position=recorded.position,
        )

    @post(
        "/{user_id:str}/erase",
        summary="Erase an account and its personal data for good (GDPR)",
        opt=needs("admin"),
        status_code=200,
    )
    async def erase(
        self,
        request: AnyRequest,
        user_id: FromPath[str],
        caller: NamedDependency[Caller],
        lifecycle: NamedDependency[AccountLifecycle],
    ) -> UserCommandResult:
        # Erasure finds the provider links through the `account` table: let it catch up with
        # every link made before this request, or a fresh one would stay tied to the account.
        head = await to_thread.run_sync(services(request).identity.app.head_position)
        await _settled(request, head)
        try:
            erased = await _applied(
                request, lifecycle.erase, caller, principal_of(request), user_id
            )
        except InvalidState:
            # Erased already: finish what an interrupted erasure may have left undone.
            await _retire_workflows(request, caller, user_id)
            raise
        await _retire_workflows(request, caller, user_id)
        return erased

    @post(
        "/{user_id:str}/suspend",
        summary="Suspend an account (its tokens and keys stop)",
        opt=needs("admin"),
        status_code=200,
    )
    async def suspend(
        self,
        request: AnyRequest,
        user_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
        data: JSONBody[Suspend | None] = None,
    ) -> UserCommandResult:
        reason = data.reason if data else None
        return await _applied(
            request, service.suspend, caller, principal_of(request), user_id, reason
        )

    @post(
        "/{user_id:str}/reactivate",
        summary="Reactivate a suspended account",
        opt=needs("admin"),
        status_code=200,
    )
    async def reactivate(
        self,
        request: AnyRequest,
        user_id: FromPath[str],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return await _applied(request, service.reactivate, caller, principal_of(request), user_id)

    @put("/{user_id:str}/role", summary="Change an account's role", opt=needs("admin"))
    async def set_role(
        self,
        request: AnyRequest,
        user_id: FromPath[str],
        data: JSONBody[SetRole],
        caller: NamedDependency[Caller],
        service: NamedDependency[IdentityService],
    ) -> UserCommandResult:
        return await _applied(
            request, service.change_role, caller, principal_of(request), user_id, Role(data.role)
        )


class SecurityEventCommands(_AdminController):
    path = "/security-events"
    tags = ["security"]

    @post(
        "/{event_id:str}/resolve",
        summary="Mark a security event as dealt with, with an optional note",
        opt=needs("admin"),
        sync_to_thread=True,
        status_code=200,
    )
    def resolve(
        self,
        request: AnyRequest,
        event_id: FromPath[str],
        caller: NamedDependency[Caller],
        lifecycle: NamedDependency[AccountLifecycle],
        data: JSONBody[ResolveSecurityEvent | None] = None,
    ) -> SecurityEventResolved:
        recorded = lifecycle.resolve_security_event(
            caller, principal_of(request), event_id, data.note if data else None
        )
        alert = recorded.aggregate
        return SecurityEventResolved(
            id=alert.id,
            is_resolved=True,
            resolved_by=str(alert.resolved_by),
            revision=alert.version,
            position=recorded.position,
        )


async def _applied(request: AnyRequest, command: Any, *args: Any) -> UserCommandResult:
    recorded: Recorded[User] = await to_thread.run_sync(lambda: command(*args))
    await _settled(request, recorded.position)
    return _user_result(recorded)


async def _end_session(
    request: AnyRequest, caller: Caller, service: IdentityService, session_id: str
) -> int:
    principal = principal_of(request)
    position = await to_thread.run_sync(service.end_session, caller, principal, session_id)
    await _settled(request, position)
    return position


async def _retire_workflows(request: AnyRequest, caller: Caller, user_id: str) -> None:
    """Archive and rename the erased user's workflows (application/workflows/erasure.py), once
    the workflow table shows every workflow stored before this request."""
    found = services(request)
    head = await to_thread.run_sync(found.workflows.app.head_position)
    timeout: float = found.live.value("min_position_timeout")
    await found.positions.wait_for([("workflows", "workflows")], head, timeout)
    await to_thread.run_sync(found.erased_workflows.retire, caller, user_id)


async def _settled(request: AnyRequest, position: int) -> None:
    """Wait until authentication sees a change that revokes access, so it holds at once."""
    found = services(request)
    await found.positions.wait_for(
        [IDENTITY_READER], position, found.live.value("min_position_timeout")
    )
